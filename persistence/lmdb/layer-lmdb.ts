/**
 * The embedded mode's persistence: Journal, SnapshotStore and ShardLeases on one LMDB environment
 * under `${dataDir}/ledger`, locked to this process and closed with the layer's scope.
 */
import { Context, Effect, Layer } from "effect"
import { Journal } from "../journal.ts"
import { ShardLeases } from "../shard-leases.ts"
import { SnapshotStore } from "../snapshot-store.ts"
import { acquireLedgerEnvironment, type LmdbConfig, type LmdbUnavailable } from "./environment.ts"
import { makeLmdbJournal } from "./journal-lmdb.ts"
import { makeLmdbShardLeases } from "./shard-leases-lmdb.ts"
import { makeLmdbSnapshotStore } from "./snapshot-store-lmdb.ts"

export { type LmdbConfig, LmdbUnavailable } from "./environment.ts"

export const layerLmdb = (config: LmdbConfig): Layer.Layer<Journal | SnapshotStore | ShardLeases, LmdbUnavailable> =>
  Layer.effectContext(
    acquireLedgerEnvironment(config).pipe(
      Effect.map((environment) =>
        Context.make(Journal, makeLmdbJournal(environment)).pipe(
          Context.add(SnapshotStore, makeLmdbSnapshotStore(environment)),
          Context.add(ShardLeases, makeLmdbShardLeases(environment)),
        ),
      ),
    ),
  )
