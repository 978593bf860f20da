/**
 * A shard: the unit of ownership, recovery and fencing, and the actor of its accounts. It holds the
 * shard's in-memory state (every account, a bounded set of recent entries, the live payments), its
 * entry index and snapshot writer, and the commands parked while an entry is read back from the
 * snapshot store. Commands run one at a time on the event loop (see `command-executor.ts`), so an
 * account sees its commands in order; a command parked behind a read keeps the commands of its
 * account behind it.
 */
import { Cause, Effect } from "effect"
import type { TenantId } from "../core/ids.ts"
import { type Entry, entityKey, isLive, type Ledger, type Payment } from "../core/ledger.ts"
import { entriesWithFingerprint, fingerprintOf } from "../core/segment-codec.ts"
import { type SnapshotStore, SnapshotUnavailable } from "../persistence/snapshot-store.ts"
import type { EntryIndex } from "./entry-index.ts"
import type { RuntimeLimits } from "./limits.ts"
import type { ShardBatch } from "./node-commit.ts"
import type { SnapshotWriter } from "./snapshot-writer.ts"

/** A command or read waiting for an entry of its account to be read back. */
export interface Parked {
  /** The entry it needs in memory, if any. */
  readonly key: string | undefined
  readonly tenantId: TenantId
  /** Runs it now (its entry, if any, is in memory or known absent). */
  readonly proceed: () => void
  /** Refuses it: the read failed. */
  readonly fail: (error: SnapshotUnavailable) => void
}

export class Shard {
  /** Durable pending payments by key: the sagas in flight, never evicted. */
  readonly live = new Map<string, Payment>()
  /** Parked work per account key, in arrival order. */
  private readonly parked = new Map<string, Array<Parked>>()
  private parkedCount = 0
  snapshot: SnapshotWriter | undefined
  /** Entries read back from the snapshot store: the lookup gauge. */
  lookupsTotal = 0

  constructor(
    readonly shard: number,
    readonly epoch: number,
    readonly ledger: Ledger,
    readonly index: EntryIndex,
    private readonly store: SnapshotStore["Service"],
    private readonly limits: RuntimeLimits,
  ) {
    for (const [key, entry] of ledger.entries) if (isLive(entry)) this.live.set(key, entry.value as Payment)
  }

  /** True when `key` may have an entry that is not in memory: it must be read back before deciding. */
  needsLookup(key: string): boolean {
    return !this.ledger.entries.has(key) && this.index.mayContain(fingerprintOf(key))
  }

  /** True when any work of this shard is parked (then each command checks its own account). */
  get hasParked(): boolean {
    return this.parkedCount > 0
  }

  /** True when work of this account is parked: later work of the account must wait behind it. */
  isParked(accountKey: string): boolean {
    return this.parked.has(accountKey)
  }

  /** False when the parking is full: the caller answers OVERLOADED. */
  park(accountKey: string, work: Parked): boolean {
    if (this.parkedCount >= this.limits.entryLookupsInFlightMax) return false
    const queue = this.parked.get(accountKey)
    this.parkedCount++
    if (queue !== undefined) {
      queue.push(work)
      return true
    }
    this.parked.set(accountKey, [work])
    this.startLookup(accountKey, work)
    return true
  }

  /** Fails every parked command and read: the incarnation holding this shard was dropped. */
  abandonParked(): void {
    const queues = [...this.parked.values()]
    this.parked.clear()
    this.parkedCount = 0
    const error = new SnapshotUnavailable({ shard: this.shard, message: "the shard is being rebuilt" })
    for (const queue of queues) for (const work of queue) work.fail(error)
  }

  /** Runs the parked work of an account in order until one needs another lookup. */
  private drain(accountKey: string, resolvedKey: string | undefined): void {
    const queue = this.parked.get(accountKey)
    while (queue !== undefined && queue.length > 0) {
      const next = queue[0] as Parked
      if (next.key !== undefined && next.key !== resolvedKey && this.needsLookup(next.key)) {
        this.startLookup(accountKey, next)
        return
      }
      queue.shift()
      this.parkedCount--
      next.proceed()
    }
    this.parked.delete(accountKey)
  }

  private startLookup(accountKey: string, work: Parked): void {
    const key = work.key as string
    this.lookupsTotal++
    Effect.runCallback(this.lookUp(work.tenantId, key), {
      onExit: (exit) => {
        // Abandoned while the read was in flight: its work was already refused.
        if (this.parked.get(accountKey)?.[0] !== work) return
        if (exit._tag === "Success") {
          if (exit.value !== undefined && !this.ledger.entries.has(key)) this.ledger.put(exit.value)
          this.drain(accountKey, key)
          return
        }
        // The store is unreachable (or the part did not decode): refuse the account's parked work,
        // which changed nothing, and keep serving.
        const queue = this.parked.get(accountKey) ?? []
        this.parked.delete(accountKey)
        this.parkedCount -= queue.length
        const cause = Cause.squash(exit.cause)
        const error =
          cause instanceof SnapshotUnavailable
            ? cause
            : new SnapshotUnavailable({ shard: this.shard, message: `reading an entry back: ${String(cause)}` })
        for (const parked of queue) parked.fail(error)
      },
    })
  }

  /** Reads the newest saved version of an entry: each location the index gives, newest first. */
  private lookUp(tenantId: TenantId, key: string): Effect.Effect<Entry | undefined, SnapshotUnavailable> {
    const fingerprint = fingerprintOf(key)
    const locations = this.index.locate(fingerprint)
    return Effect.gen({ self: this }, function* () {
      for (const location of locations) {
        const part = yield* this.store.readEntries(this.shard, location.segment, tenantId, location.part)
        if (part === undefined) continue
        const found = entriesWithFingerprint(part.entries, part.fingerprints, fingerprint).find(
          (entity) => entityKey(entity) === key,
        )
        if (found !== undefined && found.kind !== "account") return found
      }
      return undefined
    })
  }

  /** Called when a live payment's story ends (captured, voided, settled, expired): its timers can go. */
  onPaymentEnded: ((payment: Payment) => void) | undefined

  /** A durable batch of this shard: live payments follow it, then the snapshot takes its entities. */
  onDurable(batch: ShardBatch): void {
    for (const entity of batch.changed) {
      if (entity.kind !== "payment") continue
      const key = entityKey(entity)
      if (isLive(entity)) this.live.set(key, entity.value)
      else if (this.live.delete(key)) this.onPaymentEnded?.(entity.value)
    }
    this.snapshot?.changed(batch)
  }

  /**
   * Keeps at most `recentEntriesMax` entries in memory: the oldest saved ones go (their segment has
   * them); live entries and entries not saved yet stay whatever the count.
   */
  evict(): void {
    const entries = this.ledger.entries
    const excess = entries.size - this.limits.recentEntriesMax
    if (excess <= 0 || this.snapshot === undefined) return
    let removed = 0
    for (const [key, entry] of entries) {
      if (removed >= excess) break
      if (isLive(entry) || !this.snapshot.isSaved(key)) continue
      entries.delete(key)
      removed++
    }
  }
}
