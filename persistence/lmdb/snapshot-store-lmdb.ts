/**
 * The SnapshotStore on LMDB (embedded mode): entities keyed [shard, entityKey] and, per shard, a
 * checkpoint record with the newest claim epoch and the last saved checkpoint. A claim and a save
 * each run in one transaction, so the epoch check and the writes are atomic, and a save moves its
 * entities and its checkpoint together (the write order the port describes for stores without
 * transactions is moot here). Both resolve only once synced to disk.
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

const save = (environment: LedgerEnvironment, checkpoint: ShardCheckpoint, changed: ReadonlyArray<Entity>) =>
  Effect.suspend(() => {
    const { shard, epoch, nextOffset } = checkpoint
    // Encoded before the transaction so the shared write batch waits on no JSON work.
    const encoded = changed.map((entity) => [entityKey(entity), encodeEntity(entity)] as const)
    return transact(environment, shard, (): undefined | Fenced => {
      const claimEpoch = environment.checkpoints.get(shard)?.claimEpoch ?? 0
      if (claimEpoch !== epoch) return { fencedBy: claimEpoch }
      for (const [key, text] of encoded) environment.entities.putSync([shard, key], text)
      environment.checkpoints.putSync(shard, { claimEpoch, saved: { epoch, nextOffset } })
      return undefined
    })
  })

export const makeLmdbSnapshotStore = (environment: LedgerEnvironment): SnapshotStore["Service"] =>
  SnapshotStore.of({
    claim: (shard, epoch) => claim(environment, shard, epoch),
    save: (checkpoint, changed) => save(environment, checkpoint, changed),
  })

/** The store alone on its own environment; `layerLmdb` provides it with the other ports. */
export const layerLmdbSnapshotStore = (config: LmdbConfig): Layer.Layer<SnapshotStore, LmdbUnavailable> =>
  Layer.effect(SnapshotStore)(acquireLedgerEnvironment(config).pipe(Effect.map(makeLmdbSnapshotStore)))
