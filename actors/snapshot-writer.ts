/**
 * Background snapshots of one shard. It collects the entity versions of durable batches and saves
 * them as one segment every N events or T milliseconds (or sooner when the entries waiting for a
 * save approach the recent-entries bound), one save at a time, with the offset they include. Once
 * a segment is saved its entries are in the entry index and may leave memory, the journal before
 * its offset may be discarded, and segments no checkpoint needs any more are deleted.
 *
 * A base segment (every account) is written when the account changes since the last base outgrow
 * it, so recovery reads a bounded number of segments. A base must hold exactly the accounts as of
 * its offset, so it is captured at a flush boundary: the open flush is sealed, the accounts'
 * versions are taken, and the save starts once that flush is durable.
 *
 * A save that fails keeps its entities for the next one (unless newer versions arrived meanwhile);
 * a save refused for a newer epoch means another owner has the shard.
 */
import { Cause, Effect, Exit } from "effect"
import { type Account, AccountMap, type Entry, isLive, type Ledger } from "../core/ledger.ts"
import { creditRetentionMs } from "../core/policy.ts"
import { SnapshotFenced, type SnapshotStore, type StoredSegment } from "../persistence/snapshot-store.ts"
import type { RuntimeClock } from "./clock.ts"
import type { EntryIndex } from "./entry-index.ts"
import type { RuntimeLimits } from "./limits.ts"
import type { ShardBatch } from "./node-commit.ts"
import { type BuiltSegment, buildSegment } from "./segment-builder.ts"

/** Segment ids are epoch-major, so a newer owner's segments sort after every older owner's. */
export const segmentId = (epoch: number, sequence: number): number => epoch * 2 ** 24 + sequence

export interface SavedSegment extends StoredSegment {
  readonly savedAtMs: number
  /** True when any of its entries is a credit, which is kept twice the idempotency window. */
  readonly holdsCredits: boolean
}

/** What recovery hands the writer: where the shard's snapshots stand. */
export interface SnapshotStart {
  readonly epoch: number
  readonly nextOffset: number
  /** Entity versions replayed after the checkpoint: the next save must hold them. */
  readonly dirtyAccounts: AccountMap
  readonly dirtyEntries: Map<string, Entry>
  readonly baseSegment: number | undefined
  readonly accountBytesStored: number
  readonly segments: Array<SavedSegment>
}

export interface SnapshotHooks {
  readonly seal: () => void
  readonly afterQueued: (settle: (durable: boolean) => void) => void
  readonly discardJournalBefore: (offset: number) => void
  readonly onSaved: () => void
  readonly onFenced: () => void
  readonly live: () => Iterable<Entry>
}

export class SnapshotWriter {
  private dirtyAccounts: AccountMap
  private dirtyEntries: Map<string, Entry>
  private savingEntries = new Map<string, Entry>()
  private savingAccounts = 0
  private eventsSinceSave = 0
  private committedOffset: number
  private saving = false
  private stopped = false
  private sequence = 0
  private baseSegment: number | undefined
  private baseAccountBytes: number
  private baseSavedAtMs: number
  private accountBytesSinceBase = 0
  private readonly segments: Array<SavedSegment>
  /** (time, offset) of recent saves, for the journal's retention. */
  private readonly savedOffsets: Array<{ readonly savedAtMs: number; readonly nextOffset: number }> = []
  private cancelTimer: () => void
  /** Parts written and segments saved by this writer: the snapshot-write gauges. */
  partWrites = 0
  segmentsSaved = 0

  constructor(
    private readonly shard: number,
    private readonly start: SnapshotStart,
    private readonly ledger: Ledger,
    private readonly index: EntryIndex,
    private readonly store: SnapshotStore["Service"],
    private readonly limits: RuntimeLimits,
    private readonly clock: RuntimeClock,
    private readonly hooks: SnapshotHooks,
  ) {
    this.dirtyAccounts = start.dirtyAccounts
    this.dirtyEntries = start.dirtyEntries
    this.committedOffset = start.nextOffset
    this.baseSegment = start.baseSegment
    this.baseAccountBytes = start.accountBytesStored
    this.baseSavedAtMs =
      start.segments.find((segment) => segment.segment === start.baseSegment)?.savedAtMs ?? clock.nowMs()
    this.segments = start.segments
    // Shards start together, so their intervals are spread over one period: saves of different
    // shards then take turns instead of all holding the event loop in the same moment.
    const phaseMs = Math.floor((limits.snapshotIntervalMs * (shard % limits.shardCount)) / limits.shardCount)
    this.cancelTimer = clock.after(phaseMs, () => this.onInterval())
  }

