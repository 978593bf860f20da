/**
 * The SnapshotStore on LMDB (embedded mode): each segment is one file under
 * `${dataDir}/segments/<shard>/` (see `segment-files.ts`), and LMDB holds per shard a checkpoint
 * record with the newest claim epoch and the last saved checkpoint, and the catalog of segments
 * ([shard, segment] -> the epoch whose file it is). The catalog is the truth: a file becomes part
 * of the store when the transaction that moves the checkpoint names it, so a save cut short leaves
 * only a file nobody names, which the next claim removes.
 *
 * A save writes and syncs its file, then in one transaction checks the epoch, catalogs the file and
 * moves the checkpoint. All resolve only once synced to disk.
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
  type CatalogKey,
  type LedgerEnvironment,
  type LmdbConfig,
  type LmdbUnavailable,
  lmdbErrorMessage,
  type StoredCheckpoint,
} from "./environment.ts"
import { listSegmentFiles, removeSegmentFiles, withSegmentFile, writeSegmentFile } from "./segment-files.ts"

/** What a transaction callback returns when a newer epoch holds the shard. */
interface Fenced {
  readonly fencedBy: number
}
const isFenced = (value: unknown): value is Fenced => typeof value === "object" && value !== null && "fencedBy" in value

/** Parts are kept small so a lookup reads little. */
const partBytesMax = 256 * 1024

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

const onDisk = <A>(shard: number, run: () => Promise<A>) =>
  Effect.tryPromise({
    try: run,
    catch: (error) =>
      new SnapshotUnavailable({ shard, message: error instanceof Error ? error.message : String(error) }),
  })

/** The shard's cataloged segments, oldest first. */
const catalogOf = (environment: LedgerEnvironment, shard: number): Array<{ segment: number; epoch: number }> =>
  Array.from(environment.segmentCatalog.getRange({ start: [shard], end: [shard + 1] }), ({ key, value }) => ({
    segment: (key as CatalogKey)[1],
    epoch: value,
  }))

/**
 * Reads what a claim returns, after the claim committed, from the files the catalog names. Nothing
 * can change meanwhile: only the claiming epoch may save, and its owner is the one waiting on this
 * claim. A cataloged file that is missing is damage, not absence: the claim fails rather than
 * recover a ledger without some of its accounts.
 */
const readClaimed = async (environment: LedgerEnvironment, checkpoint: ShardCheckpoint): Promise<ClaimedSnapshot> => {
  const { shard } = checkpoint
  environment.root.resetReadTxn()
  const accounts: Array<Uint8Array> = []
  const live: Array<Uint8Array> = []
  const parts: Array<SegmentFingerprints> = []
  for (const { segment, epoch } of catalogOf(environment, shard)) {
    const found = await withSegmentFile(environment.segmentsDir, shard, segment, epoch, async (file) => {
      for (const spans of file.index.parts) {
        if (segment >= checkpoint.base && segment <= checkpoint.segment)
          accounts.push(await file.section(spans, "accounts"))
        if (segment === checkpoint.segment) live.push(await file.section(spans, "live"))
        const fingerprints = await file.section(spans, "fingerprints")
        parts.push({
          segment,
          tenantId: spans.tenantId,
          part: spans.part,
          savedAtMs: file.index.savedAtMs,
          fingerprints,
        })
      }
      return true
    })
    if (found === undefined)
      throw new Error(`segment ${segment} of shard ${shard} is cataloged but its file is missing`)
  }
  return { checkpoint, accounts, live, parts }
}

/**
 * Removes the shard's files that no catalog entry names and whose epoch is older than `epoch`:
 * saves cut short, or fenced. Files of `epoch` or newer are left alone: a newer owner may be
 * writing one that it is about to catalog.
 */
const removeUncatalogedFiles = async (environment: LedgerEnvironment, shard: number, epoch: number) => {
  const cataloged = new Set(catalogOf(environment, shard).map((file) => `${file.segment}-${file.epoch}`))
  const stale = (await listSegmentFiles(environment.segmentsDir, shard)).filter(
    (file) => file.epoch < epoch && !cataloged.has(`${file.segment}-${file.epoch}`),
  )
  await removeSegmentFiles(environment.segmentsDir, shard, stale)
}

const claim = (environment: LedgerEnvironment, shard: number, epoch: number) =>
  Effect.gen(function* () {
    const saved = yield* transact(environment, shard, (): StoredCheckpoint["saved"] | Fenced => {
      const stored = environment.checkpoints.get(shard)
      const claimEpoch = stored?.claimEpoch ?? 0
      // Strictly newer: an epoch is claimed at most once.
      if (claimEpoch >= epoch) return { fencedBy: claimEpoch }
      const savedCheckpoint = stored?.saved ?? null
      environment.checkpoints.putSync(shard, { ...stored, claimEpoch: epoch, saved: savedCheckpoint })
      return savedCheckpoint
    })
    environment.root.resetReadTxn()
    yield* onDisk(shard, () => removeUncatalogedFiles(environment, shard, epoch))
    if (saved === null) return undefined
    return yield* onDisk(shard, () => readClaimed(environment, { shard, ...saved }))
  })

