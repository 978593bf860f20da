/**
 * The contract every SnapshotStore adapter passes (memory, LMDB, DynamoDB): incremental saves,
 * exact round trips, and fencing by epoch.
 */
import { Effect, type Layer } from "effect"
import { describe, expect, it } from "vitest"
import type { Entity } from "../../core/ledger.ts"
import { entityKey } from "../../core/ledger.ts"
import { SnapshotStore } from "../../persistence/snapshot-store.ts"
import { accountEntity, creditEntity, otherTenant, paymentEntity } from "./fixtures.ts"

const byKey = (entities: ReadonlyArray<Entity>) =>
  [...entities].sort((left, right) => entityKey(left).localeCompare(entityKey(right)))

/** `makeLayer` is called once per test and must give a store with no snapshot of shards 0 to 3. */
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
      "has no snapshot before the first save, then returns exactly what was saved",
      () =>
        run(
          Effect.gen(function* () {
            const store = yield* SnapshotStore
            expect(yield* store.claim(0, 1)).toBeUndefined()
            const saved = [
              accountEntity("acc-1", 123_456_789_012_345_678_901n, 7),
              accountEntity("acc-2", -250n, 3, otherTenant),
              paymentEntity("pay-1", "declined"),
              creditEntity("pay-9"),
            ]
            yield* store.save({ shard: 0, epoch: 1, nextOffset: 42 }, saved)
            const loaded = yield* store.claim(0, 2)
            expect(loaded?.checkpoint).toEqual({ shard: 0, epoch: 1, nextOffset: 42 })
            expect(byKey(loaded?.entities ?? [])).toEqual(byKey(saved))
          }),
        ),
      timeout,
    )

    it(
      "saves incrementally: later versions replace earlier ones, untouched entities stay",
      () =>
        run(
          Effect.gen(function* () {
            const store = yield* SnapshotStore
            yield* store.claim(1, 1)
            yield* store.save({ shard: 1, epoch: 1, nextOffset: 10 }, [
              accountEntity("acc-1", 100n, 2),
              accountEntity("acc-3", 1n, 2),
              paymentEntity("pay-1", "pending"),
            ])
            yield* store.save({ shard: 1, epoch: 1, nextOffset: 20 }, [
              accountEntity("acc-1", 40n, 4),
              paymentEntity("pay-1", "settled"),
            ])
            const loaded = yield* store.claim(1, 2)
            expect(loaded?.checkpoint.nextOffset).toBe(20)
            expect(byKey(loaded?.entities ?? [])).toEqual(
              byKey([accountEntity("acc-1", 40n, 4), accountEntity("acc-3", 1n, 2), paymentEntity("pay-1", "settled")]),
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
            yield* store.save({ shard: 2, epoch: 1, nextOffset: 5 }, [accountEntity("acc-1", 5n, 2)])
            yield* store.claim(2, 2)
            const staleSave = yield* Effect.result(
              store.save({ shard: 2, epoch: 1, nextOffset: 9 }, [accountEntity("acc-1", 666n, 3)]),
            )
            expect(staleSave._tag).toBe("Failure")
            if (staleSave._tag === "Failure") expect(staleSave.failure._tag).toBe("SnapshotFenced")
            const staleClaim = yield* Effect.result(store.claim(2, 1))
            expect(staleClaim._tag).toBe("Failure")
            const loaded = yield* store.claim(2, 3)
            expect(loaded?.checkpoint).toEqual({ shard: 2, epoch: 1, nextOffset: 5 })
            expect(loaded?.entities).toEqual([accountEntity("acc-1", 5n, 2)])
          }),
        ),
      timeout,
    )

    it(
      "saves a large change set (more than one write batch of any store)",
      () =>
        run(
          Effect.gen(function* () {
            const store = yield* SnapshotStore
            yield* store.claim(3, 1)
            const many = Array.from({ length: 450 }, (_, index) => accountEntity(`acc-${index}`, BigInt(index), 2))
            yield* store.save({ shard: 3, epoch: 1, nextOffset: 450 }, many)
            const loaded = yield* store.claim(3, 2)
            expect(byKey(loaded?.entities ?? [])).toEqual(byKey(many))
          }),
        ),
      timeout,
    )
  })
}
