/**
 * Redis ShardLeases against the local Redis: the lease contract between two nodes, plus what only
 * a TTL lease has: expiry of a holder that stopped renewing, renewal keeping a live lease, a
 * restarted node taking its own shards back at once, and an unreachable Redis as LeaseUnavailable.
 * Each test uses its own key prefix; a plain ioredis client plays the crashed or foreign holder.
 * The epochs come from the DynamoDB counter on the local DynamoDB-API server, as in aws mode.
 */
import { Context, Effect, Layer, type Scope } from "effect"
import { Redis } from "ioredis"
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest"
import { layerDynamoDbEpochs } from "../../persistence/dynamodb/shard-epochs-dynamodb.ts"
import { layerRedisLeases, type RedisLeasesConfig } from "../../persistence/redis/shard-leases-redis.ts"
import { ShardEpochs } from "../../persistence/shard-epochs.ts"
import { ShardLeases } from "../../persistence/shard-leases.ts"
import { stackUp } from "../../scripts/local-stack/stack.ts"
import { shardLeasesContract } from "../contract/shard-leases.contract.ts"

let url = ""
let dynamodbEndpoint = ""
let raw: Redis | undefined
const runId = `${Date.now().toString(36)}${process.pid.toString(36)}`
let prefixCount = 0
let keyPrefix = ""

beforeAll(async () => {
  const stack = await stackUp()
  url = stack.redisUrl
  dynamodbEndpoint = stack.dynamodbEndpoint
  raw = new Redis(url)
})
afterAll(async () => {
  await raw?.quit()
})
beforeEach(() => {
  keyPrefix = `leases-${runId}-${prefixCount++}`
})

const redis = (): Redis => {
  if (raw === undefined) throw new Error("the plain Redis client opens in beforeAll")
  return raw
}

/** The counter of this test's key prefix: a table prefix of its own, so numbers start at zero. */
const epochsLayer = () =>
  layerDynamoDbEpochs({ endpoint: dynamodbEndpoint, region: "us-east-1", tablePrefix: keyPrefix })

const leasesLayer = (config: RedisLeasesConfig) => layerRedisLeases(config).pipe(Layer.provide(epochsLayer()))

const node = (
  nodeId: string,
  options: Partial<Omit<RedisLeasesConfig, "nodeId">> = {},
): Effect.Effect<ShardLeases["Service"], unknown, Scope.Scope> =>
  Layer.build(leasesLayer({ url, keyPrefix, leaseTtlMs: 2_000, nodeId, ...options })).pipe(
    Effect.map((context) => Context.get(context, ShardLeases)),
  )

const epochs = (): Effect.Effect<ShardEpochs["Service"], unknown, Scope.Scope> =>
  Layer.build(epochsLayer()).pipe(Effect.map((context) => Context.get(context, ShardEpochs)))

const run = <A, E>(program: Effect.Effect<A, E, Scope.Scope>): Promise<A> =>
  Effect.runPromise(Effect.scoped(program) as Effect.Effect<A, unknown>)

const leaseKey = (shard: number) => `${keyPrefix}:shard:${shard}:lease`

// A short wait so that the contract's "another node is refused" returns quickly.
shardLeasesContract(
  "redis",
  (nodeId) => leasesLayer({ url, keyPrefix, leaseTtlMs: 2_000, nodeId, acquireWaitMsMax: 300 }),
  { multiNode: true, timeoutMs: 15_000 },
)

