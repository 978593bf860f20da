/**
 * A node on the memory adapters for runtime tests: stores that outlive a node (as disks outlive a
 * process), the layer over them, and a node started and stopped with its own scope.
 */
import { Effect, Exit, Layer, Scope } from "effect"
import type { RuntimeLimits } from "../../actors/limits.ts"
import { makePaymentNode, type NodeOptions } from "../../actors/node.ts"
import { Journal } from "../../persistence/journal.ts"
import {
  type MemoryJournalControl,
  makeMemoryJournal,
  newMemoryJournalControl,
} from "../../persistence/memory/journal-memory.ts"
import { makeMemoryShardLeases } from "../../persistence/memory/shard-leases-memory.ts"
import {
  type MemorySnapshotControl,
  makeMemorySnapshotStore,
  newMemorySnapshotControl,
} from "../../persistence/memory/snapshot-store-memory.ts"
import { ShardLeases } from "../../persistence/shard-leases.ts"
import { SnapshotStore } from "../../persistence/snapshot-store.ts"

export interface MemoryStores {
  readonly journal: MemoryJournalControl
  readonly snapshots: MemorySnapshotControl
  readonly leases: ReturnType<typeof makeMemoryShardLeases>
}

export const newMemoryStores = (): MemoryStores => ({
  journal: newMemoryJournalControl(),
  snapshots: newMemorySnapshotControl(),
  leases: makeMemoryShardLeases(),
})

/**
 * The persistence ports over the stores; `snapshotStore` and `journal` replace the plain memory
 * adapters (to hold reads or watch calls, say).
 */
export const memoryLayer = (
  stores: MemoryStores,
  snapshotStore = makeMemorySnapshotStore(stores.snapshots),
  journal: Journal["Service"] = makeMemoryJournal(stores.journal),
) =>
  Layer.mergeAll(
    Layer.succeed(Journal)(journal),
    Layer.succeed(SnapshotStore)(snapshotStore),
    Layer.succeed(ShardLeases)(stores.leases),
  )

/** Starts a node on the stores; `stop` closes its scope as a shutdown (or a kill, for what was not flushed) would. */
export const startMemoryNode = async (
  stores: MemoryStores,
  limits: RuntimeLimits,
  options: NodeOptions = {},
  snapshotStore = makeMemorySnapshotStore(stores.snapshots),
  journal: Journal["Service"] = makeMemoryJournal(stores.journal),
) => {
  const scope = await Effect.runPromise(Scope.make())
  const processor = await Effect.runPromise(
    makePaymentNode(limits, options).pipe(
      Effect.provide(memoryLayer(stores, snapshotStore, journal)),
      Scope.provide(scope),
    ),
  )
  return { processor, scope, stop: () => Effect.runPromise(Scope.close(scope, Exit.void)) }
}
