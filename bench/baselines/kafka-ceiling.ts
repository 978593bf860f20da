/**
 * The durability ceiling of aws mode: how many journal records per second the local Kafka broker
 * acknowledges, and how long an append waits, with the journal's own record size, acks (-1, all
 * in-sync replicas), idempotence, client settings and group commit (a batch of records per send,
 * one send in flight per shard-partition, one producer per shard, every shard at once), but no
 * transactions: that is the work Kafka cannot avoid, so the product's rate is read as a fraction
 * of it. The transactional variant runs the journal's actual writer (persistence/kafka) in the
 * same way, so a report can show what fencing by transactions costs (docs/journal-fencing.md).
 * Each run writes to a fresh topic. Run: `node --import tsx bench/baselines/kafka-ceiling.ts
 * [--duration-ms 10000] [--batch-records 64] [--partitions 16]` (starts the local stack).
 */
import { randomUUID } from "node:crypto"
import { pathToFileURL } from "node:url"
import { ProduceAcks, Producer } from "@platformatic/kafka"
import { Context, Effect, Exit, Layer, Scope } from "effect"
import { Journal } from "../../persistence/journal.ts"
import { type KafkaJournalConfig, layerKafka } from "../../persistence/kafka/journal-kafka.ts"
import {
  closeQuietly,
  ensureJournalTopic,
  makeAdmin,
  writerBaseOptions,
} from "../../persistence/kafka/kafka-clients.ts"
import { journalMessage } from "../../persistence/kafka/kafka-writer.ts"
import { stackUp } from "../../scripts/local-stack/stack.ts"
import { describeMachine } from "../support/machine.ts"
import {
  type AppendBatch,
  type CeilingResult,
  ceilingResult,
  formatCeiling,
  measureAppendLoops,
  naturalRecordBytes,
  numberArgument,
  recordPool,
} from "./ceiling.ts"

export type { CeilingResult } from "./ceiling.ts"

export interface KafkaCeilingOptions {
  /** Comma-separated `host:port` list; loopback brokers of the local stack in a benchmark. */
  readonly brokers: string
  readonly durationMs: number
  /** Encoded size of each record; default (or anything smaller) is the natural transfer record's. */
  readonly recordBytes?: number
  readonly batchRecords: number
  /** Partitions written at once, one producer each, like the node's shards; default 16. */
  readonly partitions?: number
  /** Appends before this are not measured; default 2000. */
  readonly warmupMs?: number
  /** Run the journal's transactional writer instead of the plain idempotent producer. */
  readonly transactional?: boolean
  /** Bound on each request and append, as the node's KAFKA_REQUEST_TIMEOUT_MS; default 5000. */
  readonly requestTimeoutMs?: number
}

const journalConfigOf = (options: KafkaCeilingOptions, partitions: number): KafkaJournalConfig => ({
  brokers: options.brokers.split(",").map((broker) => broker.trim()),
  topic: `bench-ceiling-${randomUUID()}`,
  shardCount: partitions,
  replicationFactor: 1,
  requestTimeoutMs: options.requestTimeoutMs ?? 5_000,
  clientId: "bench-ceiling",
  transactionalIdPrefix: "bench-ceiling",
})

/**
 * The journal writer's producer settings (kafka-writer.ts makeProducer) without the transactional
 * id: idempotent, one request in flight, the writer's retries; every send acks=all with the
 * journal's request timeout, one produce request per batch as the journal sends it.
 */
const idempotentAppends = async (
  config: KafkaJournalConfig,
): Promise<{ appends: AppendBatch[]; close: () => Promise<void> }> => {
  const admin = makeAdmin(config)
  try {
    await Effect.runPromise(ensureJournalTopic(admin, config))
  } finally {
    await Effect.runPromise(closeQuietly(admin, config.requestTimeoutMs))
  }
  const producers = Array.from(
    { length: config.shardCount },
    () =>
      new Producer({
        ...writerBaseOptions(config),
        idempotent: true,
        acks: ProduceAcks.ALL,
        maxInflights: 1,
        compression: "none",
      }),
  )
  const close = () =>
    Promise.all(producers.map((producer) => Effect.runPromise(closeQuietly(producer, config.requestTimeoutMs)))).then(
      () => {},
    )
  const appends = producers.map(
    (producer, shard): AppendBatch =>
      async (records) => {
        await producer.send({ messages: records.map((record) => journalMessage(config.topic, shard, record)) })
      },
  )
  return { appends, close }
}

