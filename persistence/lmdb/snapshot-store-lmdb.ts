/**
 * The SnapshotStore on LMDB (embedded mode): each section of each segment part under its own key
 * [shard, segment, tenant, part, section], and per shard a checkpoint record with the newest claim
 * epoch and the last saved checkpoint. Sections are separate keys so that a claim reads only the
 * accounts, live entries and fingerprints it needs and a lookup only one entries section: pages of
 * the memory map are touched when read, and what is never read never becomes resident memory.
 *
 * A claim runs in one transaction; a save writes its parts in slices of bounded size (so no one
 * transaction holds the event loop long), each checking the epoch atomically with its writes, and
 * moves the checkpoint with the last slice. All resolve only once synced to disk.
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
  type StoredSegment,
} from "../snapshot-store.ts"
import {
  acquireLedgerEnvironment,
  type LedgerEnvironment,
  type LmdbConfig,
  type LmdbUnavailable,
  lmdbErrorMessage,
  type SegmentKey,
  type StoredCheckpoint,
} from "./environment.ts"

/** What a transaction callback returns when a newer epoch holds the shard. */
interface Fenced {
  readonly fencedBy: number
}
const isFenced = (value: unknown): value is Fenced => typeof value === "object" && value !== null && "fencedBy" in value

/** Parts are kept small so a lookup reads (and maps) little; LMDB itself takes any size. */
const partBytesMax = 256 * 1024

/** Bytes of parts written per transaction of a save. */
const saveSliceBytesMax = 1024 * 1024

const transact = <A>(environment: LedgerEnvironment, shard: number, body: () => A | Fenced) =>
  Effect.tryPromise({
    // A child transaction: a throw half way through aborts this claim or save alone, not the
    // journal appends that share the batched write transaction.
    try: () => environment.root.childTransaction(body),
    catch: (error) => new SnapshotUnavailable({ shard, message: lmdbErrorMessage(error) }),
  }).pipe(
    Effect.flatMap((result) =>
      isFenced(result)
        ? Effect.fail(new SnapshotFenced({ shard, epoch: result.fencedBy }))
        : Effect.succeed(result as A),
    ),
  )

const savedAtBytes = (savedAtMs: number): Uint8Array => {
  const bytes = new Uint8Array(8)
  new DataView(bytes.buffer).setFloat64(0, savedAtMs, true)
  return bytes
}
const savedAtOf = (bytes: Uint8Array): number => new DataView(bytes.buffer, bytes.byteOffset, 8).getFloat64(0, true)

const unavailableTry = <A>(shard: number, run: () => A) =>
  Effect.try({ try: run, catch: (error) => new SnapshotUnavailable({ shard, message: lmdbErrorMessage(error) }) })

/**
 * Reads what a claim returns, after the claim committed and outside the write transaction, so that
 * a large snapshot does not hold up the batched journal appends. Nothing can change meanwhile:
 * only the claiming epoch may save, and its owner is the one waiting on this claim.
 */
const readClaimed = (environment: LedgerEnvironment, checkpoint: ShardCheckpoint): ClaimedSnapshot => {
  const { shard } = checkpoint
  environment.root.resetReadTxn()
  const accounts: Array<Uint8Array> = []
  const live: Array<Uint8Array> = []
  const parts = new Map<
    string,
    { segment: number; tenantId: string; part: number; savedAtMs: number; fingerprints: Uint8Array }
  >()
  const partOf = (segment: number, tenantId: string, part: number) => {
    const id = `${segment}\u0000${tenantId}\u0000${part}`
    let found = parts.get(id)
    if (found === undefined) {
      found = { segment, tenantId, part, savedAtMs: 0, fingerprints: new Uint8Array(0) }
      parts.set(id, found)
    }
    return found
  }
  for (const key of environment.segments.getKeys({ start: [shard], end: [shard + 1] })) {
    const [, segment, tenantId, part, section] = key as SegmentKey
    // getBinary copies out of the map (unlike getBinaryFast), so each section stays valid.
    const read = () => environment.segments.getBinary(key) ?? new Uint8Array(0)
    if (section === "a" && segment >= checkpoint.base && segment <= checkpoint.segment) accounts.push(read())
    if (section === "l" && segment === checkpoint.segment) live.push(read())
    if (section === "f") partOf(segment, tenantId, part).fingerprints = read()
    if (section === "t") partOf(segment, tenantId, part).savedAtMs = savedAtOf(read())
  }
  const stored: Array<SegmentFingerprints> = [...parts.values()]
  return { checkpoint, accounts, live, parts: stored }
}

