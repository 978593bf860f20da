/**
 * In-memory SnapshotStore for unit tests, with the epoch fencing of the durable adapters.
 */
import { Effect, Layer } from "effect"
import type { Entity } from "../../core/ledger.ts"
import { entityKey } from "../../core/ledger.ts"
import {
  type ShardCheckpoint,
  type ShardSnapshot,
  SnapshotFenced,
  SnapshotStore,
  SnapshotUnavailable,
} from "../snapshot-store.ts"

export interface MemorySnapshotControl {
  outage: boolean
  readonly checkpoints: Map<number, ShardCheckpoint>
  readonly entities: Map<number, Map<string, Entity>>
}

export const newMemorySnapshotControl = (): MemorySnapshotControl => ({
  outage: false,
  checkpoints: new Map(),
  entities: new Map(),
})

export const makeMemorySnapshotStore = (control: MemorySnapshotControl) => {
  const claimedEpochs = new Map<number, number>()
  const unavailable = (shard: number) => Effect.fail(new SnapshotUnavailable({ shard, message: "outage" }))
  return SnapshotStore.of({
    claim: (shard, epoch) =>
      Effect.suspend((): Effect.Effect<ShardSnapshot | undefined, SnapshotUnavailable | SnapshotFenced> => {
        if (control.outage) return unavailable(shard)
        const claimed = claimedEpochs.get(shard) ?? 0
        if (claimed > epoch) return Effect.fail(new SnapshotFenced({ shard, epoch: claimed }))
        claimedEpochs.set(shard, epoch)
        const checkpoint = control.checkpoints.get(shard)
        if (checkpoint === undefined) return Effect.succeed(undefined)
        return Effect.succeed({ checkpoint, entities: [...(control.entities.get(shard)?.values() ?? [])] })
      }),
    save: (checkpoint, changed) =>
      Effect.suspend((): Effect.Effect<void, SnapshotUnavailable | SnapshotFenced> => {
        const { shard, epoch } = checkpoint
        if (control.outage) return unavailable(shard)
        const claimed = claimedEpochs.get(shard) ?? 0
        if (claimed !== epoch) return Effect.fail(new SnapshotFenced({ shard, epoch: claimed }))
        let stored = control.entities.get(shard)
        if (stored === undefined) {
          stored = new Map()
          control.entities.set(shard, stored)
        }
        for (const entity of changed) stored.set(entityKey(entity), entity)
        control.checkpoints.set(shard, checkpoint)
        return Effect.void
      }),
  })
}

export const layerMemory = (control: MemorySnapshotControl = newMemorySnapshotControl()): Layer.Layer<SnapshotStore> =>
  Layer.succeed(SnapshotStore)(makeMemorySnapshotStore(control))
