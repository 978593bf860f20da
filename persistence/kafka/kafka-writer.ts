/**
 * A journal writer of a set of shards: a kafkajs transactional producer whose transactional id
 * names the set (one shard: that shard's id), so the broker fences every earlier writer of the same
 * ownership when this one initializes. Each append is one Kafka transaction (send to every shard's
 * partition, commit), so a node flush is all-or-nothing across its shards and a fenced writer can
 * never commit. docs/journal-fencing.md argues the choice and its limits.
 */
import { Effect, type Scope } from "effect"
import { type Kafka, type Message, Partitioners, type Producer, type Transaction } from "kafkajs"
import { encodeJournalRecord, eventSchemaVersion, type JournalRecord } from "../../core/events.ts"
import {
  JournalFenced,
  type JournalUnavailable,
  type JournalWriter,
  type ShardRecords,
  singleShardAppend,
  writerShards,
} from "../journal.ts"
import { boundedPromise, type KafkaJournalConfig, unavailable, writerRetry } from "./kafka-clients.ts"
import { describeKafkaError, isFencingError } from "./kafka-errors.ts"

export const schemaVersionHeader = "schema-version"

/**
 * How long the broker lets a transaction stay open before aborting it itself. An append's
 * transaction lasts milliseconds; this bound only matters when a process stalls mid-append and no
 * new owner fences it (a new owner aborts it at once). It must stay well above any pause a live
 * owner may take, because the broker's own abort also bumps the epoch and the owner then sees
 * fencing, which stops it serving the shard.
 */
const transactionTimeoutMs = 60_000

/** Bytes of record values per produce request: below the broker's 1 MiB max.message.bytes. */
const sendBytesMax = 512 * 1024

/** Ascending shards as ranges: [0,1,2,5] -> "0-2_5". */
const rangesOf = (shards: ReadonlyArray<number>): string => {
  const ranges: Array<string> = []
  for (let index = 0; index < shards.length; ) {
    const first = shards[index] as number
    let last = first
    while (shards[index + 1] === last + 1) last = shards[++index] as number
    ranges.push(first === last ? `${first}` : `${first}-${last}`)
    index++
  }
  return ranges.join("_")
}

/** The ownership's transactional id: a writer of one shard keeps that shard's id, a node's names its shard set. */
export const transactionalIdOf = (config: KafkaJournalConfig, shards: ReadonlyArray<number>): string =>
  shards.length === 1
    ? `${config.transactionalIdPrefix}-${config.topic}-shard-${shards[0]}`
    : `${config.transactionalIdPrefix}-${config.topic}-shards-${rangesOf(shards)}`

export const journalMessage = (shard: number, record: JournalRecord): Message => ({
  partition: shard,
  key: null,
  value: Buffer.from(encodeJournalRecord(record), "utf8"),
  headers: { [schemaVersionHeader]: String(eventSchemaVersion) },
})

/** Splits a batch into produce requests of at most sendBytesMax value bytes (at least one message each). */
const chunksOf = (messages: ReadonlyArray<Message>): ReadonlyArray<Array<Message>> => {
  const chunks: Array<Array<Message>> = []
  let current: Array<Message> = []
  let bytes = 0
  for (const message of messages) {
    const size = (message.value as Buffer).length
    if (current.length > 0 && bytes + size > sendBytesMax) {
      chunks.push(current)
      current = []
      bytes = 0
    }
    current.push(message)
    bytes += size
  }
  if (current.length > 0) chunks.push(current)
  return chunks
}

/** Sends one chunk and returns, per partition in it, the offset after its last record. */
const sendChunk = async (
  transaction: Transaction,
  topic: string,
  messages: Array<Message>,
  timeoutMs: number,
): Promise<Map<number, number>> => {
  const counts = new Map<number, number>()
  for (const message of messages)
    counts.set(message.partition as number, (counts.get(message.partition as number) ?? 0) + 1)
  const answers = await transaction.send({ topic, messages, acks: -1, timeout: timeoutMs })
  const after = new Map<number, number>()
  for (const [partition, count] of counts) {
    const answer = answers.find((item) => item.topicName === topic && item.partition === partition)
    if (answer === undefined || answer.errorCode !== 0 || answer.baseOffset === undefined) {
      throw new Error(`produce to ${topic}/${partition} answered ${JSON.stringify(answers)}`)
    }
    after.set(partition, Number(answer.baseOffset) + count)
  }
  return after
}

/**
 * One Kafka transaction for one node flush; returns, per element of `batch`, the offset after its
 * shard's last record. `beforeCommit` lets the fencing fault test hold a stale writer between its
 * send and its commit.
 */
export const appendShardsInTransaction = async (
  producer: Producer,
  topic: string,
  batch: ReadonlyArray<{ readonly shard: number; readonly messages: ReadonlyArray<Message> }>,
  timeoutMs: number,
  beforeCommit: () => Promise<void> = async () => {},
): Promise<ReadonlyArray<number>> => {
  const transaction = await producer.transaction()
  try {
    const nextOffsets = new Map<number, number>()
    for (const chunk of chunksOf(batch.flatMap((item) => item.messages))) {
      for (const [partition, next] of await sendChunk(transaction, topic, chunk, timeoutMs))
        nextOffsets.set(partition, next)
    }
    await beforeCommit()
    await transaction.commit()
    return batch.map((item) => nextOffsets.get(item.shard) as number)
  } catch (error) {
    // A fenced producer cannot abort (the broker refuses its epoch and has aborted already).
    if (transaction.isActive() && !isFencingError(error)) await transaction.abort().catch(() => undefined)
    throw error
  }
}