/** The journal's own writers (one per shard, each append one Kafka transaction), opened in a scope. */
const transactionalAppends = async (
  config: KafkaJournalConfig,
): Promise<{ appends: AppendBatch[]; close: () => Promise<void> }> => {
  const scope = await Effect.runPromise(Scope.make())
  const close = () => Effect.runPromise(Scope.close(scope, Exit.void))
  try {
    const writers = await Effect.runPromise(
      Effect.gen(function* () {
        // Built in the run's scope, so the journal stays open until the measurement is over.
        const journal = Context.get(yield* Layer.build(layerKafka(config)), Journal)
        const shards = Array.from({ length: config.shardCount }, (_, shard) => shard)
        return yield* Effect.forEach(shards, (shard) => journal.openWriter(shard), { concurrency: 4 })
      }).pipe(Scope.provide(scope)),
    )
    const appends = writers.map(
      (writer): AppendBatch =>
        (records) =>
          Effect.runPromise(writer.append(records)).then(() => undefined),
    )
    return { appends, close }
  } catch (error) {
    await close()
    throw error
  }
}

/** Each run's topic holds only what it measured (about 100 MB for 10 s): removed afterwards, best effort. */
const deleteTopic = async (config: KafkaJournalConfig): Promise<void> => {
  const admin = makeAdmin(config)
  try {
    await admin.deleteTopics({ topics: [config.topic] })
  } catch (error) {
    console.error(`could not delete the benchmark topic ${config.topic}: ${String(error)}`)
  } finally {
    await Effect.runPromise(closeQuietly(admin, config.requestTimeoutMs))
  }
}

export const measureKafkaCeiling = async (options: KafkaCeilingOptions): Promise<CeilingResult> => {
  const partitions = options.partitions ?? 16
  const config = journalConfigOf(options, partitions)
  const recordBytes = Math.max(options.recordBytes ?? 0, naturalRecordBytes())
  const writers = options.transactional === true ? await transactionalAppends(config) : await idempotentAppends(config)
  try {
    const measurement = await measureAppendLoops(writers.appends, {
      durationMs: options.durationMs,
      warmupMs: options.warmupMs ?? 2_000,
      batchRecords: options.batchRecords,
      records: recordPool(recordBytes),
    })
    return ceilingResult(options.transactional === true ? "kafka-transactional" : "kafka-producer", measurement, {
      brokers: options.brokers,
      topic: config.topic,
      partitions,
      recordBytes,
      batchRecords: options.batchRecords,
      acks: -1,
      idempotent: true,
      transactional: options.transactional === true,
      maxInFlightRequests: 1,
      durationMs: options.durationMs,
    })
  } finally {
    await writers.close()
    await deleteTopic(config)
  }
}

const main = async () => {
  const { kafkaBrokers } = await stackUp()
  const options: KafkaCeilingOptions = {
    brokers: kafkaBrokers,
    durationMs: numberArgument("--duration-ms", 10_000),
    batchRecords: numberArgument("--batch-records", 64),
    partitions: numberArgument("--partitions", 16),
  }
  console.log(`machine: ${describeMachine()}`)
  console.log(`broker ${kafkaBrokers} (local stack, replication 1); ${JSON.stringify(options)}`)
  for (const transactional of [false, true]) {
    const result = await measureKafkaCeiling({ ...options, transactional })
    console.log(formatCeiling(result))
    console.log(`  ${JSON.stringify(result.settings)}`)
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) await main()
