/**
 * DynamoDB ShardEpochs against the local DynamoDB-API server: epochs strictly increase per shard
 * across nodes racing for them, above any floor named, and across restarts of the client; shards
 * count independently.
 */
import { Context, Effect, Layer, type Scope } from "effect"
import { beforeAll, describe, expect, it } from "vitest"
import { layerDynamoDbEpochs } from "../../persistence/dynamodb/shard-epochs-dynamodb.ts"
import { ShardEpochs } from "../../persistence/shard-epochs.ts"
import { stackUp } from "../../scripts/local-stack/stack.ts"

let endpoint = ""
const tablePrefix = `epochs-${Date.now().toString(36)}${process.pid.toString(36)}`

beforeAll(async () => {
  endpoint = (await stackUp()).dynamodbEndpoint
})

/** One node's client of the counter; each call opens a client of its own, as another node would. */
const node = (): Effect.Effect<ShardEpochs["Service"], never, Scope.Scope> =>
  Layer.build(layerDynamoDbEpochs({ endpoint, region: "us-east-1", tablePrefix })).pipe(
    Effect.map((context) => Context.get(context, ShardEpochs)),
  )

const run = <A, E>(program: Effect.Effect<A, E, Scope.Scope>): Promise<A> =>
  Effect.runPromise(Effect.scoped(program) as Effect.Effect<A, unknown>)

const increasing = (values: ReadonlyArray<number>): boolean =>
  values.every((value, i) => i === 0 || value > (values[i - 1] ?? Number.POSITIVE_INFINITY))

describe("DynamoDB ShardEpochs", () => {
  it(
    "never hands one epoch out twice to nodes racing for it, floors included",
    () =>
      run(
        Effect.gen(function* () {
          const nodes = [yield* node(), yield* node(), yield* node()]
          // Each node asks 20 times in a row; the three run at once, some with floors ahead of the counter.
          const sequences = yield* Effect.forEach(
            nodes,
            (epochs, index) =>
              Effect.forEach(
                Array.from({ length: 20 }, (_, call) => call),
                (call) => epochs.next(1, call % 7 === index ? 10 * call : 0),
              ),
            { concurrency: "unbounded" },
          )
          const all = sequences.flat()
          expect(new Set(all).size).toBe(all.length)
          for (const sequence of sequences) expect(increasing(sequence)).toBe(true)
          for (const [index, sequence] of sequences.entries())
            sequence.forEach((epoch, call) => {
              if (call % 7 === index) expect(epoch).toBeGreaterThan(10 * call)
            })
        }),
      ),
    30_000,
  )

  it(
    "jumps past a floor ahead of the counter and counts on from there, also after a restart",
    () =>
      run(
        Effect.gen(function* () {
          const first = yield* (yield* node()).next(2, 0)
          const restarted = yield* node()
          expect(yield* restarted.next(2, first + 40)).toBe(first + 41)
          expect(yield* restarted.next(2, 0)).toBe(first + 42)
          // A floor below the counter changes nothing.
          expect(yield* restarted.next(2, 1)).toBe(first + 43)
          // Another shard counts on its own.
          expect(yield* restarted.next(3, 0)).toBe(1)
        }),
      ),
    30_000,
  )

  it(
    "fails with LeaseUnavailable, within its timeouts, when DynamoDB cannot be reached",
    () =>
      run(
        Effect.gen(function* () {
          const unreachable = yield* Layer.build(
            layerDynamoDbEpochs({
              endpoint: "http://127.0.0.1:1",
              region: "us-east-1",
              tablePrefix,
              requestTimeoutMs: 500,
            }),
          ).pipe(Effect.map((context) => Context.get(context, ShardEpochs)))
          const result = yield* Effect.result(unreachable.next(4, 0))
          expect(result._tag).toBe("Failure")
          if (result._tag === "Failure") expect(result.failure).toMatchObject({ _tag: "LeaseUnavailable", shard: 4 })
        }),
      ),
    30_000,
  )
})
