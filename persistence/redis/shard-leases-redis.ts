/**
 * ShardLeases on Redis (aws mode): a lease key per shard holding the owner's node id with a TTL, so
 * a new owner waits out (or a restarted one takes back at once) what a live node still holds.
 * Acquire, renew and release are Lua scripts, so each check-and-write is atomic on the server. A
 * held lease is renewed every ttl/3 until it is released, the layer closes, or another node is
 * found holding it. The lease is not what keeps two owners apart (the journal and snapshot fences
 * are, on the epoch), so the epoch comes from ShardEpochs, not from Redis: a Redis failover can lose
 * writes and would hand a number out twice.
 */

import { Effect, Layer } from "effect"
import { Redis, type RedisOptions } from "ioredis"
import { ShardEpochs } from "../shard-epochs.ts"
import { LeaseUnavailable, type ShardLease, ShardLeases } from "../shard-leases.ts"

export interface RedisLeasesConfig {
  readonly url: string
  readonly keyPrefix: string
  readonly leaseTtlMs: number
  readonly nodeId: string
  /** How long acquire waits out another node's live lease; default twice the TTL. */
  readonly acquireWaitMsMax?: number
}

/** Free, or already this node's (a restarted node takes its own shards back at once): take it. */
const acquireScript = `
local holder = redis.call("GET", KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2])
  return {1, 0, ARGV[1]}
end
return {0, redis.call("PTTL", KEYS[1]), holder}
`
const renewScript = `
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("PEXPIRE", KEYS[1], ARGV[2])
end
return 0
`
const releaseScript = `
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("DEL", KEYS[1])
end
return 0
`

/** How often a lease another node holds is asked for again: a shard in hand-off waits on it. */
const leasePollMs = 50
/** Bound on connecting and on each command, so a Redis outage becomes LeaseUnavailable, not a hang. */
const commandTimeoutMs = 2_000
/** Reconnect delay grows to this cap and never stops: leases must work again when Redis returns. */
const reconnectDelayMsMax = 1_000
/** How long closing waits for QUIT before dropping the connection. */
const quitWaitMs = 1_000

// ioredis types `replyMapping` in two ways that conflict under exactOptionalPropertyTypes; it stays unset.
const redisOptions = (): Omit<RedisOptions, "replyMapping"> => ({
  connectTimeout: commandTimeoutMs,
  commandTimeout: commandTimeoutMs,
  // Commands issued while (re)connecting wait for the connection instead of failing at once; the
  // command timeout above still bounds that wait, so the queue cannot grow without limit in time.
  enableOfflineQueue: true,
  // A command cut off by a dropped connection is resent once after reconnecting. All three scripts
  // are safe to repeat: a repeated acquire only takes one more epoch for the same node.
  maxRetriesPerRequest: 1,
  retryStrategy: (times) => Math.min(times * 100, reconnectDelayMsMax),
})

interface Renewal {
  readonly epoch: number
  readonly timer: NodeJS.Timeout
}

type AcquireReply = [taken: number, remainingMs: number, holder: string]

const describeError = (error: unknown): string => (error instanceof Error ? error.message : String(error))

