/**
 * Recovery of a node's shards, together: take each shard's lease (a new epoch), claim its snapshot
 * store for that epoch and register this ownership's journal writer there, fence the writers the
 * previous owners registered (an owner of another shard set has another writer id), open one
 * journal writer for all of them (which fences every earlier writer of this set), then rebuild each shard from its snapshot (accounts, live entries, the entry
 * index) and the journal records after its checkpoint. The writer is opened before the replay so
 * that no stale owner can append after the point this replay reads to.
 *
 * A snapshot's checkpoint is exact (the segments up to it hold the state as of its offset), so
 * the replay applies every record after it with the same assertions as live.
 */
import { Effect, Exit, Scope } from "effect"
import { evolve } from "../core/evolve.ts"
import { checkEntity } from "../core/invariants.ts"
import { AccountMap, type Entry, entityKey, Ledger } from "../core/ledger.ts"
import { creditRetentionMs } from "../core/policy.ts"
import { decodeFingerprints, decodeSection } from "../core/segment-codec.ts"
import type { Journal, JournalUnavailable, JournalWriter } from "../persistence/journal.ts"
import type { LeaseUnavailable, ShardLease, ShardLeases } from "../persistence/shard-leases.ts"
import type {
  ClaimedSnapshot,
  SegmentFingerprints,
  SnapshotFenced,
  SnapshotStore,
  SnapshotUnavailable,
} from "../persistence/snapshot-store.ts"
import { EntryIndex } from "./entry-index.ts"
import type { RuntimeLimits } from "./limits.ts"
import type { SavedSegment, SnapshotStart } from "./snapshot-writer.ts"

export interface PersistencePorts {
  readonly journal: Journal["Service"]
  readonly snapshots: SnapshotStore["Service"]
  readonly leases: ShardLeases["Service"]
}

export interface RecoveredShard {
  readonly shard: number
  readonly ledger: Ledger
  readonly index: EntryIndex
  readonly snapshot: SnapshotStart
  readonly eventsReplayed: number
}

/** The recovered shards and the resources of this ownership (closed by `release`). */
export interface NodeIncarnation {
  readonly writer: JournalWriter
  readonly shards: ReadonlyArray<RecoveredShard>
  readonly release: Effect.Effect<void>
}

export type RecoveryError = JournalUnavailable | SnapshotUnavailable | SnapshotFenced | LeaseUnavailable

/** Shards claimed and replayed at once: bounds the memory and I/O of a cold start. */
const recoveryConcurrency = 4

interface Claimed {
  readonly lease: ShardLease
  readonly snapshot: ClaimedSnapshot | undefined
  /** The journal writer of the ownership before this one, when it registered one. */
  readonly previousWriter: string | undefined
}

/** Parts of segments a checkpoint does not reach are left over from a save cut short: delete them first. */
const deleteLeftovers = (ports: PersistencePorts, shard: number, snapshot: ClaimedSnapshot | undefined) => {
  if (snapshot === undefined) return Effect.void
  const leftovers = groupSegments(snapshot.parts.filter((part) => part.segment > snapshot.checkpoint.segment))
  return leftovers.length === 0 ? Effect.void : ports.snapshots.deleteSegments(shard, leftovers)
}

const groupSegments = (parts: ReadonlyArray<SegmentFingerprints>): Array<SavedSegment> => {
  const bySegment = new Map<number, SavedSegment & { parts: Array<{ tenantId: string; part: number }> }>()
  for (const part of parts) {
    let segment = bySegment.get(part.segment)
    if (segment === undefined) {
      // Whether it holds credits is not stored; assume so, which keeps it the longer window.
      segment = { segment: part.segment, savedAtMs: part.savedAtMs, holdsCredits: true, parts: [] }
      bySegment.set(part.segment, segment)
    }
    segment.parts.push({ tenantId: part.tenantId, part: part.part })
  }
  return [...bySegment.values()].sort((a, b) => a.segment - b.segment)
}

/** Accounts and live entries as of the checkpoint, each checked; the index of every saved entry still in its window. */
const stateFromSnapshot = (snapshot: ClaimedSnapshot | undefined, limits: RuntimeLimits, nowMs: number) => {
  const ledger = new Ledger()
  const index = new EntryIndex(limits.idempotencyKeysMax)
  if (snapshot === undefined) return { ledger, index, segments: [], accountBytes: 0 }
  let accountBytes = 0
  for (const section of [...snapshot.accounts, ...snapshot.live]) {
    accountBytes += section.byteLength
    for (const entity of decodeSection(section)) {
      checkEntity(entity)
      ledger.put(entity)
    }
  }
  const kept = snapshot.parts
    .filter((part) => part.segment <= snapshot.checkpoint.segment)
    .filter((part) => part.savedAtMs + creditRetentionMs(limits.policy) > nowMs)
    .sort((a, b) => a.segment - b.segment)
  for (const part of kept) {
    const slot = index.registerSegment(part.segment, part.savedAtMs)
    for (const fingerprint of decodeFingerprints(part.fingerprints)) index.add(fingerprint, slot, part.part)
  }
  const segments = groupSegments(snapshot.parts.filter((part) => part.segment <= snapshot.checkpoint.segment))
  return { ledger, index, segments, accountBytes }
}