describe("Redis ShardLeases", () => {
  it(
    "lets another node take over, with a greater epoch, once a holder that stopped renewing expires",
    () =>
      run(
        Effect.gen(function* () {
          // The holder crashed right after acquiring: its lease is left to expire, never renewed.
          yield* Effect.promise(() => redis().set(leaseKey(6), "crashed-node", "PX", 300))
          const crashedEpoch = yield* (yield* epochs()).next(6, 0)
          const survivor = yield* node("node-b", { leaseTtlMs: 300 })
          const lease = yield* survivor.acquire(6)
          expect(lease.epoch).toBeGreaterThan(crashedEpoch)
          expect(yield* Effect.promise(() => redis().get(leaseKey(6)))).toBe("node-b")
        }),
      ),
    15_000,
  )

  it(
    "renews a held lease, so it outlives its TTL and keeps other nodes out",
    () =>
      run(
        Effect.gen(function* () {
          const holder = yield* node("node-a", { leaseTtlMs: 600 })
          const lease = yield* holder.acquire(7)
          yield* Effect.sleep(2_000)
          expect(yield* Effect.promise(() => redis().get(leaseKey(7)))).toBe("node-a")
          const other = yield* node("node-b", { leaseTtlMs: 600, acquireWaitMsMax: 100 })
          const refused = yield* Effect.result(other.acquire(7))
          expect(refused._tag).toBe("Failure")
          yield* holder.release(lease)
          expect(yield* Effect.promise(() => redis().exists(leaseKey(7)))).toBe(0)
        }),
      ),
    15_000,
  )

  it(
    "gives a restarted node its own shard back at once, with a greater epoch",
    () =>
      run(
        Effect.gen(function* () {
          const before = yield* node("node-a", { leaseTtlMs: 60_000 })
          const old = yield* before.acquire(8)
          // Same node id, and no waiting allowed: it must not wait out its own 60 s lease.
          const restarted = yield* node("node-a", { leaseTtlMs: 60_000, acquireWaitMsMax: 0 })
          const lease = yield* restarted.acquire(8)
          expect(lease.epoch).toBeGreaterThan(old.epoch)
          const stranger = yield* node("node-b", { leaseTtlMs: 60_000, acquireWaitMsMax: 0 })
          expect((yield* Effect.result(stranger.acquire(8)))._tag).toBe("Failure")
        }),
      ),
    15_000,
  )

  it(
    "hands out an epoch above a floor the caller names, and keeps counting from there",
    () =>
      run(
        Effect.gen(function* () {
          const leases = yield* node("node-a", { leaseTtlMs: 60_000 })
          const first = yield* leases.acquire(11)
          const above = yield* leases.acquire(11, first.epoch + 40)
          expect(above.epoch).toBe(first.epoch + 41)
          expect((yield* leases.acquire(11)).epoch).toBe(first.epoch + 42)
          // A floor below the counter changes nothing.
          expect((yield* leases.acquire(11, 1)).epoch).toBe(first.epoch + 43)
        }),
      ),
    15_000,
  )

  it(
    "stops renewing, and never releases, a lease another node has taken",
    () =>
      run(
        Effect.gen(function* () {
          const holder = yield* node("node-a", { leaseTtlMs: 300 })
          const lease = yield* holder.acquire(9)
          yield* Effect.promise(() => redis().set(leaseKey(9), "node-z", "PX", 30_000))
          yield* Effect.sleep(600)
          // A renewal by node-a would have cut the TTL to 300 ms.
          expect(yield* Effect.promise(() => redis().pttl(leaseKey(9)))).toBeGreaterThan(5_000)
          yield* holder.release(lease)
          expect(yield* Effect.promise(() => redis().get(leaseKey(9)))).toBe("node-z")
        }),
      ),
    15_000,
  )

  it(
    "fails with LeaseUnavailable, within its timeouts, when Redis cannot be reached",
    () =>
      run(
        Effect.gen(function* () {
          const leases = yield* Layer.build(
            leasesLayer({ url: "redis://127.0.0.1:1", keyPrefix, leaseTtlMs: 1_000, nodeId: "node-a" }),
          ).pipe(Effect.map((context) => Context.get(context, ShardLeases)))
          const result = yield* Effect.result(leases.acquire(0))
          expect(result._tag).toBe("Failure")
          if (result._tag === "Failure") expect(result.failure).toMatchObject({ _tag: "LeaseUnavailable", shard: 0 })
        }),
      ),
    15_000,
  )
})
