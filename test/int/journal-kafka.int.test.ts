/**
 * The Kafka journal on @platformatic/kafka against the local Kafka broker: the Journal contract
 * (fencing included), then what only Kafka has (aborted transactions and commit markers occupying
 * offsets, replay from any offset, a topic with too few partitions, a record that does not decode),
 * and the aborted-transaction cases the client's own read_committed filter gets wrong.
 */
import { randomUUID } from "node:crypto"
import { Producer } from "@platformatic/kafka"
import { Cause, Effect, Exit, type Layer, type Scope } from "effect"
import { beforeAll, describe, expect, it } from "vitest"
import type { JournalRecord } from "../../core/events.ts"
import { Journal, type JournalEntry, type JournalUnavailable } from "../../persistence/journal.ts"
import { type KafkaJournalConfig, layerKafka } from "../../persistence/kafka/journal-kafka.ts"
import { type JournalMessage, journalMessage } from "../../persistence/kafka/kafka-writer.ts"
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

journalContract("kafka (@platformatic/kafka)", () => layerKafka(configFor(uniqueTopic())), {
  timeoutMs: 30_000,
})

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

const recordsOf = (entries: ReadonlyArray<JournalEntry>): ReadonlyArray<JournalRecord> =>
  entries.map((entry) => entry.record)

/**
 * Writes to the journal topic behind the adapter's back, as another (non-journal) transactional
 * producer would: each element of `transactions` is one transaction, committed or aborted.
 */
const sendTransactions = async (
  transactions: ReadonlyArray<{ readonly messages: Array<JournalMessage>; readonly outcome: "commit" | "abort" }>,
): Promise<void> => {
  const producer = new Producer({
    clientId: "journal-int-raw",
    bootstrapBrokers: [...brokers],
    transactionalId: `raw-${randomUUID()}`,
    idempotent: true,
    retries: 5,
    retryDelay: 20,
    producerId: -1n,
    producerEpoch: -1,
  })
  try {
    for (const { messages, outcome } of transactions) {
      const transaction = await producer.beginTransaction()
      await transaction.send({ messages })
      await (outcome === "commit" ? transaction.commit() : transaction.abort())
    }
  } finally {
    await producer.close()
  }
}

describe("Kafka journal on @platformatic/kafka", () => {
  it("replays none of an aborted transaction, and what follows it", async () => {
    const topic = uniqueTopic()
    const committed = [depositRecord("acc-1", 2, 10n)]
    const after = [depositRecord("acc-1", 3, 30n)]
    const { first, last } = await run(
      layerKafka(configFor(topic)),
      Effect.gen(function* () {
        const writer = yield* (yield* Journal).openWriter(0)
        const first = yield* writer.append(committed)
        yield* Effect.promise(() =>
          sendTransactions([
            { messages: [journalMessage(topic, 0, depositRecord("acc-1", 3, 666n))], outcome: "abort" },
          ]),
        )
        const last = yield* writer.append(after)
        return { first, last }
      }),
    )
    // A new layer: the replay does not lean on anything the writing process remembers.
    const all = await run(layerKafka(configFor(topic)), collect(0, 0))
    expect(recordsOf(all.entries)).toEqual([...committed, ...after])
    expect(all.nextOffset).toBe(last.nextOffset)
    // The aborted record and both kinds of marker sit between the two appends.
    expect(last.nextOffset - first.nextOffset).toBeGreaterThan(after.length + 1)
    const fromAborted = await run(layerKafka(configFor(topic)), collect(0, first.nextOffset))
    expect(recordsOf(fromAborted.entries)).toEqual(after)
  }, 60_000)

  it("replays none of several aborted transactions of one producer, from any offset, markers included", async () => {
    // The client's own filter keeps one aborted range per producer (so it would hand over the first
    // abort here) and throws when a fetch starts at an abort marker; the adapter must do neither.
    const topic = uniqueTopic()
    const layer = layerKafka(configFor(topic, 1))
    await run(layer, Effect.void)
    const message = (index: number) => journalMessage(topic, 0, depositRecord("acc-raw", index + 2, BigInt(index)))
    // Offsets: 0 aborted, 1 its abort marker, 2 aborted, 3 marker, 4 and 5 committed, 6 commit marker.
    await sendTransactions([
      { messages: [message(0)], outcome: "abort" },
      { messages: [message(1)], outcome: "abort" },
      { messages: [message(2), message(3)], outcome: "commit" },
    ])
    const committed = [depositRecord("acc-raw", 4, 2n), depositRecord("acc-raw", 5, 3n)]
    for (let fromOffset = 0; fromOffset <= 4; fromOffset++) {
      const replayed = await run(layerKafka(configFor(topic, 1)), collect(0, fromOffset))
      expect(recordsOf(replayed.entries), `from offset ${fromOffset}`).toEqual(committed)
      expect(replayed.entries.map((entry) => entry.offset)).toEqual([4, 5])
      expect(replayed.nextOffset).toBe(6)
    }
    const fromMarker = await run(layerKafka(configFor(topic, 1)), collect(0, 6))
    expect(fromMarker).toEqual({ entries: [], nextOffset: 6, batchSizes: [] })
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
        expect(recordsOf(all.entries)).toEqual(batches.flat())
        const fromSecond = yield* collect(1, offsets[0] ?? -1)
        expect(recordsOf(fromSecond.entries)).toEqual([...(batches[1] ?? []), ...(batches[2] ?? [])])
        const secondRecord = all.entries[1]
        if (secondRecord === undefined) throw new Error("no second record")
        const inside = yield* collect(1, secondRecord.offset)
        expect(recordsOf(inside.entries)).toEqual(batches.flat().slice(1))
        expect(inside.nextOffset).toBe(offsets[2])
      }),
    )
  }, 60_000)

  it("hands a long replay over in bounded batches, in order, across many fetches", async () => {
    const layer = layerKafka(configFor(uniqueTopic()))
    // About 4 MiB: several fetches of at most 1 MiB each.
    const records = Array.from({ length: 12_000 }, (_, index) => depositRecord("acc-long", index + 2, BigInt(index)))
    const replayed = await run(
      layer,
      Effect.gen(function* () {
        const writer = yield* (yield* Journal).openWriter(0)
        for (let start = 0; start < records.length; start += 2_000)
          yield* writer.append(records.slice(start, start + 2_000))
        return yield* collect(0, 0)
      }),
    )
    expect(recordsOf(replayed.entries)).toEqual(records)
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
    await run(layerKafka(configFor(topic)), Effect.void)
    const undecodable: JournalMessage = {
      ...journalMessage(topic, 0, depositRecord("acc-1", 2, 1n)),
      value: Buffer.from("not a journal record", "utf8"),
    }
    await sendTransactions([{ messages: [undecodable], outcome: "commit" }])
    const exit = await Effect.runPromiseExit(
      Effect.scoped(collect(0, 0)).pipe(Effect.provide(layerKafka(configFor(topic)))),
    )
    expect(Exit.isFailure(exit)).toBe(true)
    if (Exit.isFailure(exit)) expect(Cause.hasDies(exit.cause)).toBe(true)
  }, 60_000)
})
