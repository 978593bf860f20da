/**
 * The latency cost of fencing by Kafka transactions: append latency (p50/p99/p99.9) and throughput
 * of one shard's journal for batches of 1, 16 and 128 records of about 300 bytes, through
 * (a) the transactional ShardWriter of the Kafka journal and (b) a plain idempotent acks=all
 * producer with the same client settings and no transactions. One append at a time per shard, as
 * the runtime's group commit does. Then replay timings: an empty shard, 10k records, and 16 shards
 * recovered 4 at a time. Run: `node --import tsx bench/journal-kafka-append.ts` (starts the local stack).
 */
import { randomUUID } from "node:crypto"
import { Effect, type Scope } from "effect"
import * as hdr from "hdr-histogram-js"
import { encodeJournalRecord, type JournalRecord } from "../core/events.ts"
import { Journal } from "../persistence/journal.ts"
import { type KafkaJournalConfig, layerKafka } from "../persistence/kafka/journal-kafka.ts"
import { makeKafka, writerRetry } from "../persistence/kafka/kafka-clients.ts"
import { journalMessage } from "../persistence/kafka/kafka-writer.ts"
import { stackUp } from "../scripts/local-stack/stack.ts"
import { transferRecord } from "./journal-lmdb-append.ts"
import { describeMachine } from "./support/machine.ts"

const batchSizes = [1, 16, 128]
/** Appends measured per batch size and writer, after a warm-up; enough for a stable p99.9 at size 1. */
const appendsPerRun = Number(process.env.BENCH_APPENDS ?? "3000")
const warmUpAppends = 100
const replayRecords = 10_000

const newHistogram = () =>
  hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 })

interface RunResult {
  readonly label: string
  readonly batchSize: number
  readonly latencyMicros: hdr.Histogram
  readonly elapsedMs: number
}

const printResult = (result: RunResult): void => {
  const ms = (percentile: number) => (result.latencyMicros.getValueAtPercentile(percentile) / 1000).toFixed(2)
  const appendsPerSecond = (result.latencyMicros.totalCount / result.elapsedMs) * 1000
  console.log(
    `${result.label.padEnd(14)} batch ${String(result.batchSize).padStart(3)}: p50 ${ms(50)} ms, p99 ${ms(99)} ms, ` +
      `p99.9 ${ms(99.9)} ms, max ${(result.latencyMicros.maxValue / 1000).toFixed(2)} ms; ` +
      `${appendsPerSecond.toFixed(0)} appends/s, ${(appendsPerSecond * result.batchSize).toFixed(0)} records/s`,
  )
}

/** Times `appendsPerRun` sequential appends of `batchSize` fresh records after a warm-up. */
const measure = async (label: string, batchSize: number, append: (records: Array<JournalRecord>) => Promise<void>) => {
  let index = 0
  const nextBatch = () => Array.from({ length: batchSize }, () => transferRecord(index++))
  for (let warmUp = 0; warmUp < warmUpAppends; warmUp++) await append(nextBatch())
  const latencyMicros = newHistogram()
  const startedAt = performance.now()
  for (let count = 0; count < appendsPerRun; count++) {
    const batch = nextBatch()
    const sentAt = performance.now()
    await append(batch)
    latencyMicros.recordValue(Math.max(1, Math.round((performance.now() - sentAt) * 1000)))
  }
  const result: RunResult = { label, batchSize, latencyMicros, elapsedMs: performance.now() - startedAt }
  printResult(result)
  return result
}

const runJournal = <A, E>(config: KafkaJournalConfig, program: Effect.Effect<A, E, Journal | Scope.Scope>) =>
  Effect.runPromise(Effect.scoped(program).pipe(Effect.provide(layerKafka(config))))

const transactionalRuns = (config: KafkaJournalConfig) =>
  runJournal(
    config,
    Effect.gen(function* () {
      const journal = yield* Journal
      for (const [shard, batchSize] of batchSizes.entries()) {
        const writer = yield* journal.openWriter(shard)
        yield* Effect.promise(() =>
          measure("transactional", batchSize, (records) => Effect.runPromise(writer.append(records)).then(() => {})),
        )
      }
    }),
  )