const claim = (environment: LedgerEnvironment, shard: number, epoch: number) =>
  Effect.gen(function* () {
    const saved = yield* transact(environment, shard, (): StoredCheckpoint["saved"] | Fenced => {
      const stored = environment.checkpoints.get(shard)
      const claimEpoch = stored?.claimEpoch ?? 0
      if (claimEpoch > epoch) return { fencedBy: claimEpoch }
      const savedCheckpoint = stored?.saved ?? null
      environment.checkpoints.putSync(shard, { claimEpoch: epoch, saved: savedCheckpoint })
      return savedCheckpoint
    })
    if (saved === null) return undefined
    return yield* unavailableTry(shard, () => readClaimed(environment, { shard, ...saved }))
  })

const sectionsOf = (part: SegmentPart, savedAtMs: number): ReadonlyArray<readonly [SegmentKey[4], Uint8Array]> => [
  ["a", part.accounts],
  ["e", part.entries],
  ["l", part.live],
  ["f", part.fingerprints],
  ["t", savedAtBytes(savedAtMs)],
]

const partBytes = (part: SegmentPart): number =>
  part.accounts.byteLength + part.entries.byteLength + part.live.byteLength + part.fingerprints.byteLength

/** Slices of parts of at most `saveSliceBytesMax` (one part at least each); at least one slice, for the checkpoint. */
const slicesOf = (parts: ReadonlyArray<SegmentPart>): Array<Array<SegmentPart>> => {
  const slices: Array<Array<SegmentPart>> = [[]]
  let bytes = 0
  for (const part of parts) {
    const current = slices[slices.length - 1] as Array<SegmentPart>
    if (current.length > 0 && bytes + partBytes(part) > saveSliceBytesMax) {
      slices.push([part])
      bytes = partBytes(part)
    } else {
      current.push(part)
      bytes += partBytes(part)
    }
  }
  return slices
}

const save = (
  environment: LedgerEnvironment,
  checkpoint: ShardCheckpoint,
  savedAtMs: number,
  parts: ReadonlyArray<SegmentPart>,
) =>
  Effect.gen(function* () {
    const { shard, epoch, nextOffset, segment, base } = checkpoint
    const slices = slicesOf(parts)
    for (const [index, slice] of slices.entries()) {
      const last = index === slices.length - 1
      yield* transact(environment, shard, (): undefined | Fenced => {
        const claimEpoch = environment.checkpoints.get(shard)?.claimEpoch ?? 0
        if (claimEpoch !== epoch) return { fencedBy: claimEpoch }
        for (const part of slice) {
          for (const [section, bytes] of sectionsOf(part, savedAtMs)) {
            environment.segments.putSync([shard, segment, part.tenantId, part.part, section], bytes)
          }
        }
        if (last) environment.checkpoints.putSync(shard, { claimEpoch, saved: { epoch, nextOffset, segment, base } })
        return undefined
      })
    }
  })

const readEntries = (environment: LedgerEnvironment, shard: number, segment: number, tenantId: string, part: number) =>
  unavailableTry(shard, () => {
    const entries = environment.segments.getBinary([shard, segment, tenantId, part, "e"])
    const fingerprints = environment.segments.getBinary([shard, segment, tenantId, part, "f"])
    if (entries === undefined || fingerprints === undefined) return undefined
    // getBinary copies out of the map (unlike getBinaryFast), so these stay valid after later reads.
    return { entries, fingerprints }
  })

const deleteSegments = (environment: LedgerEnvironment, shard: number, segments: ReadonlyArray<StoredSegment>) =>
  transact(environment, shard, () => {
    for (const { segment, parts } of segments) {
      for (const { tenantId, part } of parts) {
        for (const section of ["a", "e", "l", "f", "t"] as const) {
          environment.segments.removeSync([shard, segment, tenantId, part, section])
        }
      }
    }
    return undefined
  }).pipe(Effect.catchTag("SnapshotFenced", () => Effect.void))

export const makeLmdbSnapshotStore = (environment: LedgerEnvironment): SnapshotStore["Service"] =>
  SnapshotStore.of({
    partBytesMax,
    claim: (shard, epoch) => claim(environment, shard, epoch),
    save: (checkpoint, savedAtMs, parts) => save(environment, checkpoint, savedAtMs, parts),
    readEntries: (shard, segment, tenantId, part) => readEntries(environment, shard, segment, tenantId, part),
    deleteSegments: (shard, segments) => deleteSegments(environment, shard, segments),
  })

/** The store alone on its own environment; `layerLmdb` provides it with the other ports. */
export const layerLmdbSnapshotStore = (config: LmdbConfig): Layer.Layer<SnapshotStore, LmdbUnavailable> =>
  Layer.effect(SnapshotStore)(acquireLedgerEnvironment(config).pipe(Effect.map(makeLmdbSnapshotStore)))
