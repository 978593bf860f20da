/**
 * ShardLeases for the embedded mode: one node owns every shard (the data directory lock keeps a
 * second node out), so ownership is in process; only the epochs are persisted, in LMDB, so that
 * they keep growing across restarts and a restarted node fences what its previous run wrote.
 */
import { Effect, Layer } from "effect"
import { LeaseUnavailable, type ShardLease, ShardLeases } from "../shard-leases.ts"
import {
  acquireLedgerEnvironment,
  type LedgerEnvironment,
  type LmdbConfig,
  type LmdbUnavailable,
  lmdbErrorMessage,
} from "./environment.ts"

export const makeLmdbShardLeases = (environment: LedgerEnvironment): ShardLeases["Service"] => {
  /** Shard -> epoch of this process's current ownership, for release to tell a stale lease. */
  const owned = new Map<number, number>()
  return ShardLeases.of({
    acquire: (shard, epochFloor = 0) =>
      Effect.tryPromise({
        // Durable before it is used: an epoch handed out must never be handed out again.
        try: () =>
          environment.root.transaction((): ShardLease => {
            const epoch = Math.max(environment.leaseEpochs.get(shard) ?? 0, epochFloor) + 1
            environment.leaseEpochs.putSync(shard, epoch)
            return { shard, epoch }
          }),
        catch: (error) => new LeaseUnavailable({ shard, message: lmdbErrorMessage(error) }),
      }).pipe(Effect.tap((lease) => Effect.sync(() => owned.set(shard, lease.epoch)))),
    release: (lease) =>
      Effect.sync(() => {
        if (owned.get(lease.shard) === lease.epoch) owned.delete(lease.shard)
      }),
  })
}

/** The leases alone on their own environment; `layerLmdb` provides them with the other ports. */
export const layerLmdbShardLeases = (config: LmdbConfig): Layer.Layer<ShardLeases, LmdbUnavailable> =>
  Layer.effect(ShardLeases)(acquireLedgerEnvironment(config).pipe(Effect.map(makeLmdbShardLeases)))
