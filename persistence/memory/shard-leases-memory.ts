/**
 * In-process ShardLeases: one node owns every shard. Epochs start after `epochFloor` so that a
 * restarted process (which remembers nothing) still fences what it wrote before, when the caller
 * seeds the floor from durable state (the embedded mode uses its LMDB store for that).
 */
import { Effect, Layer } from "effect"
import { ShardLeases } from "../shard-leases.ts"

export const makeMemoryShardLeases = (epochFloor = 0) => {
  const epochs = new Map<number, number>()
  return ShardLeases.of({
    acquire: (shard, atLeast = 0) =>
      Effect.sync(() => {
        const epoch = Math.max(epochs.get(shard) ?? epochFloor, atLeast) + 1
        epochs.set(shard, epoch)
        return { shard, epoch }
      }),
    release: () => Effect.void,
  })
}

export const layerMemory = (epochFloor = 0): Layer.Layer<ShardLeases> =>
  Layer.succeed(ShardLeases)(makeMemoryShardLeases(epochFloor))
