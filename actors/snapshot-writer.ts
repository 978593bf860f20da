/**
 * Background snapshots of one shard: collects the entity versions of durable batches and saves
 * them every N events or T milliseconds, one save at a time, with the offset they include. A save
 * that fails keeps its entities for the next one (unless newer versions arrived meanwhile); a save
 * refused for a newer epoch means another owner has the shard.
 */
import { Cause, Effect, Exit } from "effect"
import { type Entity, entityKey } from "../core/ledger.ts"
import { SnapshotFenced, type SnapshotStore } from "../persistence/snapshot-store.ts"
import type { RuntimeLimits } from "./limits.ts"
import type { Incarnation } from "./recovery.ts"

export class SnapshotWriter {
  private dirty: Map<string, Entity>
  private eventsSinceSave = 0
  private committedOffset: number
  private saving = false
  private savingCount = 0
  private stopped = false
  private timer: NodeJS.Timeout

  constructor(
    private readonly shard: number,
    private readonly incarnation: Incarnation,
    private readonly store: SnapshotStore["Service"],
    private readonly limits: RuntimeLimits,
    private readonly onFenced: () => void,
  ) {
    this.dirty = incarnation.dirty
    this.committedOffset = incarnation.nextOffset
    // Shards start together, so their intervals are spread over one period: saves of different
    // shards then take turns instead of all holding the event loop in the same moment.
    const phaseMs = Math.floor((limits.snapshotIntervalMs * (shard % limits.shardCount)) / limits.shardCount)
    this.timer = setTimeout(() => {
      this.timer = setInterval(() => this.onInterval(), limits.snapshotIntervalMs)
      this.timer.unref()
      this.onInterval()
    }, phaseMs)
    this.timer.unref()
  }

  private onInterval(): void {
    if (this.dirty.size > 0) this.save()
  }

  /** Entity versions not in the store yet: waiting for the next save, or in the save under way. */
  get unsaved(): number {
    return this.dirty.size + this.savingCount
  }

  /** True when the shard has more unsaved changes than it may hold: the store has been down too long. */
  get overfull(): boolean {
    return this.dirty.size >= this.limits.snapshotDirtyEntitiesMax
  }

  /** Takes a durable batch's entities and the offset after it; batches come in log order. */
  changed(entities: ReadonlyArray<Entity>, eventCount: number, nextOffset: number): void {
    for (const entity of entities) this.dirty.set(entityKey(entity), entity)
    this.committedOffset = nextOffset
    this.eventsSinceSave += eventCount
    if (this.eventsSinceSave >= this.limits.snapshotEveryEvents) this.save()
  }

  stop(): void {
    this.stopped = true
    // clearTimeout and clearInterval clear either kind of timer.
    clearTimeout(this.timer)
  }

  private save(): void {
    if (this.saving || this.stopped) return
    this.saving = true
    const saved = this.dirty
    this.savingCount = saved.size
    this.dirty = new Map()
    this.eventsSinceSave = 0
    const checkpoint = { shard: this.shard, epoch: this.incarnation.epoch, nextOffset: this.committedOffset }
    Effect.runCallback(this.store.save(checkpoint, [...saved.values()]), {
      onExit: (exit) => {
        this.saving = false
        this.savingCount = 0
        if (Exit.isSuccess(exit)) return
        for (const [key, entity] of saved) if (!this.dirty.has(key)) this.dirty.set(key, entity)
        const error = Cause.squash(exit.cause)
        if (error instanceof SnapshotFenced) {
          this.onFenced()
          return
        }
        Effect.runFork(
          Effect.logWarning("snapshot save failed; will retry").pipe(
            Effect.annotateLogs({ shard: this.shard, cause: String(error), unsavedEntities: this.dirty.size }),
          ),
        )
      },
    })
  }
}
