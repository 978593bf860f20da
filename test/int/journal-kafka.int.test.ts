/**
 * The Kafka journal against the local Kafka broker: the Journal contract (fencing included), then
 * what only Kafka has: aborted transactions and commit markers occupying offsets, replay from any
 * offset, a topic with too few partitions, and a record that does not decode.
 */
import { randomUUID } from "node:crypto"
import { Cause, Effect, Exit, type Layer, type Scope } from "effect"
import { Kafka, logLevel, type Message } from "kafkajs"
import { beforeAll, describe, expect, it } from "vitest"
import { Journal, type JournalEntry, type JournalUnavailable } from "../../persistence/journal.ts"
import { type KafkaJournalConfig, layerKafka } from "../../persistence/kafka/journal-kafka.ts"
import { journalMessage } from "../../persistence/kafka/kafka-writer.ts"
import { stackUp } from "../../scripts/local-stack/stack.ts"
import { depositRecord } from "../contract/fixtures.ts"
import { journalContract } from "../contract/journal.contract.ts"

let brokers: ReadonlyArray<string> = []

beforeAll(async () => {
  brokers = (await stackUp()).kafkaBrokers.split(",")
})

const configFor = (topic: string, shardCount = 2): KafkaJournalConfig => ({
  brokers,
  topic,
  shardCount,
  replicationFactor: 1,
  requestTimeoutMs: 5_000,
  clientId: "journal-kafka-int",
  transactionalIdPrefix: "int",
})

const uniqueTopic = (): string => `journal-int-${randomUUID()}`

journalContract("kafka", () => layerKafka(configFor(uniqueTopic())), { timeoutMs: 30_000 })

const run = <A, E>(
  layer: Layer.Layer<Journal, JournalUnavailable>,
  program: Effect.Effect<A, E, Journal | Scope.Scope>,
) => Effect.runPromise(Effect.scoped(program).pipe(Effect.provide(layer)))

const collect = (shard: number, fromOffset: number) =>
  Effect.gen(function* () {
    const journal = yield* Journal
    const entries: Array<JournalEntry> = []
    const batchSizes: Array<number> = []
    const { nextOffset } = yield* journal.replay(shard, fromOffset, (batch) => {
      batchSizes.push(batch.length)
      entries.push(...batch)
    })
    return { entries, nextOffset, batchSizes }
  })

/** Writes to the journal topic behind the adapter's back, as another (non-journal) producer would. */
const withRawProducer = async (use: (producer: ReturnType<Kafka["producer"]>) => Promise<void>): Promise<void> => {
  const kafka = new Kafka({ clientId: "journal-int-raw", brokers: [...brokers], logLevel: logLevel.NOTHING })
  const producer = kafka.producer({ transactionalId: `raw-${randomUUID()}`, idempotent: true, maxInFlightRequests: 1 })
  await producer.connect()
  try {
    await use(producer)
  } finally {
    await producer.disconnect()
  }
}

const sendInTransaction = (topic: string, messages: Array<Message>, outcome: "commit" | "abort") =>
  withRawProducer(async (producer) => {
    const transaction = await producer.transaction()
    await transaction.send({ topic, messages, acks: -1 })
    await (outcome === "commit" ? transaction.commit() : transaction.abort())
  })

