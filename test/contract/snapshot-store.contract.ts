/**
 * The contract every SnapshotStore adapter passes (memory, LMDB, DynamoDB): segments saved and
 * claimed back exactly (accounts of the base and the deltas after it, live entries of the last
 * segment, fingerprints of every part), entries read back by part, deletion, tenants kept apart,
 * segments larger than one part, fencing by epoch, and the journal writer each ownership registers.
 */
import { Effect, type Layer } from "effect"
import { describe, expect, it } from "vitest"
import { buildSegment, type SegmentContents } from "../../actors/segment-builder.ts"
import type { Account, Entity, Entry } from "../../core/ledger.ts"
import { entityKey } from "../../core/ledger.ts"
import { decodeFingerprints, decodeSection, entriesWithFingerprint, fingerprintOf } from "../../core/segment-codec.ts"
import { type ClaimedSnapshot, type ShardCheckpoint, SnapshotStore } from "../../persistence/snapshot-store.ts"
import { accountEntity, creditEntity, depositEntity, otherTenant, paymentEntity } from "./fixtures.ts"

export const byKey = (entities: ReadonlyArray<Entity>) =>
  [...entities].sort((left, right) => entityKey(left).localeCompare(entityKey(right)))

export const accountsOf = (entities: ReadonlyArray<Entity>): Array<Account> =>
  entities.flatMap((entity) => (entity.kind === "account" ? [entity.value] : []))

export const entriesOf = (entities: ReadonlyArray<Entity>): Array<Entry> =>
  entities.flatMap((entity) => (entity.kind === "account" ? [] : [entity]))

/** Accounts as a claim gives them: later sections win. */
export const claimedAccounts = (claimed: ClaimedSnapshot | undefined): Array<Entity> => {
  const latest = new Map<string, Entity>()
  for (const section of claimed?.accounts ?? [])
    for (const entity of decodeSection(section)) latest.set(entityKey(entity), entity)
  return byKey([...latest.values()])
}

const claimedLive = (claimed: ClaimedSnapshot | undefined): Array<Entity> =>
  byKey((claimed?.live ?? []).flatMap((section) => decodeSection(section)))

/** Saves contents as one segment with the store's own part size. */
const saveSegment = (checkpoint: ShardCheckpoint, contents: SegmentContents, savedAtMs = 1_700_000_000_000) =>
  Effect.gen(function* () {
    const store = yield* SnapshotStore
    const built = buildSegment(contents, store.partBytesMax)
    yield* store.save(
      checkpoint,
      savedAtMs,
      built.parts.map((part) => part.part),
    )
    return built
  })

/** Reads an entry back through the claim's fingerprints, as the runtime does. */
const readBack = (shard: number, claimed: ClaimedSnapshot | undefined, entry: Entry) =>
  Effect.gen(function* () {
    const store = yield* SnapshotStore
    const key = entityKey(entry)
    const fingerprint = fingerprintOf(key)
    for (const part of [...(claimed?.parts ?? [])].sort((a, b) => b.segment - a.segment)) {
      if (part.tenantId !== entry.value.tenantId || !decodeFingerprints(part.fingerprints).includes(fingerprint))
        continue
      const stored = yield* store.readEntries(shard, part.segment, part.tenantId, part.part)
      if (stored === undefined) continue
      const found = entriesWithFingerprint(stored.entries, stored.fingerprints, fingerprint).find(
        (candidate) => entityKey(candidate) === key,
      )
      if (found !== undefined) return found
    }
    return undefined
  })

const checkpointOf = (
  shard: number,
  epoch: number,
  nextOffset: number,
  segment: number,
  base: number,
): ShardCheckpoint => ({
  shard,
  epoch,
  nextOffset,
  segment,
  base,
})

