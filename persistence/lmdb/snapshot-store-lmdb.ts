/**
 * The SnapshotStore on LMDB (embedded mode): entities keyed [shard, entityKey] and, per shard, a
 * checkpoint record with the newest claim epoch and the last saved checkpoint. A claim runs in one
 * transaction; a save in slices of bounded size, each checking the epoch atomically with its
 * writes, entries before accounts and the checkpoint with the last slice (the write order the
 * port describes), so that no one transaction holds the event loop long. All resolve only once
 * synced to disk.
 */
import { Effect, Layer } from "effect"
import { decodeEntity, encodeEntity } from "../../core/entity-codec.ts"
import { type Entity, entityKey } from "../../core/ledger.ts"
import {
  type ShardCheckpoint,
  type ShardSnapshot,
  SnapshotFenced,
  SnapshotStore,
  SnapshotUnavailable,
} from "../snapshot-store.ts"
import {
  acquireLedgerEnvironment,
  type LedgerEnvironment,
  type LmdbConfig,
  type LmdbUnavailable,
  lmdbErrorMessage,
  type StoredCheckpoint,
} from "./environment.ts"

/** What a transaction callback returns when a newer epoch holds the shard. */
interface Fenced {
  readonly fencedBy: number
}
const isFenced = (value: unknown): value is Fenced => typeof value === "object" && value !== null && "fencedBy" in value

const transact = <A>(environment: LedgerEnvironment, shard: number, body: () => A | Fenced) =>
  Effect.tryPromise({
    // A child transaction: a throw half way through aborts this claim or save alone, not the
    // journal appends of other shards that share the batched write transaction.
    try: () => environment.root.childTransaction(body),
    catch: (error) => new SnapshotUnavailable({ shard, message: lmdbErrorMessage(error) }),
  }).pipe(
    Effect.flatMap((result) =>
      isFenced(result)
        ? Effect.fail(new SnapshotFenced({ shard, epoch: result.fencedBy }))
        : Effect.succeed(result as A),
    ),
  )

/**
 * Entities are read after the claim committed, outside the write transaction, so that decoding
 * a large snapshot does not hold up the batched journal appends. Nothing can change them between
 * the two: only the claiming epoch may save, and its owner is the one waiting on this claim.
 */
const readEntities = (environment: LedgerEnvironment, shard: number) =>
  Effect.try({
    try: () => {
      environment.root.resetReadTxn()
      return Array.from(environment.entities.getRange({ start: [shard, ""], end: [shard + 1, ""] }))
    },
    catch: (error) => new SnapshotUnavailable({ shard, message: lmdbErrorMessage(error) }),
  }).pipe(
    // A stored entity that does not decode is damage or a bug: dying beats serving wrong balances.
    Effect.flatMap((raw) => Effect.sync(() => raw.map(({ value }) => decodeEntity(value)))),
  )

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
    const entities = yield* readEntities(environment, shard)
    const snapshot: ShardSnapshot = { checkpoint: { shard, ...saved }, entities }
    return snapshot
  })

/**
 * Entities written per transaction of a save. A save carries every entity changed since the last
 * one (tens of thousands under load); written in one transaction it held the event loop and the
 * journal commits that share the write batch for tens of milliseconds. In slices, each is encoded
 * just before its own transaction and the event loop runs between them.
 */
const saveSliceEntitiesMax = 256

/** Entries (payments, deposits, credits) before accounts: the order the port requires of a save in parts. */
const entriesFirst = (changed: ReadonlyArray<Entity>): ReadonlyArray<Entity> => [
  ...changed.filter((entity) => entity.kind !== "account"),
  ...changed.filter((entity) => entity.kind === "account"),
]

/**
 * Writes the entities in slices, entries before accounts, each slice conditional on the epoch, and
 * moves the checkpoint with the last slice. A save cut short leaves entities at most ahead of the
 * checkpoint, never behind it, which recovery allows (see the SnapshotStore port).
 */
const save = (environment: LedgerEnvironment, checkpoint: ShardCheckpoint, changed: ReadonlyArray<Entity>) =>
  Effect.gen(function* () {
    const { shard, epoch, nextOffset } = checkpoint
    const ordered = entriesFirst(changed)
    for (let start = 0; start === 0 || start < ordered.length; start += saveSliceEntitiesMax) {
      const last = start + saveSliceEntitiesMax >= ordered.length
      // Encoded before the transaction so the shared write batch waits on no JSON work.
      const encoded = ordered
        .slice(start, start + saveSliceEntitiesMax)
        .map((entity) => [entityKey(entity), encodeEntity(entity)] as const)
      yield* transact(environment, shard, (): undefined | Fenced => {
        const claimEpoch = environment.checkpoints.get(shard)?.claimEpoch ?? 0
        if (claimEpoch !== epoch) return { fencedBy: claimEpoch }
        for (const [key, text] of encoded) environment.entities.putSync([shard, key], text)
        if (last) environment.checkpoints.putSync(shard, { claimEpoch, saved: { epoch, nextOffset } })
        return undefined
      })
    }
  })

export const makeLmdbSnapshotStore = (environment: LedgerEnvironment): SnapshotStore["Service"] =>
  SnapshotStore.of({
    claim: (shard, epoch) => claim(environment, shard, epoch),
    save: (checkpoint, changed) => save(environment, checkpoint, changed),
  })

/** The store alone on its own environment; `layerLmdb` provides it with the other ports. */
export const layerLmdbSnapshotStore = (config: LmdbConfig): Layer.Layer<SnapshotStore, LmdbUnavailable> =>
  Layer.effect(SnapshotStore)(acquireLedgerEnvironment(config).pipe(Effect.map(makeLmdbSnapshotStore)))
