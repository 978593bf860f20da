/**
 * The contract every ShardLeases adapter passes (memory, Redis): epochs strictly grow per shard,
 * shards are independent, and, where the adapter serves several nodes, a live lease keeps other
 * nodes out until it is released, after which another node takes the shard at once.
 */
import { Context, Effect, Layer, type Scope } from "effect"
import { describe, expect, it } from "vitest"
import { ShardLeases } from "../../persistence/shard-leases.ts"

export interface ShardLeasesContractOptions {
  /**
   * Whether two layer instances are two nodes sharing one store. An in-process adapter is one
   * node by design: its instances share nothing, so the tests between nodes do not apply.
   */
  readonly multiNode: boolean
  readonly timeoutMs?: number
}

/**
 * `makeLayer(nodeId)` is called per node in each test and must give leases over a store where
 * shards 0 to 3 have never been leased; instances made within one test share that store. Where
 * `multiNode`, an acquire of another node's live lease must fail within the test's timeout.
 */
export const shardLeasesContract = (
  name: string,
  makeLayer: (nodeId: string) => Layer.Layer<ShardLeases, unknown>,
  options: ShardLeasesContractOptions,
) => {
  const timeout = options.timeoutMs ?? 10_000
  const node = (nodeId: string): Effect.Effect<ShardLeases["Service"], unknown, Scope.Scope> =>
    Layer.build(makeLayer(nodeId)).pipe(Effect.map((context) => Context.get(context, ShardLeases)))
  const run = <A, E>(program: Effect.Effect<A, E, Scope.Scope>): Promise<A> =>
    Effect.runPromise(Effect.scoped(program) as Effect.Effect<A, unknown>)

  describe(`ShardLeases contract: ${name}`, () => {
    it(
      "gives strictly greater epochs across acquire, release, acquire",
      () =>
        run(
          Effect.gen(function* () {
            const leases = yield* node("node-a")
            const epochs: Array<number> = []
            for (let round = 0; round < 4; round++) {
              const lease = yield* leases.acquire(0)
              expect(lease.shard).toBe(0)
              epochs.push(lease.epoch)
              yield* leases.release(lease)
            }
            for (let index = 1; index < epochs.length; index++) {
              expect(epochs[index]).toBeGreaterThan(epochs[index - 1] ?? Number.POSITIVE_INFINITY)
            }
          }),
        ),
      timeout,
    )

    it(
      "keeps shards independent: a held lease on one shard neither blocks nor fences another",
      () =>
        run(
          Effect.gen(function* () {
            const leases = yield* node("node-a")
            const first = yield* leases.acquire(1)
            const other = yield* leases.acquire(2)
            expect(other.shard).toBe(2)
            const again = yield* leases.acquire(2)
            expect(again.epoch).toBeGreaterThan(other.epoch)
            yield* leases.release(first)
            const afterRelease = yield* leases.acquire(1)
            expect(afterRelease.epoch).toBeGreaterThan(first.epoch)
          }),
        ),
      timeout,
    )

    if (!options.multiNode) return

    it(
      "keeps a second node out of a live lease, and lets it in at once after release with a greater epoch",
      () =>
        run(
          Effect.gen(function* () {
            const nodeA = yield* node("node-a")
            const nodeB = yield* node("node-b")
            const held = yield* nodeA.acquire(3)
            const refused = yield* Effect.result(nodeB.acquire(3))
            expect(refused._tag).toBe("Failure")
            if (refused._tag === "Failure")
              expect(refused.failure).toMatchObject({ _tag: "LeaseUnavailable", shard: 3 })
            const elsewhere = yield* nodeB.acquire(0)
            expect(elsewhere.shard).toBe(0)
            yield* nodeA.release(held)
            const taken = yield* nodeB.acquire(3)
            expect(taken.epoch).toBeGreaterThan(held.epoch)
            const refusedBack = yield* Effect.result(nodeA.acquire(3))
            expect(refusedBack._tag).toBe("Failure")
          }),
        ),
      timeout,
    )
  })
}
