/**
 * The Kafka journal's configuration and its @platformatic/kafka clients: the options every client
 * shares (every timeout and retry chosen here, explicitly), the admin client the layer keeps for
 * replays, the bounded-promise helper every adapter call goes through, closing a client within a
 * bound, and the journal topic check at start: one partition per shard, kept forever, acks=all
 * durable.
 */
import { Admin, type BaseOptions, type RetryDelayGetter } from "@platformatic/kafka"
import { Effect } from "effect"
import { JournalUnavailable } from "../journal.ts"
import { describeKafkaError, hasBrokerError } from "./kafka-errors.ts"

export interface KafkaJournalConfig {
  readonly brokers: ReadonlyArray<string>
  readonly topic: string
  /** Shards of the deployment; partition `shard` of the topic holds shard `shard`'s journal. */
  readonly shardCount: number
  readonly replicationFactor: number
  /** Bound on one broker request and on each whole journal operation (open, append, replay step). */
  readonly requestTimeoutMs: number
  readonly clientId: string
  readonly transactionalIdPrefix: string
}

/** Retry settings: attempts and an exponential back-off with jitter. */
export interface Backoff {
  readonly retries: number
  readonly initialRetryTime: number
  readonly maxRetryTime: number
  readonly multiplier: number
  readonly factor: number
}

/**
 * Retries inside the client cover short blips (leader moves, a coordinator loading, a dropped
 * socket): a handful of quick attempts. Anything longer is an outage; the operation's own deadline
 * (requestTimeoutMs) ends it and the runtime rebuilds its shards, which is the recovery that is
 * known to be correct. Unbounded retries are not needed, because a transaction that fails is
 * aborted or fenced, never half-applied.
 */
export const clientRetry: Backoff = {
  retries: 5,
  initialRetryTime: 100,
  maxRetryTime: 1_000,
  multiplier: 2,
  factor: 0.2,
}

/**
 * The writer's retries start much sooner: the broker answers CONCURRENT_TRANSACTIONS to the next
 * transaction's AddPartitionsToTxn while the previous commit's markers are still being written
 * (a few milliseconds), which back-to-back appends meet often on the local broker; a 100 ms-class
 * back-off would make each of those appends wait that long. The ten retries sum to about 3.3 s of
 * waiting, inside the append's requestTimeoutMs deadline (5 s by default).
 */
export const writerRetry: Backoff = {
  retries: 10,
  initialRetryTime: 5,
  maxRetryTime: 1_000,
  multiplier: 2,
  factor: 0.2,
}

/**
 * Runs a client call with a deadline (`shard` -1: not about one shard). the client cannot recall a request, so after the deadline the
 * promise may still settle; callers treat a timed-out resource as unusable for that reason.
 */
export const boundedPromise = <A>(
  shard: number,
  what: string,
  timeoutMs: number,
  run: () => Promise<A>,
): Effect.Effect<A, { readonly cause: unknown; readonly timedOut: boolean }> =>
  Effect.tryPromise({ try: run, catch: (cause) => ({ cause, timedOut: false }) }).pipe(
    Effect.timeoutOrElse({
      duration: timeoutMs,
      orElse: () =>
        Effect.fail({
          cause: new Error(`${what}${shard >= 0 ? ` of shard ${shard}` : ""} took longer than ${timeoutMs} ms`),
          timedOut: true,
        }),
    }),
  )

/**
 * A majority of replicas must hold a record before the broker acknowledges it (with acks=all):
 * losing a minority of brokers loses no acknowledged payment. Below three replicas every replica
 * is required, which favours correctness over availability as the product does.
 */
export const minInsyncReplicas = (replicationFactor: number): number =>
  replicationFactor <= 2 ? replicationFactor : Math.floor(replicationFactor / 2) + 1

export const unavailable = (shard: number, what: string, cause: unknown): JournalUnavailable =>
  new JournalUnavailable({ shard, message: `${what}: ${describeKafkaError(cause)}` })

/**
 * CONCURRENT_TRANSACTIONS answers the next transaction's AddPartitionsToTxn while the previous
 * commit's markers are still being written. This client asks so soon after EndTxn (it sends no
 * FindCoordinator in between) that back-to-back appends meet it often on the local
 * broker (0.2 to 0.8 retried AddPartitionsToTxn per append in bench/journal-kafka-clients.ts), and
 * the markers are nearly always written within a millisecond or two. The first retries of that
 * answer therefore wait 1, 2 and 4 ms. In runs where most back-to-back single-record appends met it,
 * their median was about 3 ms so, against 7.7 ms with a first delay of 5 ms (the writer's back-off);
 * in runs where few did, 1.2 to 1.7 ms either way. Later retries (a coordinator still aborting an
 * old owner's transaction) take the usual back-off.
 */
const quickConcurrentTransactionsRetries = 3

/**
 * The client's `retryDelay` is one fixed delay (1 s by default) unless given a function: this one
 * is an exponential back-off with jitter, from the numbers above.
 */
const retryDelayOf =
  (backoff: Backoff): RetryDelayGetter =>
  (_client, _operationId, attempt, _retries, error) => {
    if (attempt <= quickConcurrentTransactionsRetries && hasBrokerError(error, "CONCURRENT_TRANSACTIONS")) {
      return 2 ** (attempt - 1)
    }
    const delayMs = Math.min(backoff.maxRetryTime, backoff.initialRetryTime * backoff.multiplier ** (attempt - 1))
    return Math.round(delayMs * (1 - backoff.factor + 2 * backoff.factor * Math.random()))
  }

