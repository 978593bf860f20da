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
import { encodeJournalRecord } from "../core/events.ts"
import { Journal } from "../persistence/journal.ts"
import { type KafkaJournalConfig, layerKafka } from "../persistence/kafka/journal-kafka.ts"
import { stackUp } from "../scripts/local-stack/stack.ts"
import { formatCeiling } from "./baselines/ceiling.ts"
import { measureKafkaCeiling } from "./baselines/kafka-ceiling.ts"
import { transferRecord } from "./support/journal-records.ts"
import { describeMachine } from "./support/machine.ts"

const batchSizes = [1, 16, 128]
const durationMs = Number(process.env.BENCH_SECONDS ?? "5") * 1000
const replayRecords = 10_000

const runJournal = <A, E>(config: KafkaJournalConfig, program: Effect.Effect<A, E, Journal | Scope.Scope>) =>
  Effect.runPromise(Effect.scoped(program).pipe(Effect.provide(layerKafka(config))))

/**
 * One shard, one append in flight: the journal's transactional writer against a plain idempotent
 * producer with the same client settings, timed by the benchmark suite's ceiling loop.
 */
const appendRuns = async (brokers: string) => {
  for (const batchRecords of batchSizes) {
    for (const transactional of [true, false]) {
      const result = await measureKafkaCeiling({ brokers, durationMs, batchRecords, partitions: 1, transactional })
      console.log(`batch ${String(batchRecords).padStart(3)}: ${formatCeiling(result)}`)
    }
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
 * node that restarts.
 */
const replayRuns = async (config: KafkaJournalConfig) => {
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
}

const main = async () => {
  const { kafkaBrokers } = await stackUp()
  const config: KafkaJournalConfig = {
    brokers: kafkaBrokers.split(","),
    topic: `bench-replay-${randomUUID()}`,
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
      `${durationMs / 1000} s per run after a warm-up, one append at a time`,
  )
  await appendRuns(kafkaBrokers)
  await replayRuns(config)
}

await main()