/** `appendShardsInTransaction` for one shard: the offset after its last record. */
export const appendInTransaction = async (
  producer: Producer,
  topic: string,
  shard: number,
  messages: ReadonlyArray<Message>,
  timeoutMs: number,
  beforeCommit: () => Promise<void> = async () => {},
): Promise<number> => {
  const [nextOffset] = await appendShardsInTransaction(producer, topic, [{ shard, messages }], timeoutMs, beforeCommit)
  return nextOffset as number
}

const disconnectQuietly = (producer: Producer, timeoutMs: number): Effect.Effect<void> =>
  Effect.promise(() => producer.disconnect().catch(() => undefined)).pipe(Effect.timeout(timeoutMs), Effect.ignore)

export const makeProducer = (
  kafka: Kafka,
  config: KafkaJournalConfig,
  shards: number | ReadonlyArray<number>,
): Producer =>
  kafka.producer({
    transactionalId: transactionalIdOf(config, writerShards(shards)),
    idempotent: true,
    maxInFlightRequests: 1,
    transactionTimeout: transactionTimeoutMs,
    retry: writerRetry,
    allowAutoTopicCreation: false,
    // Every message names its partition; the partitioner is never consulted.
    createPartitioner: Partitioners.DefaultPartitioner,
  })

/**
 * Connects and fences. kafkajs's `connect()` only fetches a plain idempotent producer id; the
 * transactional InitProducerId, which bumps the epoch and aborts the previous owner's open
 * transaction, runs lazily at the first `transaction()`. Beginning and aborting an empty
 * transaction forces it now (the empty abort sends nothing to the broker).
 */
export const connectAndFence = async (producer: Producer): Promise<void> => {
  await producer.connect()
  const fencing = await producer.transaction()
  await fencing.abort()
}

type WriterState =
  | { readonly _tag: "Ready" }
  | { readonly _tag: "Appending" }
  | { readonly _tag: "Fenced"; readonly reason: string }
  | { readonly _tag: "Broken"; readonly reason: string }

/** `onAppended` hears the offset after each acknowledged batch of a shard, so replays can read their own writes. */
export const openKafkaWriter = (
  kafka: Kafka,
  config: KafkaJournalConfig,
  shards: ReadonlyArray<number>,
  onAppended: (shard: number, nextOffset: number) => void,
): Effect.Effect<JournalWriter, JournalUnavailable, Scope.Scope> => {
  const producer = makeProducer(kafka, config, shards)
  const first = shards[0] ?? -1
  const opened = boundedPromise(first, "opening the writer", config.requestTimeoutMs, () => connectAndFence(producer))
  return Effect.acquireRelease(
    opened.pipe(
      Effect.onError(() => disconnectQuietly(producer, config.requestTimeoutMs)),
      Effect.mapError((failure) => unavailable(first, "opening the journal writer", failure.cause)),
    ),
    () => disconnectQuietly(producer, config.requestTimeoutMs),
  ).pipe(Effect.map(() => makeWriter(producer, config, shards, onAppended)))
}

const makeWriter = (
  producer: Producer,
  config: KafkaJournalConfig,
  shards: ReadonlyArray<number>,
  onAppended: (shard: number, nextOffset: number) => void,
): JournalWriter => {
  let state: WriterState = { _tag: "Ready" }
  const owned = new Set(shards)
  const appendShards = (batch: ReadonlyArray<ShardRecords>) =>
    Effect.suspend((): Effect.Effect<ReadonlyArray<number>, JournalUnavailable | JournalFenced> => {
      const shard = batch[0]?.shard ?? -1
      if (batch.length === 0 || batch.some((item) => item.records.length === 0 || !owned.has(item.shard))) {
        return Effect.die(new Error(`empty or foreign append to the journal of shards ${shards.join(",")}`))
      }
      switch (state._tag) {
        case "Fenced":
          return Effect.fail(new JournalFenced({ shard, message: state.reason }))
        case "Broken":
          return Effect.fail(unavailable(shard, "writer unusable after an earlier failure", state.reason))
        case "Appending":
          return Effect.die(new Error(`concurrent appends to one writer of shards ${shards.join(",")}`))
        case "Ready":
          break
      }
      state = { _tag: "Appending" }
      const messages = batch.map((item) => ({
        shard: item.shard,
        messages: item.records.map((record) => journalMessage(item.shard, record)),
      }))
      return boundedPromise(shard, "append", config.requestTimeoutMs, () =>
        appendShardsInTransaction(producer, config.topic, messages, config.requestTimeoutMs),
      ).pipe(
        Effect.matchEffect({
          onSuccess: (nextOffsets) => {
            state = { _tag: "Ready" }
            batch.forEach((item, index) => {
              onAppended(item.shard, nextOffsets[index] as number)
            })
            return Effect.succeed(nextOffsets)
          },
          onFailure: (failure): Effect.Effect<never, JournalFenced | JournalUnavailable> => {
            const reason = describeKafkaError(failure.cause)
            if (!failure.timedOut && isFencingError(failure.cause)) {
              state = { _tag: "Fenced", reason }
              return Effect.fail(new JournalFenced({ shard, message: `a newer writer owns the shards: ${reason}` }))
            }
            // kafkajs rolls its sequence numbers back after a failed send, so a later transaction on
            // this producer could be taken by the broker for a duplicate of the aborted one and
            // "succeed" without writing. The writer is therefore never used again.
            state = { _tag: "Broken", reason }
            return Effect.fail(unavailable(shard, "append", failure.cause))
          },
        }),
        Effect.onInterrupt(() =>
          Effect.sync(() => {
            state = { _tag: "Broken", reason: "an append was interrupted" }
          }),
        ),
      )
    })
  return { shards, appendsInFlightMax: 1, appendShards, append: singleShardAppend(shards, appendShards) }
}