/** The same client settings as the journal's writer, minus the transactional id. */
const idempotentRuns = async (config: KafkaJournalConfig) => {
  const producer = makeKafka(config).producer({ idempotent: true, maxInFlightRequests: 1, retry: writerRetry })
  await producer.connect()
  try {
    for (const [index, batchSize] of batchSizes.entries()) {
      const shard = batchSizes.length + index
      await measure("idempotent", batchSize, async (records) => {
        const messages = records.map((record) => journalMessage(shard, record))
        await producer.send({ topic: config.topic, messages, acks: -1, timeout: config.requestTimeoutMs })
      })
    }
  } finally {
    await producer.disconnect()
  }
}

const timeReplay = (shard: number, fromOffset = 0) =>
  Effect.gen(function* () {
    const journal = yield* Journal
    let records = 0
    const startedAt = performance.now()
    yield* journal.replay(shard, fromOffset, (entries) => {
      records += entries.length
    })
    return { records, elapsedMs: performance.now() - startedAt }
  })

/**
 * Writes `replayRecords` records to every shard; the last 10 arrive in a batch of their own. Returns
 * where shard 0's last batch starts.
 */
const fillShards = (config: KafkaJournalConfig) =>
  runJournal(
    config,
    Effect.gen(function* () {
      const journal = yield* Journal
      let tailOffset = 0
      let tailOffsetOfShardZero = 0
      for (let shard = 0; shard < config.shardCount; shard++) {
        const writer = yield* journal.openWriter(shard)
        const bulk = replayRecords - 10
        for (let start = 0; start < bulk; start += 500) {
          const size = Math.min(500, bulk - start)
          tailOffset = (yield* writer.append(Array.from({ length: size }, (_, index) => transferRecord(start + index))))
            .nextOffset
        }
        yield* writer.append(Array.from({ length: 10 }, (_, index) => transferRecord(bulk + index)))
        if (shard === 0) tailOffsetOfShardZero = tailOffset
      }
      return tailOffsetOfShardZero
    }),
  )

/**
 * Replay timings on a topic of their own, each in a journal layer that appended nothing, like a
 * node that restarts. `appendTopic` is the topic the append runs wrote (one transaction per record
 * on shard 0).
 */
const replayRuns = async (config: KafkaJournalConfig, appendTopic: string) => {
  await runJournal(
    config,
    Effect.gen(function* () {
      const empty = yield* timeReplay(0)
      console.log(`replay of an empty shard: ${empty.elapsedMs.toFixed(1)} ms (offsets only, no consumer)`)
    }),
  )
  const tailOffset = await fillShards(config)
  await runJournal(
    config,
    Effect.gen(function* () {
      const tail = yield* timeReplay(0, tailOffset)
      console.log(`replay of a ${tail.records}-record tail (after a snapshot): ${tail.elapsedMs.toFixed(1)} ms`)
      const full = yield* timeReplay(0)
      console.log(`replay of ${full.records} records (~340 B): ${full.elapsedMs.toFixed(1)} ms`)
      const startedAt = performance.now()
      const shards = Array.from({ length: config.shardCount }, (_, shard) => shard)
      const all = yield* Effect.forEach(shards, (shard) => timeReplay(shard), { concurrency: 4 })
      const slowest = Math.max(...all.map((run) => run.elapsedMs))
      console.log(
        `replay of ${config.shardCount} shards of ${replayRecords} records, 4 at a time: ` +
          `${(performance.now() - startedAt).toFixed(0)} ms (slowest shard ${slowest.toFixed(0)} ms)`,
      )
    }),
  )
  await runJournal(
    { ...config, topic: appendTopic },
    Effect.gen(function* () {
      const markers = yield* timeReplay(0)
      console.log(
        `replay of ${markers.records} records appended one per transaction (a commit marker after each): ` +
          `${markers.elapsedMs.toFixed(1)} ms`,
      )
    }),
  )
}

const main = async () => {
  const { kafkaBrokers } = await stackUp()
  const config: KafkaJournalConfig = {
    brokers: kafkaBrokers.split(","),
    topic: `bench-journal-${randomUUID()}`,
    shardCount: 16,
    replicationFactor: 1,
    requestTimeoutMs: 5_000,
    clientId: "bench-journal",
    transactionalIdPrefix: "bench",
  }
  const sample = transferRecord(0)
  console.log(`machine: ${describeMachine()}`)
  console.log(
    `broker ${kafkaBrokers} (local, replication 1); record ${Buffer.byteLength(encodeJournalRecord(sample))} B; ` +
      `${appendsPerRun} appends per run after ${warmUpAppends} warm-up, one at a time`,
  )
  await transactionalRuns(config)
  await idempotentRuns(config)
  await replayRuns({ ...config, topic: `bench-replay-${randomUUID()}` }, config.topic)
}

await main()
