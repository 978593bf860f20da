/**
 * The runtime's bounds and timings, all from configuration: every queue, batch and map of
 * in-flight work in `actors/` has its upper bound here.
 */
export interface RuntimeLimits {
  /** S: accounts are spread over this many shards; fixed for the life of a deployment. */
  readonly shardCount: number
  /** Commands accepted by one shard but not yet durable; beyond it new commands get OVERLOADED. */
  readonly shardQueueDepthMax: number
  /** Journal records in one append (one group commit). */
  readonly batchRecordsMax: number
  /** A shard snapshot is saved once this many events were committed since the last save... */
  readonly snapshotEveryEvents: number
  /** ...or this long after the last save, when anything changed. */
  readonly snapshotIntervalMs: number
  /** Changed entities a shard keeps for its next snapshot; beyond it the shard answers UNAVAILABLE until a save succeeds. */
  readonly snapshotDirtyEntitiesMax: number
  /** Cross-shard saga steps in flight per node; further pending payments wait for the sweep. */
  readonly sagaStepsInFlightMax: number
  /** How often pending cross-shard payments not in flight are picked up again. */
  readonly sagaSweepIntervalMs: number
  /** Delay before retrying a saga step whose target shard was unavailable. */
  readonly sagaRetryDelayMs: number
  /** Delay between attempts to rebuild a shard whose journal or snapshot store failed. */
  readonly rebuildRetryDelayMs: number
}

export const defaultRuntimeLimits: RuntimeLimits = {
  shardCount: 16,
  shardQueueDepthMax: 8192,
  batchRecordsMax: 512,
  snapshotEveryEvents: 20_000,
  snapshotIntervalMs: 5_000,
  snapshotDirtyEntitiesMax: 1_000_000,
  sagaStepsInFlightMax: 4096,
  sagaSweepIntervalMs: 1_000,
  sagaRetryDelayMs: 200,
  rebuildRetryDelayMs: 500,
}