const registerWriter = (environment: LedgerEnvironment, shard: number, epoch: number, writer: string) =>
  transact(environment, shard, (): { readonly previous: string | undefined } | Fenced => {
    const stored = environment.checkpoints.get(shard)
    const claimEpoch = stored?.claimEpoch ?? 0
    if (stored === undefined || claimEpoch !== epoch) return { fencedBy: claimEpoch }
    environment.checkpoints.putSync(shard, { ...stored, writer })
    return { previous: stored.writer }
  }).pipe(Effect.map((registered) => registered.previous))

const save = (
  environment: LedgerEnvironment,
  checkpoint: ShardCheckpoint,
  savedAtMs: number,
  parts: ReadonlyArray<SegmentPart>,
) =>
  Effect.gen(function* () {
    const { shard, epoch, nextOffset, segment, base } = checkpoint
    // Cheap early refusal; the transaction below checks again, atomically with the checkpoint move.
    const claimedBefore = environment.checkpoints.get(shard)?.claimEpoch ?? 0
    if (claimedBefore !== epoch) return yield* Effect.fail(new SnapshotFenced({ shard, epoch: claimedBefore }))
    yield* onDisk(shard, () => writeSegmentFile(environment.segmentsDir, shard, segment, epoch, savedAtMs, parts))
    yield* transact(environment, shard, (): undefined | Fenced => {
      const stored = environment.checkpoints.get(shard)
      const claimEpoch = stored?.claimEpoch ?? 0
      if (claimEpoch !== epoch) return { fencedBy: claimEpoch }
      environment.segmentCatalog.putSync([shard, segment], epoch)
      environment.checkpoints.putSync(shard, { ...stored, claimEpoch, saved: { epoch, nextOffset, segment, base } })
      return undefined
    }).pipe(
      Effect.tapError((error) =>
        error._tag === "SnapshotFenced"
          ? Effect.promise(() => removeSegmentFiles(environment.segmentsDir, shard, [{ segment, epoch }])).pipe(
              Effect.catchCause(() => Effect.void),
            )
          : Effect.void,
      ),
    )
  })

/** Synchronous, like a read of the memory map: see `SegmentLookupFiles`. */
const readEntries = (environment: LedgerEnvironment, shard: number, segment: number, tenantId: string, part: number) =>
  Effect.try({
    try: () => {
      const epoch = environment.segmentCatalog.get([shard, segment])
      // Not cataloged, or its file deleted since: the part is gone.
      if (epoch === undefined) return undefined
      return environment.segmentLookups.readPart(shard, segment, epoch, tenantId, part)
    },
    catch: (error) =>
      new SnapshotUnavailable({ shard, message: error instanceof Error ? error.message : String(error) }),
  })

/** Drops the segments from the catalog, then removes their files (a crash between leaves files the next claim removes). */
const deleteSegments = (environment: LedgerEnvironment, shard: number, segments: ReadonlyArray<StoredSegment>) =>
  transact(environment, shard, () => {
    const removed: Array<{ segment: number; epoch: number }> = []
    for (const { segment } of segments) {
      const epoch = environment.segmentCatalog.get([shard, segment])
      if (epoch === undefined) continue
      environment.segmentCatalog.removeSync([shard, segment])
      removed.push({ segment, epoch })
    }
    return removed
  }).pipe(
    Effect.flatMap((removed) =>
      onDisk(shard, () => {
        environment.segmentLookups.forget(shard, removed)
        return removeSegmentFiles(environment.segmentsDir, shard, removed)
      }),
    ),
    Effect.catchTag("SnapshotFenced", () => Effect.void),
  )

export const makeLmdbSnapshotStore = (environment: LedgerEnvironment): SnapshotStore["Service"] =>
  SnapshotStore.of({
    partBytesMax,
    claim: (shard, epoch) => claim(environment, shard, epoch),
    registerWriter: (shard, epoch, writer) => registerWriter(environment, shard, epoch, writer),
    save: (checkpoint, savedAtMs, parts) => save(environment, checkpoint, savedAtMs, parts),
    readEntries: (shard, segment, tenantId, part) => readEntries(environment, shard, segment, tenantId, part),
    deleteSegments: (shard, segments) => deleteSegments(environment, shard, segments),
  })

/** The store alone on its own environment; `layerLmdb` provides it with the other ports. */
export const layerLmdbSnapshotStore = (config: LmdbConfig): Layer.Layer<SnapshotStore, LmdbUnavailable> =>
  Layer.effect(SnapshotStore)(acquireLedgerEnvironment(config).pipe(Effect.map(makeLmdbSnapshotStore)))