  /** Entity versions not in the store yet: waiting for the next save, or in the save under way. */
  get unsaved(): number {
    return this.dirtyAccounts.size + this.dirtyEntries.size + this.savingEntries.size + this.savingAccounts
  }

  /** True when the shard has more unsaved changes than it may hold: the store has been down too long. */
  get overfull(): boolean {
    return this.dirtyAccounts.size + this.dirtyEntries.size >= this.limits.snapshotDirtyEntitiesMax
  }

  /** False while an entry's latest version is not in a saved segment yet: it must stay in memory. */
  isSaved(key: string): boolean {
    return !this.dirtyEntries.has(key) && !this.savingEntries.has(key)
  }

  /** Takes a durable batch's entities and the offset after it; batches come in log order. */
  changed(batch: ShardBatch): void {
    const { changed, changedKeys } = batch
    for (let index = 0; index < changed.length; index++) {
      const entity = changed[index] as ShardBatch["changed"][number]
      if (entity.kind === "account") this.dirtyAccounts.set(entity.value)
      else this.dirtyEntries.set(changedKeys[index] as string, entity)
    }
    this.committedOffset = batch.nextOffset
    this.eventsSinceSave += batch.eventCount
    if (
      this.eventsSinceSave >= this.limits.snapshotEveryEvents ||
      this.dirtyEntries.size >= this.limits.recentEntriesMax / 2
    ) {
      this.save()
    }
  }

  stop(): void {
    this.stopped = true
    this.cancelTimer()
  }

  private onInterval(): void {
    if (this.stopped) return
    this.cancelTimer = this.clock.after(this.limits.snapshotIntervalMs, () => this.onInterval())
    if (this.dirtyAccounts.size + this.dirtyEntries.size > 0) this.save()
  }

  /**
   * A new base is due when the deltas since the last one outgrow it (recovery reads base plus
   * deltas), or when it is half a window old: segments before the base hold no account a recovery
   * needs, so only then can segments whose entries have expired be deleted.
   */
  private baseDue(): boolean {
    if (this.baseSegment === undefined) return true
    if (this.accountBytesSinceBase > 2 * Math.max(this.baseAccountBytes, 64 * 1024)) return true
    return this.baseSavedAtMs + this.limits.policy.idempotencyRetentionMs / 2 <= this.clock.nowMs()
  }

  private save(): void {
    if (this.saving || this.stopped) return
    this.saving = true
    if (!this.baseDue()) {
      this.write(false, [...this.dirtyAccounts.values()])
      return
    }
    // Every account as of a flush boundary: versions applied now are durable once the sealed flush is.
    this.hooks.seal()
    const accounts = [...this.ledger.accounts.values()]
    this.hooks.afterQueued((durable) => {
      if (durable && !this.stopped) this.write(true, accounts)
      else this.saving = false
    })
  }

  private write(base: boolean, accounts: ReadonlyArray<Account>): void {
    const entries = this.dirtyEntries
    this.savingEntries = entries
    this.savingAccounts = this.dirtyAccounts.size
    const accountsSaved = this.dirtyAccounts
    this.dirtyEntries = new Map()
    this.dirtyAccounts = new AccountMap()
    this.eventsSinceSave = 0
    const segment = segmentId(this.start.epoch, ++this.sequence)
    const final = [...entries.values()].filter((entry) => !isLive(entry))
    const built = buildSegment({ accounts, entries: final, live: this.hooks.live() }, this.store.partBytesMax)
    const checkpoint = {
      shard: this.shard,
      epoch: this.start.epoch,
      nextOffset: this.committedOffset,
      segment,
      base: base ? segment : (this.baseSegment as number),
    }
    const savedAtMs = this.clock.nowMs()
    Effect.runCallback(
      this.store.save(
        checkpoint,
        savedAtMs,
        built.parts.map((part) => part.part),
      ),
      {
        onExit: (exit) => {
          this.saving = false
          this.savingAccounts = 0
          if (Exit.isFailure(exit)) return this.failed(exit.cause, entries, accountsSaved)
          const holdsCredits = final.some((entry) => entry.kind === "credit")
          this.saved(checkpoint, savedAtMs, built, base, holdsCredits)
        },
      },
    )
  }