describe("Kafka journal", () => {
  it("replays none of an aborted transaction, and what follows it", async () => {
    const topic = uniqueTopic()
    const layer = layerKafka(configFor(topic))
    const committed = [depositRecord("acc-1", 2, 10n)]
    const after = [depositRecord("acc-1", 3, 30n)]
    const { first, last } = await run(
      layer,
      Effect.gen(function* () {
        const writer = yield* (yield* Journal).openWriter(0)
        const first = yield* writer.append(committed)
        yield* Effect.promise(() =>
          sendInTransaction(topic, [journalMessage(0, depositRecord("acc-1", 3, 666n))], "abort"),
        )
        const last = yield* writer.append(after)
        return { first, last }
      }),
    )
    // A new layer: the replay does not lean on anything the writing process remembers.
    const all = await run(layerKafka(configFor(topic)), collect(0, 0))
    expect(all.entries.map((entry) => entry.record)).toEqual([...committed, ...after])
    expect(all.nextOffset).toBe(last.nextOffset)
    // The aborted record and both kinds of marker sit between the two appends.
    expect(last.nextOffset - first.nextOffset).toBeGreaterThan(after.length + 1)
    const fromAborted = await run(layerKafka(configFor(topic)), collect(0, first.nextOffset))
    expect(fromAborted.entries.map((entry) => entry.record)).toEqual(after)
  }, 60_000)

  it("replays from any offset, including one inside a batch", async () => {
    const layer = layerKafka(configFor(uniqueTopic()))
    const batches = [0, 1, 2].map((batch) =>
      Array.from({ length: 3 }, (_, index) => depositRecord(`acc-${batch}`, index + 2, BigInt(batch * 10 + index))),
    )
    await run(
      layer,
      Effect.gen(function* () {
        const writer = yield* (yield* Journal).openWriter(1)
        const offsets: Array<number> = []
        for (const batch of batches) offsets.push((yield* writer.append(batch)).nextOffset)
        const all = yield* collect(1, 0)
        expect(all.entries.map((entry) => entry.record)).toEqual(batches.flat())
        const fromSecond = yield* collect(1, offsets[0] ?? -1)
        expect(fromSecond.entries.map((entry) => entry.record)).toEqual([...(batches[1] ?? []), ...(batches[2] ?? [])])
        const secondRecord = all.entries[1]
        if (secondRecord === undefined) throw new Error("no second record")
        const inside = yield* collect(1, secondRecord.offset)
        expect(inside.entries.map((entry) => entry.record)).toEqual(batches.flat().slice(1))
        expect(inside.nextOffset).toBe(offsets[2])
      }),
    )
  }, 60_000)

  it("hands a long replay over in bounded batches, in order", async () => {
    const layer = layerKafka(configFor(uniqueTopic()))
    const records = Array.from({ length: 3000 }, (_, index) => depositRecord("acc-long", index + 2, BigInt(index)))
    const replayed = await run(
      layer,
      Effect.gen(function* () {
        const writer = yield* (yield* Journal).openWriter(0)
        for (let start = 0; start < records.length; start += 500)
          yield* writer.append(records.slice(start, start + 500))
        return yield* collect(0, 0)
      }),
    )
    expect(replayed.entries.map((entry) => entry.record)).toEqual(records)
    expect(Math.max(...replayed.batchSizes)).toBeLessThanOrEqual(1024)
    const offsets = replayed.entries.map((entry) => entry.offset)
    expect(
      offsets.every((offset, index) => index === 0 || offset > (offsets[index - 1] ?? Number.POSITIVE_INFINITY)),
    ).toBe(true)
  }, 60_000)

  it("refuses a topic with fewer partitions than shards, naming it", async () => {
    const topic = uniqueTopic()
    await run(layerKafka(configFor(topic, 2)), Effect.void)
    const exit = await Effect.runPromiseExit(Effect.provide(Effect.void, layerKafka(configFor(topic, 4))))
    expect(Exit.isFailure(exit)).toBe(true)
    if (Exit.isFailure(exit)) expect(Cause.pretty(exit.cause)).toContain(`"${topic}" has 2 partitions`)
  }, 60_000)

  it("dies on a record that does not decode instead of skipping it", async () => {
    const topic = uniqueTopic()
    const layer = layerKafka(configFor(topic))
    await run(layer, Effect.void)
    await sendInTransaction(
      topic,
      [{ partition: 0, value: "not a journal record", headers: { "schema-version": "1" } }],
      "commit",
    )
    const exit = await Effect.runPromiseExit(
      Effect.scoped(collect(0, 0)).pipe(Effect.provide(layerKafka(configFor(topic)))),
    )
    expect(Exit.isFailure(exit)).toBe(true)
    if (Exit.isFailure(exit)) expect(Cause.hasDies(exit.cause)).toBe(true)
  }, 60_000)
})