export const makeRedisShardLeases = Effect.fnUntraced(function* (config: RedisLeasesConfig) {
  const { keyPrefix, leaseTtlMs, nodeId } = config
  const epochs = yield* ShardEpochs
  const acquireWaitMsMax = config.acquireWaitMsMax ?? 2 * leaseTtlMs
  const client = yield* Effect.acquireRelease(
    Effect.sync(() => {
      const opened = new Redis(config.url, redisOptions())
      // Connection errors surface through the commands that fail; without a listener ioredis
      // would print each reconnect attempt as an unhandled error event.
      opened.on("error", () => {})
      return opened
    }),
    (opened) => closeClient(opened),
  )
  const leaseKey = (shard: number) => `${keyPrefix}:shard:${shard}:lease`
  /** The leases this node holds, one renewal per shard: bounded by the shard count. */
  const held = new Map<number, Renewal>()

  const command = <A>(shard: number, what: string, run: () => Promise<A>) =>
    Effect.tryPromise({
      try: run,
      catch: (error) => new LeaseUnavailable({ shard, message: `redis ${what}: ${describeError(error)}` }),
    })

  const stopRenewing = (shard: number) => {
    const renewal = held.get(shard)
    if (renewal !== undefined) clearInterval(renewal.timer)
    held.delete(shard)
  }

  const startRenewing = (shard: number, epoch: number) => {
    stopRenewing(shard)
    const timer = setInterval(
      () => {
        client.eval(renewScript, 1, leaseKey(shard), nodeId, leaseTtlMs).then(
          (renewed) => {
            if (Number(renewed) === 1 || held.get(shard)?.epoch !== epoch) return
            console.warn(`shard ${shard}: lease of epoch ${epoch} is held by another node; renewal stopped`)
            stopRenewing(shard)
          },
          // Redis unreachable: the next tick tries again; if the lease expires meanwhile, another
          // node may take the shard, and the journal and snapshot fencing stop this one.
          () => {},
        )
      },
      Math.max(1, Math.floor(leaseTtlMs / 3)),
    )
    timer.unref()
    held.set(shard, { epoch, timer })
  }

  const tryAcquire = (shard: number) =>
    command(shard, "acquire", () => client.eval(acquireScript, 1, leaseKey(shard), nodeId, leaseTtlMs)).pipe(
      Effect.map((reply) => reply as AcquireReply),
    )

  const acquire = Effect.fn("ShardLeases.acquire")(function* (
    shard: number,
    epochFloor = 0,
  ): Effect.fn.Return<ShardLease, LeaseUnavailable> {
    const deadline = Date.now() + acquireWaitMsMax
    while (true) {
      const [taken, value, holder] = yield* tryAcquire(shard)
      if (taken === 1) {
        // Without an epoch the lease is of no use: give it back rather than keep others waiting on it.
        const epoch = yield* epochs.next(shard, epochFloor).pipe(Effect.tapError(() => releaseShard(shard)))
        // Taking the epoch may have outlasted the TTL: the lease is this node's only if it still is.
        const [stillTaken] = yield* tryAcquire(shard)
        if (stillTaken === 1) {
          startRenewing(shard, epoch)
          return { shard, epoch }
        }
        continue
      }
      const waitMs = deadline - Date.now()
      if (waitMs <= 0) {
        return yield* new LeaseUnavailable({ shard, message: `lease held by node ${holder} for ${value} ms more` })
      }
      // A lease without expiry (-1) would be an operator's doing: poll at the TTL's pace anyway.
      const remainingMs = value > 0 ? value : leaseTtlMs
      // Polled often: in a hand-off the holder releases within moments, and the shard waits for this.
      yield* Effect.sleep(Math.max(1, Math.min(remainingMs, leasePollMs, waitMs)))
    }
  })

  const releaseShard = (shard: number) =>
    command(shard, "release", () => client.eval(releaseScript, 1, leaseKey(shard), nodeId)).pipe(
      Effect.asVoid,
      Effect.catch((error) =>
        // The lease then expires on its own after its TTL; another node waits that long at most.
        Effect.sync(() => console.warn(`shard ${shard}: lease release failed (${error.message})`)),
      ),
    )

  const release = (lease: ShardLease): Effect.Effect<void> =>
    Effect.suspend(() => {
      // An older lease of a shard this node has since re-acquired must not free the newer one.
      if (held.get(lease.shard)?.epoch !== lease.epoch) return Effect.void
      stopRenewing(lease.shard)
      return releaseShard(lease.shard)
    })

  yield* Effect.addFinalizer(() =>
    Effect.suspend(() => {
      const shards = [...held.keys()]
      for (const shard of shards) stopRenewing(shard)
      return Effect.forEach(shards, releaseShard, { concurrency: 16, discard: true })
    }),
  )

  return ShardLeases.of({ acquire, release })
})

const closeClient = (client: Redis): Effect.Effect<void> =>
  Effect.promise(() =>
    client.quit().then(
      () => undefined,
      () => undefined,
    ),
  ).pipe(
    Effect.timeoutOrElse({ duration: quitWaitMs, orElse: () => Effect.void }),
    Effect.ensuring(Effect.sync(() => client.disconnect())),
  )

/** Redis leases for this node; closing the layer releases the leases it holds and quits the client. */
export const layerRedisLeases = (config: RedisLeasesConfig): Layer.Layer<ShardLeases, LeaseUnavailable, ShardEpochs> =>
  Layer.effect(ShardLeases)(makeRedisShardLeases(config))
