/**
 * Recovery of one shard: take the lease (a new epoch), claim the snapshot store for that epoch,
 * open the shard's journal writer (which fences any earlier writer), then rebuild the ledger from
 * the snapshot and the journal records after its checkpoint. The writer is opened before the
 * replay so that no stale owner can append after the point this replay reads to.
 */
import { Effect, Exit, Scope } from "effect"
import { evolve } from "../core/evolve.ts"
import { type Entity, entityKey, Ledger } from "../core/ledger.ts"
import { snapshotIncludes } from "../core/recovery.ts"
import type { Journal, JournalUnavailable, ShardWriter } from "../persistence/journal.ts"
import type { LeaseUnavailable, ShardLeases } from "../persistence/shard-leases.ts"
import type { SnapshotFenced, SnapshotStore, SnapshotUnavailable } from "../persistence/snapshot-store.ts"

export interface PersistencePorts {
  readonly journal: Journal["Service"]
  readonly snapshots: SnapshotStore["Service"]
  readonly leases: ShardLeases["Service"]
}

/** A shard's recovered state and the resources of this ownership (closed by `release`). */
export interface Incarnation {
  readonly epoch: number
  readonly ledger: Ledger
  readonly writer: ShardWriter
  /** Offset after the last durable record the ledger includes. */
  readonly nextOffset: number
  /** Entities rebuilt from journal records after the checkpoint: the next snapshot must save them. */
  readonly dirty: Map<string, Entity>
  readonly eventsReplayed: number
  readonly release: Effect.Effect<void>
}

export type RecoveryError = JournalUnavailable | SnapshotUnavailable | SnapshotFenced | LeaseUnavailable

const replayAfterSnapshot = (
  ports: PersistencePorts,
  shard: number,
  ledger: Ledger,
  fromOffset: number,
  dirty: Map<string, Entity>,
) => {
  let eventsReplayed = 0
  return ports.journal
    .replay(shard, fromOffset, (entries) => {
      for (const entry of entries) {
        for (const event of entry.record.events) {
          if (snapshotIncludes(ledger, event)) continue
          for (const entity of evolve(ledger, event)) {
            ledger.put(entity)
            dirty.set(entityKey(entity), entity)
          }
          eventsReplayed++
        }
      }
    })
    .pipe(Effect.map(({ nextOffset }) => ({ nextOffset, eventsReplayed })))
}

export const recoverShard = Effect.fn("Shard.recover")(function* (
  ports: PersistencePorts,
  shard: number,
): Effect.fn.Return<Incarnation, RecoveryError> {
  const lease = yield* ports.leases.acquire(shard)
  // The ownership's resources close together: the journal writer first, then the lease, so another
  // node can take the shard at once when this one stops serving it instead of waiting out the TTL.
  const scope = yield* Scope.make()
  yield* Scope.addFinalizer(scope, ports.leases.release(lease))
  const rebuilt = Effect.gen(function* () {
    const snapshot = yield* ports.snapshots.claim(shard, lease.epoch)
    const writer = yield* ports.journal.openWriter(shard).pipe(Scope.provide(scope))
    const ledger = new Ledger()
    for (const entity of snapshot?.entities ?? []) ledger.put(entity)
    const dirty = new Map<string, Entity>()
    const replayed = yield* replayAfterSnapshot(ports, shard, ledger, snapshot?.checkpoint.nextOffset ?? 0, dirty)
    const incarnation: Incarnation = {
      epoch: lease.epoch,
      ledger,
      writer,
      nextOffset: replayed.nextOffset,
      dirty,
      eventsReplayed: replayed.eventsReplayed,
      release: Scope.close(scope, Exit.void),
    }
    return { incarnation, snapshotEntities: snapshot?.entities.length ?? 0 }
  })
  const { incarnation, snapshotEntities } = yield* rebuilt.pipe(
    Effect.onError((cause) => Scope.close(scope, Exit.failCause(cause))),
  )
  yield* Effect.logInfo("shard recovered").pipe(
    Effect.annotateLogs({
      shard,
      epoch: lease.epoch,
      snapshotEntities,
      eventsReplayed: incarnation.eventsReplayed,
      nextOffset: incarnation.nextOffset,
    }),
  )
  return incarnation
})
