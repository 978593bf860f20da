/**
 * In-memory SnapshotStore for unit tests and simulations, with the epoch fencing and the segment
 * semantics of the durable adapters (a checkpoint names the last complete segment; parts of a
 * save cut short stay stored until deleted).
 */
import { Effect, Layer } from "effect"
import {
  type ClaimedSnapshot,
  type SegmentFingerprints,
  type SegmentPart,
  type ShardCheckpoint,
  SnapshotFenced,
  SnapshotStore,
  SnapshotUnavailable,
} from "../snapshot-store.ts"

interface StoredPart {
  readonly part: SegmentPart
  readonly savedAtMs: number
}

export interface MemorySnapshotControl {
  outage: boolean
  readonly checkpoints: Map<number, ShardCheckpoint>
  /** The journal writer each shard's ownership registered: it outlives the node, as a store does. */
  readonly writers: Map<number, string>
  /** The epoch that claimed each shard last: it outlives the node too. */
  readonly claimedEpochs: Map<number, number>
  /** Per shard, per segment, the parts by `${tenantId}\u0000${part}`. */
  readonly segments: Map<number, Map<number, Map<string, StoredPart>>>
  /** Part writes that succeeded, over all shards: what a test counts snapshot writes by. */
  partWritesTotal: number
  /** When set, a save writes this many parts and then fails, as a crash in the middle of a save would. */
  failSaveAfterParts: number | undefined
}

export const newMemorySnapshotControl = (): MemorySnapshotControl => ({
  outage: false,
  checkpoints: new Map(),
  writers: new Map(),
  claimedEpochs: new Map(),
  segments: new Map(),
  partWritesTotal: 0,
  failSaveAfterParts: undefined,
})

/** Parts are small here so tests cross part boundaries with few entities. */
const partBytesMaxDefault = 16 * 1024

const partKey = (tenantId: string, part: number) => `${tenantId}\u0000${part}`

const segmentsOf = (control: MemorySnapshotControl, shard: number) => {
  let segments = control.segments.get(shard)
  if (segments === undefined) {
    segments = new Map()
    control.segments.set(shard, segments)
  }
  return segments
}

const claimed = (control: MemorySnapshotControl, shard: number, checkpoint: ShardCheckpoint): ClaimedSnapshot => {
  const segments = [...segmentsOf(control, shard).entries()].sort(([a], [b]) => a - b)
  const accounts: Array<Uint8Array> = []
  const live: Array<Uint8Array> = []
  const parts: Array<SegmentFingerprints> = []
  for (const [segment, stored] of segments) {
    for (const { part, savedAtMs } of stored.values()) {
      if (segment >= checkpoint.base && segment <= checkpoint.segment) accounts.push(part.accounts)
      if (segment === checkpoint.segment) live.push(part.live)
      parts.push({ segment, tenantId: part.tenantId, part: part.part, savedAtMs, fingerprints: part.fingerprints })
    }
  }
  return { checkpoint, accounts, live, parts }
}

export const makeMemorySnapshotStore = (control: MemorySnapshotControl, partBytesMax = partBytesMaxDefault) => {
  const { claimedEpochs } = control
  const unavailable = (shard: number) => Effect.fail(new SnapshotUnavailable({ shard, message: "outage" }))
  return SnapshotStore.of({
    partBytesMax,
    claim: (shard, epoch) =>
      Effect.suspend((): Effect.Effect<ClaimedSnapshot | undefined, SnapshotUnavailable | SnapshotFenced> => {
        if (control.outage) return unavailable(shard)
        const current = claimedEpochs.get(shard) ?? 0
        // Strictly newer, as every store: an epoch is claimed at most once.
        if (current >= epoch) return Effect.fail(new SnapshotFenced({ shard, epoch: current }))
        claimedEpochs.set(shard, epoch)
        const checkpoint = control.checkpoints.get(shard)
        return Effect.succeed(checkpoint === undefined ? undefined : claimed(control, shard, checkpoint))
      }),
    registerWriter: (shard, epoch, writer) =>
      Effect.suspend((): Effect.Effect<string | undefined, SnapshotUnavailable | SnapshotFenced> => {
        if (control.outage) return unavailable(shard)
        const current = claimedEpochs.get(shard) ?? 0
        if (current !== epoch) return Effect.fail(new SnapshotFenced({ shard, epoch: current }))
        const previous = control.writers.get(shard)
        control.writers.set(shard, writer)
        return Effect.succeed(previous)
      }),
    save: (checkpoint, savedAtMs, parts) =>
      Effect.suspend((): Effect.Effect<void, SnapshotUnavailable | SnapshotFenced> => {
        const { shard, epoch } = checkpoint
        if (control.outage) return unavailable(shard)
        const current = claimedEpochs.get(shard) ?? 0
        if (current !== epoch) return Effect.fail(new SnapshotFenced({ shard, epoch: current }))
        const segments = segmentsOf(control, shard)
        const stored = segments.get(checkpoint.segment) ?? new Map<string, StoredPart>()
        segments.set(checkpoint.segment, stored)
        for (const [index, part] of parts.entries()) {
          if (control.failSaveAfterParts !== undefined && index >= control.failSaveAfterParts) {
            return Effect.fail(new SnapshotUnavailable({ shard, message: "the save was cut short" }))
          }
          stored.set(partKey(part.tenantId, part.part), { part, savedAtMs })
          control.partWritesTotal++
        }
        control.checkpoints.set(shard, checkpoint)
        return Effect.void
      }),
    readEntries: (shard, segment, tenantId, part) =>
      Effect.suspend(() => {
        if (control.outage) return unavailable(shard)
        const stored = segmentsOf(control, shard).get(segment)?.get(partKey(tenantId, part))
        return Effect.succeed(
          stored === undefined ? undefined : { entries: stored.part.entries, fingerprints: stored.part.fingerprints },
        )
      }),
    deleteSegments: (shard, segments) =>
      Effect.suspend(() => {
        if (control.outage) return unavailable(shard)
        const stored = segmentsOf(control, shard)
        for (const { segment, parts } of segments) {
          const parts_ = stored.get(segment)
          if (parts_ === undefined) continue
          for (const { tenantId, part } of parts) parts_.delete(partKey(tenantId, part))
          if (parts_.size === 0) stored.delete(segment)
        }
        return Effect.void
      }),
  })
}

export const layerMemory = (control: MemorySnapshotControl = newMemorySnapshotControl()): Layer.Layer<SnapshotStore> =>
  Layer.succeed(SnapshotStore)(makeMemorySnapshotStore(control))