const rebuildShard = (ports: PersistencePorts, limits: RuntimeLimits, nowMs: number, claimed: Claimed) =>
  Effect.gen(function* () {
    const shard = claimed.lease.shard
    const { ledger, index, segments, accountBytes } = stateFromSnapshot(claimed.snapshot, limits, nowMs)
    const dirtyAccounts = new AccountMap()
    const dirtyEntries = new Map<string, Entry>()
    let eventsReplayed = 0
    const fromOffset = claimed.snapshot?.checkpoint.nextOffset ?? 0
    const { nextOffset } = yield* ports.journal.replay(shard, fromOffset, (entries) => {
      for (const entry of entries) {
        for (const event of entry.record.events) {
          for (const entity of evolve(ledger, event)) {
            ledger.put(entity)
            if (entity.kind === "account") dirtyAccounts.set(entity.value)
            else dirtyEntries.set(entityKey(entity), entity)
          }
          eventsReplayed++
        }
      }
    })
    const snapshot: SnapshotStart = {
      epoch: claimed.lease.epoch,
      nextOffset,
      dirtyAccounts,
      dirtyEntries,
      baseSegment: claimed.snapshot?.checkpoint.base,
      accountBytesStored: accountBytes,
      segments,
    }
    const recovered: RecoveredShard = { shard, ledger, index, snapshot, eventsReplayed }
    return recovered
  })

/**
 * Takes the shard's lease and claims its snapshot store with the lease's epoch. A claim that finds
 * the same or a newer epoch already claimed (the epoch counter handed out a number again, as a
 * store restored from an old backup could) is retried once with a lease above that epoch; a newer
 * owner still fences it.
 */
const claimShard = (ports: PersistencePorts, scope: Scope.Scope, shard: number) =>
  Effect.gen(function* () {
    const lease = yield* ports.leases.acquire(shard)
    yield* Scope.addFinalizer(scope, ports.leases.release(lease))
    const first = yield* Effect.result(ports.snapshots.claim(shard, lease.epoch))
    if (first._tag === "Success") return { lease, snapshot: first.success }
    if (first.failure._tag !== "SnapshotFenced") return yield* first.failure
    const above = yield* ports.leases.acquire(shard, first.failure.epoch)
    yield* Scope.addFinalizer(scope, ports.leases.release(above))
    const snapshot = yield* ports.snapshots.claim(shard, above.epoch)
    return { lease: above, snapshot }
  })

export const recoverNode = Effect.fn("Node.recover")(function* (
  ports: PersistencePorts,
  shards: ReadonlyArray<number>,
  limits: RuntimeLimits,
  nowMs: number,
): Effect.fn.Return<NodeIncarnation, RecoveryError> {
  // The ownership's resources close together: the journal writer first, then the leases, so
  // another node can take the shards at once when this one stops serving them.
  const scope = yield* Scope.make()
  const writerId = ports.journal.writerIdOf(shards)
  // Phase times for the log: what a hand-off's pause is made of.
  const startedAtMs = performance.now()
  const phaseMs = { claims: 0, fences: 0, writer: 0, replay: 0 }
  let phaseStartMs = startedAtMs
  const endPhase = (phase: keyof typeof phaseMs) => {
    const now = performance.now()
    phaseMs[phase] = Math.round(now - phaseStartMs)
    phaseStartMs = now
  }
  const recovered = Effect.gen(function* () {
    const claims = yield* Effect.forEach(
      shards,
      (shard) =>
        Effect.gen(function* () {
          const { lease, snapshot } = yield* claimShard(ports, scope, shard)
          const previousWriter = yield* ports.snapshots.registerWriter(shard, lease.epoch, writerId)
          yield* deleteLeftovers(ports, shard, snapshot)
          return { lease, snapshot, previousWriter } satisfies Claimed
        }),
      { concurrency: recoveryConcurrency },
    )
    endPhase("claims")
    // A previous owner that held these shards under another writer id (another shard set) is fenced
    // before this ownership writes or replays: its open transaction is aborted, so the replay below
    // reads everything it ever had acknowledged, and it can append nothing after.
    const previousWriters = new Set(claims.flatMap((claimed) => claimed.previousWriter ?? []))
    previousWriters.delete(writerId)
    yield* Effect.forEach(previousWriters, (previous) => ports.journal.fence(previous), { concurrency: 4 })
    endPhase("fences")
    const writer = yield* ports.journal.openWriter(shards).pipe(Scope.provide(scope))
    endPhase("writer")
    const rebuilt = yield* Effect.forEach(claims, (claimed) => rebuildShard(ports, limits, nowMs, claimed), {
      concurrency: recoveryConcurrency,
    })
    endPhase("replay")
    return { writer, shards: rebuilt, release: Scope.close(scope, Exit.void) } satisfies NodeIncarnation
  })
  const incarnation = yield* recovered.pipe(Effect.onError((cause) => Scope.close(scope, Exit.failCause(cause))))
  yield* Effect.logInfo("shards recovered").pipe(
    Effect.annotateLogs({
      shards: shards.length,
      eventsReplayed: incarnation.shards.reduce((sum, shard) => sum + shard.eventsReplayed, 0),
      accounts: incarnation.shards.reduce((sum, shard) => sum + shard.ledger.accounts.size, 0),
      durationMs: Math.round(performance.now() - startedAtMs),
      ...Object.fromEntries(Object.entries(phaseMs).map(([phase, ms]) => [`${phase}Ms`, ms])),
    }),
  )
  return incarnation
})