  private saved(
    checkpoint: { readonly segment: number; readonly nextOffset: number },
    savedAtMs: number,
    built: BuiltSegment,
    base: boolean,
    holdsCredits: boolean,
  ): void {
    this.savingEntries = new Map()
    this.partWrites += built.parts.length
    this.segmentsSaved++
    const slot = this.index.registerSegment(checkpoint.segment, savedAtMs)
    for (const { part, fingerprints } of built.parts) {
      for (const fingerprint of fingerprints) this.index.add(fingerprint, slot, part.part)
    }
    const parts = built.parts.map(({ part }) => ({ tenantId: part.tenantId, part: part.part }))
    this.segments.push({ segment: checkpoint.segment, savedAtMs, holdsCredits, parts })
    if (base) {
      this.baseSegment = checkpoint.segment
      this.baseSavedAtMs = savedAtMs
      this.baseAccountBytes = built.accountBytes
      this.accountBytesSinceBase = 0
    } else {
      this.accountBytesSinceBase += built.accountBytes
    }
    this.savedOffsets.push({ savedAtMs, nextOffset: checkpoint.nextOffset })
    this.hooks.onSaved()
    this.discardJournal(savedAtMs)
    this.deleteExpiredSegments()
  }

  private failed(cause: Cause.Cause<unknown>, entries: Map<string, Entry>, accounts: AccountMap): void {
    for (const [key, entry] of entries) if (!this.dirtyEntries.has(key)) this.dirtyEntries.set(key, entry)
    for (const account of accounts.values()) if (!this.dirtyAccounts.has(account)) this.dirtyAccounts.set(account)
    this.savingEntries = new Map()
    const error = Cause.squash(cause)
    if (error instanceof SnapshotFenced) {
      this.hooks.onFenced()
      return
    }
    Effect.runFork(
      Effect.logWarning("snapshot save failed; will retry").pipe(
        Effect.annotateLogs({ shard: this.shard, cause: String(error), unsavedEntities: this.unsaved }),
      ),
    )
  }

  /** The journal before the newest save older than the retention is covered and no longer kept. */
  private discardJournal(nowMs: number): void {
    let covered: number | undefined
    while (
      this.savedOffsets.length > 0 &&
      (this.savedOffsets[0]?.savedAtMs ?? 0) + this.limits.journalRetentionMs <= nowMs
    ) {
      covered = this.savedOffsets.shift()?.nextOffset
    }
    if (covered !== undefined) this.hooks.discardJournalBefore(covered)
  }

  /**
   * A segment older than the base holds no account a recovery reads; once its entries' windows
   * have passed too, nothing needs it.
   */
  private deleteExpiredSegments(): void {
    const nowMs = this.clock.nowMs()
    const { policy } = this.limits
    const expired = this.segments.filter(
      (segment) =>
        this.baseSegment !== undefined &&
        segment.segment < this.baseSegment &&
        segment.savedAtMs + (segment.holdsCredits ? creditRetentionMs(policy) : policy.idempotencyRetentionMs) <= nowMs,
    )
    if (expired.length === 0) return
    for (const segment of expired) {
      this.index.dropSegment(segment.segment)
      this.segments.splice(this.segments.indexOf(segment), 1)
    }
    Effect.runCallback(this.store.deleteSegments(this.shard, expired), {
      onExit: (exit) => {
        if (Exit.isFailure(exit)) {
          // Left in the store: harmless (expired entries are treated as absent) until a later save retries.
          this.segments.unshift(...expired)
        }
      },
    })
  }
}
