/**
 * The Kafka journal's configuration, the kafkajs client built from it (every timeout and retry
 * chosen here, explicitly), the bounded-promise helper every adapter call goes through, and the
 * journal topic check at start: one partition per shard, kept forever, acks=all durable.
 */
import { Effect } from "effect"
import { type Admin, Kafka, type logCreator as logCreatorType, logLevel, type RetryOptions } from "kafkajs"
import { JournalUnavailable } from "../journal.ts"
import { describeKafkaError } from "./kafka-errors.ts"

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

/**
 * Retries inside kafkajs cover short blips (leader moves, a coordinator loading, a dropped socket):
 * a handful of quick attempts. Anything longer is an outage; the operation's own deadline
 * (requestTimeoutMs) ends it and the runtime rebuilds the shard, which is the recovery that is
 * known to be correct. kafkajs's default for an idempotent producer is unbounded retries; that is
 * unneeded here because a transaction that fails is aborted or fenced, never half-applied.
 */
export const clientRetry: Required<Omit<RetryOptions, "restartOnFailure">> = {
  retries: 5,
  initialRetryTime: 100,
  maxRetryTime: 1_000,
  multiplier: 2,
  factor: 0.2,
}

/**
 * The writer's retries start much sooner: the broker answers CONCURRENT_TRANSACTIONS to the next
 * transaction's AddPartitionsToTxn while the previous commit's markers are still being written
 * (a few milliseconds), which happens to about one back-to-back append in ten on the local broker.
 * With kafkajs's 100 ms-class back-off each such append would wait that long. The ten retries sum
 * to about 3.3 s of waiting, inside the append's requestTimeoutMs deadline (5 s by default).
 */
export const writerRetry: Required<Omit<RetryOptions, "restartOnFailure">> = {
  retries: 10,
  initialRetryTime: 5,
  maxRetryTime: 1_000,
  multiplier: 2,
  factor: 0.2,
}

/**
 * kafkajs logs, at ERROR, every broker refusal it retries or passes on. Two are expected: the
 * CONCURRENT_TRANSACTIONS answer described above, and the fencing of a stale writer, which reaches
 * the runtime as JournalFenced and is logged there. Everything else is kept.
 */
const expectedRefusals = [
  "another concurrent operation on the same transaction",
  "Producer attempted an operation with an old epoch",
]

const logCreator: logCreatorType = () => (entry) => {
  const message = `${entry.log.message} ${String(entry.log.error ?? "")}`
  if (expectedRefusals.some((refusal) => message.includes(refusal))) return
  console.error(JSON.stringify({ level: entry.label, logger: "kafkajs", namespace: entry.namespace, ...entry.log }))
}

export const makeKafka = (config: KafkaJournalConfig): Kafka =>
  new Kafka({
    clientId: config.clientId,
    brokers: [...config.brokers],
    connectionTimeout: Math.min(config.requestTimeoutMs, 3_000),
    requestTimeout: config.requestTimeoutMs,
    enforceRequestTimeout: true,
    retry: clientRetry,
    // kafkajs's INFO/WARN lines (joins, retries it recovers from) add nothing but noise.
    logLevel: logLevel.ERROR,
    logCreator,
  })

/**
 * Runs a kafkajs call with a deadline (`shard` -1: not about one shard). kafkajs cannot cancel a request, so after the deadline the
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

export const unavailable = (shard: number, what: string, cause: unknown): JournalUnavailable =>
  new JournalUnavailable({ shard, message: `${what}: ${describeKafkaError(cause)}` })

/**
 * A majority of replicas must hold a record before the broker acknowledges it (with acks=all):
 * losing a minority of brokers loses no acknowledged payment. Below three replicas every replica
 * is required, which favours correctness over availability as the product does.
 */
export const minInsyncReplicas = (replicationFactor: number): number =>
  replicationFactor <= 2 ? replicationFactor : Math.floor(replicationFactor / 2) + 1

const createTopicIfMissing = (admin: Admin, config: KafkaJournalConfig): Promise<boolean> =>
  admin.createTopics({
    waitForLeaders: true,
    timeout: config.requestTimeoutMs,
    topics: [
      {
        topic: config.topic,
        numPartitions: config.shardCount,
        replicationFactor: config.replicationFactor,
        configEntries: [
          // The journal is the system of record: it is never expired nor compacted.
          { name: "retention.ms", value: "-1" },
          { name: "retention.bytes", value: "-1" },
          { name: "cleanup.policy", value: "delete" },
          { name: "min.insync.replicas", value: String(minInsyncReplicas(config.replicationFactor)) },
          { name: "unclean.leader.election.enable", value: "false" },
        ],
      },
    ],
  })

/** Creates the journal topic, or checks that the existing one has a partition for every shard. */
export const ensureJournalTopic = (kafka: Kafka, config: KafkaJournalConfig): Effect.Effect<void, JournalUnavailable> =>
  Effect.acquireUseRelease(
    boundedPromise(-1, "connecting the Kafka admin client", config.requestTimeoutMs, async () => {
      const admin = kafka.admin()
      await admin.connect()
      return admin
    }),
    (admin) =>
      boundedPromise(-1, "ensuring the journal topic", config.requestTimeoutMs * 2, async () => {
        // Listing first keeps kafkajs from logging the broker's TOPIC_ALREADY_EXISTS at every start;
        // two nodes creating it at once is still fine (createTopics then answers false).
        if (!(await admin.listTopics()).includes(config.topic)) await createTopicIfMissing(admin, config)
        const metadata = await admin.fetchTopicMetadata({ topics: [config.topic] })
        return metadata.topics[0]?.partitions.length ?? 0
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
      ),
    (admin) => Effect.promise(() => admin.disconnect().catch(() => undefined)),
  ).pipe(Effect.mapError((failure) => unavailable(-1, "Kafka journal start", failure.cause)))
