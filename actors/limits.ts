/**
 * The runtime's bounds and timings, all from configuration: every queue, batch, cache and map of
 * in-flight work in `actors/` has its upper bound here, and so does memory per shard (accounts,
 * `recentEntriesMax` entries, `idempotencyKeysMax` index keys).
 */
import { defaultLedgerPolicy, type LedgerPolicy } from "../core/policy.ts"

export interface RuntimeLimits {
  /** S: accounts are spread over this many shards; fixed for the life of a deployment. */
  readonly shardCount: number
  /** Records accepted by one shard but not yet durable; beyond it new commands get OVERLOADED. */
  readonly shardQueueDepthMax: number
  /** Journal records in one node flush (one journal transaction over every shard with records). */
  readonly flushRecordsMax: number
  /** A shard snapshot is saved once this many events were committed since the last save... */
  readonly snapshotEveryEvents: number
  /** ...or this long after the last save, when anything changed. */
  readonly snapshotIntervalMs: number
  /** Changed entities a shard keeps for its next snapshot; beyond it the shard answers UNAVAILABLE until a save succeeds. */
  readonly snapshotDirtyEntitiesMax: number
  /** Entries (payments, deposits, credits) a shard keeps in memory once saved; older ones are read back when needed. */
  readonly recentEntriesMax: number
  /** Idempotency keys a shard indexes for its window; when full, commands that would add one get OVERLOADED. */
  readonly idempotencyKeysMax: number
  /** Reads of saved entries a shard has in flight (and commands parked behind them); beyond it OVERLOADED. */
  readonly entryLookupsInFlightMax: number
  /** Cross-node payments a shard has pending; beyond it new ones get OVERLOADED. */
  readonly pendingPaymentsMax: number
  /** The embedded journal keeps records this long after a snapshot covers them (0: discard at once). */
  readonly journalRetentionMs: number
  /** Delay between attempts to rebuild the node's shards after the journal or snapshot store failed. */
  readonly rebuildRetryDelayMs: number
  readonly policy: LedgerPolicy
}

export const defaultRuntimeLimits: RuntimeLimits = {
  shardCount: 16,
  shardQueueDepthMax: 8192,
  flushRecordsMax: 4096,
  snapshotEveryEvents: 20_000,
  snapshotIntervalMs: 5_000,
  snapshotDirtyEntitiesMax: 65_536,
  recentEntriesMax: 4_096,
  idempotencyKeysMax: 16 * 1024 * 1024,
  entryLookupsInFlightMax: 256,
  pendingPaymentsMax: 65_536,
  journalRetentionMs: 0,
  rebuildRetryDelayMs: 500,
  policy: defaultLedgerPolicy,
}