/**
 * What every client of the journal is given. `timeout` is what the broker is told to wait (the
 * acks=all produce wait, the topic creation, and for a producer its transaction timeout, see
 * kafka-writer.ts); `requestTimeout` is the client's own bound on one request, 30 s by
 * default; `connectTimeout` bounds a TCP connect and the handshake, so an unreachable broker fails fast. Metadata is kept for 5 minutes (the Java client's metadata.max.age.ms)
 * instead of the default 5 s, which would add a Metadata round trip to an append every 5 s: the
 * client drops it at once when a broker answers NOT_LEADER_OR_FOLLOWER or UNKNOWN_TOPIC_OR_PARTITION.
 */
export const baseOptions = (config: KafkaJournalConfig, backoff: Backoff) =>
  ({
    clientId: config.clientId,
    bootstrapBrokers: [...config.brokers],
    timeout: config.requestTimeoutMs,
    requestTimeout: config.requestTimeoutMs,
    connectTimeout: Math.min(config.requestTimeoutMs, 3_000),
    // Retries inside the client cover short blips (leader moves, a coordinator loading, a dropped
    // socket, CONCURRENT_TRANSACTIONS between back-to-back transactions); anything longer is an
    // outage that the operation's own deadline ends (see `clientRetry`). Never below
    // 2: the client turns 0 or 1 retries of an idempotent producer into unbounded ones.
    retries: Math.max(2, backoff.retries),
    retryDelay: retryDelayOf(backoff),
    metadataMaxAge: 300_000,
    autocreateTopics: false,
    // `strict` validates every call's options with ajv, on the append path too; the options are typed here.
    strict: false,
  }) satisfies BaseOptions

/** Options of a writer's producer: the writer's quick back-off (`writerRetry`). */
export const writerBaseOptions = (config: KafkaJournalConfig) => baseOptions(config, writerRetry)

/**
 * The layer's admin client: the topic check at start and every replay's metadata, ApiVersions and
 * fetches go through it. It connects lazily, at its first request.
 */
export const makeAdmin = (config: KafkaJournalConfig): Admin =>
  new Admin({
    ...baseOptions(config, clientRetry),
    // Replays of several shards at once share its connection to a broker.
    maxInflights: 5,
  })

/** Closes a client; a close that fails or hangs is ignored, since nothing is left to do with it. */
export const closeQuietly = (client: { readonly close: () => Promise<void> }, timeoutMs: number): Effect.Effect<void> =>
  Effect.promise(() => client.close().catch(() => undefined)).pipe(Effect.timeout(timeoutMs), Effect.ignore)

const sleep = (ms: number) => new Promise((resume) => setTimeout(resume, ms))

/**
 * The journal is the system of record: it is never expired nor compacted; a majority of replicas
 * must hold a record before it is acknowledged; an out-of-sync replica never becomes leader.
 */
const createTopic = async (admin: Admin, config: KafkaJournalConfig): Promise<void> => {
  try {
    await admin.createTopics({
      topics: [config.topic],
      partitions: config.shardCount,
      replicas: config.replicationFactor,
      configs: [
        { name: "retention.ms", value: "-1" },
        { name: "retention.bytes", value: "-1" },
        { name: "cleanup.policy", value: "delete" },
        { name: "min.insync.replicas", value: String(minInsyncReplicas(config.replicationFactor)) },
        { name: "unclean.leader.election.enable", value: "false" },
      ],
    })
  } catch (error) {
    // Two nodes creating it at once is fine: the other one's settings are the same.
    if (!hasBrokerError(error, "TOPIC_ALREADY_EXISTS")) throw error
  }
}

/**
 * The topic's partition count once every partition has a leader. Just after CreateTopics the
 * metadata may not list the topic yet, or list partitions without a leader: polled until
 * `deadline` (the caller's bound ends the wait at the latest).
 */
const partitionsWithLeaders = async (admin: Admin, topic: string, deadline: number): Promise<number> => {
  for (;;) {
    try {
      const metadata = await admin.metadata({ topics: [topic], forceUpdate: true })
      const topicMetadata = metadata.topics.get(topic)
      const count = topicMetadata?.partitionsCount ?? 0
      const partitions = topicMetadata?.partitions ?? []
      if (
        count > 0 &&
        Array.from({ length: count }, (_, index) => partitions[index]).every((p) => (p?.leader ?? -1) >= 0)
      ) {
        return count
      }
      if (Date.now() > deadline) throw new Error(`journal topic "${topic}" has partitions without a leader`)
    } catch (error) {
      if (Date.now() > deadline) throw error
    }
    await sleep(50)
  }
}

/** Creates the journal topic, or checks that the existing one has a partition for every shard. */
export const ensureJournalTopic = (admin: Admin, config: KafkaJournalConfig): Effect.Effect<void, JournalUnavailable> =>
  boundedPromise(-1, "ensuring the journal topic", config.requestTimeoutMs * 2, async () => {
    // Listing first keeps a node whose principal may not create topics working with an existing one.
    if (!(await admin.listTopics()).includes(config.topic)) await createTopic(admin, config)
    return partitionsWithLeaders(admin, config.topic, Date.now() + config.requestTimeoutMs)
  }).pipe(
    Effect.flatMap((partitions) =>
      partitions >= config.shardCount
        ? Effect.void
        : Effect.fail({
            cause: new Error(
              `journal topic "${config.topic}" has ${partitions} partitions but the deployment has ` +
                `${config.shardCount} shards (SHARD_COUNT); add partitions or use another KAFKA_TOPIC`,
            ),
            timedOut: false,
          }),
    ),
    Effect.mapError((failure) => unavailable(-1, "Kafka journal start", failure.cause)),
  )