/** `makeLayer` is called once per test and must give a store with no snapshot of shards 0 to 5. */
export const snapshotStoreContract = (
  name: string,
  makeLayer: () => Layer.Layer<SnapshotStore, unknown>,
  options: { timeoutMs?: number } = {},
) => {
  const run = <A, E>(program: Effect.Effect<A, E, SnapshotStore>): Promise<A> =>
    Effect.runPromise(program.pipe(Effect.provide(makeLayer())) as Effect.Effect<A, unknown>)
  const timeout = options.timeoutMs ?? 10_000

  describe(`SnapshotStore contract: ${name}`, () => {
    it(
      "has no snapshot before the first save, then claims back exactly what was saved",
      () =>
        run(
          Effect.gen(function* () {
            const store = yield* SnapshotStore
            expect(yield* store.claim(0, 1)).toBeUndefined()
            const accounts = [
              accountEntity("acc-1", 123_456_789_012_345_678_901n, 7),
              accountEntity("acc-2", -250n, 3, otherTenant),
            ]
            const entries = [paymentEntity("pay-1", "declined"), creditEntity("pay-9"), depositEntity("dep-1")]
            const live = [paymentEntity("pay-2", "pending")]
            yield* saveSegment(checkpointOf(0, 1, 42, 100, 100), {
              accounts: accountsOf(accounts),
              entries: entriesOf(entries),
              live: entriesOf(live),
            })
            const claimed = yield* store.claim(0, 2)
            expect(claimed?.checkpoint).toEqual(checkpointOf(0, 1, 42, 100, 100))
            expect(claimedAccounts(claimed)).toEqual(byKey(accounts))
            expect(claimedLive(claimed)).toEqual(byKey(live))
            expect(new Set(claimed?.parts.map((part) => part.tenantId))).toEqual(
              new Set([accounts[0]?.value.tenantId, otherTenant]),
            )
            for (const part of claimed?.parts ?? []) expect(part.savedAtMs).toBe(1_700_000_000_000)
            for (const entry of entriesOf(entries)) expect(yield* readBack(0, claimed, entry)).toEqual(entry)
          }),
        ),
      timeout,
    )

    it(
      "claims accounts from the base and every segment after it, live entries from the last only",
      () =>
        run(
          Effect.gen(function* () {
            const store = yield* SnapshotStore
            yield* store.claim(1, 1)
            const base = [accountEntity("acc-1", 100n, 2), accountEntity("acc-3", 1n, 2)]
            yield* saveSegment(checkpointOf(1, 1, 10, 201, 201), {
              accounts: accountsOf(base),
              entries: [],
              live: entriesOf([paymentEntity("pay-1", "pending")]),
            })
            yield* saveSegment(checkpointOf(1, 1, 20, 202, 201), {
              accounts: accountsOf([accountEntity("acc-1", 40n, 4)]),
              entries: entriesOf([paymentEntity("pay-1", "settled")]),
              live: [],
            })
            const claimed = yield* store.claim(1, 2)
            expect(claimed?.checkpoint.nextOffset).toBe(20)
            expect(claimedAccounts(claimed)).toEqual(
              byKey([accountEntity("acc-1", 40n, 4), accountEntity("acc-3", 1n, 2)]),
            )
            expect(claimedLive(claimed)).toEqual([])
            expect(yield* readBack(1, claimed, entriesOf([paymentEntity("pay-1", "settled")])[0] as Entry)).toEqual(
              paymentEntity("pay-1", "settled"),
            )
          }),
        ),
      timeout,
    )

    it(
      "fences a stale owner: its saves and claims fail once a newer epoch claimed the shard",
      () =>
        run(
          Effect.gen(function* () {
            const store = yield* SnapshotStore
            yield* store.claim(2, 1)
            yield* saveSegment(checkpointOf(2, 1, 5, 301, 301), {
              accounts: accountsOf([accountEntity("acc-1", 5n, 2)]),
              entries: [],
              live: [],
            })
            yield* store.claim(2, 2)
            const staleSave = yield* Effect.result(
              saveSegment(checkpointOf(2, 1, 9, 302, 301), {
                accounts: accountsOf([accountEntity("acc-1", 666n, 3)]),
                entries: [],
                live: [],
              }),
            )
            expect(staleSave._tag).toBe("Failure")
            if (staleSave._tag === "Failure") expect(staleSave.failure._tag).toBe("SnapshotFenced")
            const staleClaim = yield* Effect.result(store.claim(2, 1))
            expect(staleClaim._tag).toBe("Failure")
            // An epoch already claimed is never claimed again, not even by its own owner.
            const repeatedClaim = yield* Effect.result(store.claim(2, 2))
            expect(repeatedClaim._tag === "Failure" && repeatedClaim.failure._tag).toBe("SnapshotFenced")
            const claimed = yield* store.claim(2, 3)
            expect(claimed?.checkpoint).toEqual(checkpointOf(2, 1, 5, 301, 301))
            expect(claimedAccounts(claimed)).toEqual([accountEntity("acc-1", 5n, 2)])
          }),
        ),
      timeout,
    )

    it(
      "records each ownership's journal writer and hands the previous one to the next owner, refusing a stale epoch",
      () =>
        run(
          Effect.gen(function* () {
            const store = yield* SnapshotStore
            yield* store.claim(3, 1)
            expect(yield* store.registerWriter(3, 1, "writer-of-0_1_2_3")).toBeUndefined()
            yield* saveSegment(checkpointOf(3, 1, 5, 401, 401), {
              accounts: accountsOf([accountEntity("acc-1", 5n, 2)]),
              entries: [],
              live: [],
            })
            // A save and a second claim keep the writer on record.
            yield* store.claim(3, 2)
            const stale = yield* Effect.result(store.registerWriter(3, 1, "stale-writer"))
            expect(stale._tag === "Failure" && stale.failure._tag).toBe("SnapshotFenced")
            expect(yield* store.registerWriter(3, 2, "writer-of-3")).toBe("writer-of-0_1_2_3")
            yield* store.claim(3, 3)
            expect(yield* store.registerWriter(3, 3, "writer-of-3")).toBe("writer-of-3")
            // Other shards have their own record.
            yield* store.claim(4, 1)
            expect(yield* store.registerWriter(4, 1, "writer-of-4")).toBeUndefined()
          }),
        ),
      timeout,
    )

    it(
      "saves a segment larger than one part, and reads any entry of it back",
      () =>
        run(
          Effect.gen(function* () {
            const store = yield* SnapshotStore
            yield* store.claim(3, 1)
            // Enough entries for several parts of any store's part size.
            const count = Math.ceil((store.partBytesMax * 3) / 300)
            const entries = Array.from({ length: count }, (_, index) => paymentEntity(`pay-${index}`, "settled"))
            const accounts = Array.from({ length: 450 }, (_, index) => accountEntity(`acc-${index}`, BigInt(index), 2))
            const built = yield* saveSegment(checkpointOf(3, 1, 450, 401, 401), {
              accounts: accountsOf(accounts),
              entries: entriesOf(entries),
              live: [],
            })
            expect(built.parts.length).toBeGreaterThan(2)
            const claimed = yield* store.claim(3, 2)
            expect(claimedAccounts(claimed)).toEqual(byKey(accounts))
            for (const index of [0, Math.floor(count / 2), count - 1]) {
              const entry = entriesOf(entries)[index] as Entry
              expect(yield* readBack(3, claimed, entry)).toEqual(entry)
            }
          }),
        ),
      timeout,
    )

    it(
      "deletes segments: their parts are no longer claimed nor read",
      () =>
        run(
          Effect.gen(function* () {
            const store = yield* SnapshotStore
            yield* store.claim(4, 1)
            const entry = entriesOf([depositEntity("dep-old")])[0] as Entry
            const first = yield* saveSegment(checkpointOf(4, 1, 3, 501, 501), {
              accounts: accountsOf([accountEntity("acc-1", 3n, 2)]),
              entries: [entry],
              live: [],
            })
            yield* saveSegment(checkpointOf(4, 1, 6, 502, 502), {
              accounts: accountsOf([accountEntity("acc-1", 6n, 3)]),
              entries: [],
              live: [],
            })
            yield* store.deleteSegments(4, [
              { segment: 501, parts: first.parts.map(({ part }) => ({ tenantId: part.tenantId, part: part.part })) },
            ])
            const claimed = yield* store.claim(4, 2)
            expect(claimed?.parts.some((part) => part.segment === 501)).toBe(false)
            expect(claimedAccounts(claimed)).toEqual([accountEntity("acc-1", 6n, 3)])
            expect(yield* store.readEntries(4, 501, entry.value.tenantId, 0)).toBeUndefined()
          }),
        ),
      timeout,
    )
  })
}
