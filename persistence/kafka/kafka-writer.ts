/**
 * One shard's journal writer: a kafkajs transactional producer whose transactional id is the
 * shard's, so the broker fences every earlier writer of the shard when this one initializes.
 * Each append is one Kafka transaction (send, commit), so a batch is all-or-nothing and a fenced
 * writer can never commit.
 */
import { Effect, type Scope } from "effect"
import { type Kafka, type Message, Partitioners, type Producer, type Transaction } from "kafkajs"
import { encodeJournalRecord, eventSchemaVersion, type JournalRecord } from "../../core/events.ts"
import { JournalFenced, type JournalUnavailable, type ShardWriter } from "../journal.ts"
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

export const transactionalIdOf = (config: KafkaJournalConfig, shard: number): string =>
  `${config.transactionalIdPrefix}-${config.topic}-shard-${shard}`

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

/** Sends one chunk and returns the offset of its last record (kafkajs reports the batch's base offset). */
const sendChunk = async (
  transaction: Transaction,
  topic: string,
  shard: number,
  messages: Array<Message>,
  timeoutMs: number,
): Promise<number> => {
  const answers = await transaction.send({ topic, messages, acks: -1, timeout: timeoutMs })
  const answer = answers.find((item) => item.topicName === topic && item.partition === shard)
  if (answer === undefined || answer.errorCode !== 0 || answer.baseOffset === undefined) {
    throw new Error(`produce to ${topic}/${shard} answered ${JSON.stringify(answers)}`)
  }
  return Number(answer.baseOffset) + messages.length - 1
}

/**
 * One Kafka transaction for one group commit; returns the offset after its last record.
 * `beforeCommit` lets the fencing fault test hold a stale writer between its send and its commit.
 */
export const appendInTransaction = async (
  producer: Producer,
  topic: string,
  shard: number,
  messages: ReadonlyArray<Message>,
  timeoutMs: number,
  beforeCommit: () => Promise<void> = async () => {},
): Promise<number> => {
  const transaction = await producer.transaction()
  try {
    let lastOffset = -1
    for (const chunk of chunksOf(messages)) {
      lastOffset = await sendChunk(transaction, topic, shard, chunk, timeoutMs)
    }
    await beforeCommit()
    await transaction.commit()
    return lastOffset + 1
  } catch (error) {
    // A fenced producer cannot abort (the broker refuses its epoch and has aborted already).
    if (transaction.isActive() && !isFencingError(error)) await transaction.abort().catch(() => undefined)
    throw error
  }
}

const disconnectQuietly = (producer: Producer, timeoutMs: number): Effect.Effect<void> =>
  Effect.promise(() => producer.disconnect().catch(() => undefined)).pipe(Effect.timeout(timeoutMs), Effect.ignore)

export const makeProducer = (kafka: Kafka, config: KafkaJournalConfig, shard: number): Producer =>
  kafka.producer({
    transactionalId: transactionalIdOf(config, shard),
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

/** `onAppended` hears the offset after each acknowledged batch, so replays can read their own writes. */
export const openKafkaWriter = (
  kafka: Kafka,
  config: KafkaJournalConfig,
  shard: number,
  onAppended: (nextOffset: number) => void,
): Effect.Effect<ShardWriter, JournalUnavailable, Scope.Scope> => {
  const producer = makeProducer(kafka, config, shard)
  const opened = boundedPromise(shard, "opening the writer", config.requestTimeoutMs, () => connectAndFence(producer))
  return Effect.acquireRelease(
    opened.pipe(
      Effect.onError(() => disconnectQuietly(producer, config.requestTimeoutMs)),
      Effect.mapError((failure) => unavailable(shard, "opening the journal writer", failure.cause)),
    ),
    () => disconnectQuietly(producer, config.requestTimeoutMs),
  ).pipe(Effect.map(() => makeWriter(producer, config, shard, onAppended)))
}

const makeWriter = (
  producer: Producer,
  config: KafkaJournalConfig,
  shard: number,
  onAppended: (nextOffset: number) => void,
): ShardWriter => {
  let state: WriterState = { _tag: "Ready" }
  const append = (records: ReadonlyArray<JournalRecord>) =>
    Effect.suspend((): Effect.Effect<{ readonly nextOffset: number }, JournalUnavailable | JournalFenced> => {
      if (records.length === 0) return Effect.die(new Error(`empty append to the journal of shard ${shard}`))
      switch (state._tag) {
        case "Fenced":
          return Effect.fail(new JournalFenced({ shard, message: state.reason }))
        case "Broken":
          return Effect.fail(unavailable(shard, "writer unusable after an earlier failure", state.reason))
        case "Appending":
          return Effect.die(new Error(`concurrent appends to one writer of shard ${shard}`))
        case "Ready":
          break
      }
      state = { _tag: "Appending" }
      const messages = records.map((record) => journalMessage(shard, record))
      return boundedPromise(shard, "append", config.requestTimeoutMs, () =>
        appendInTransaction(producer, config.topic, shard, messages, config.requestTimeoutMs),
      ).pipe(
        Effect.matchEffect({
          onSuccess: (nextOffset) => {
            state = { _tag: "Ready" }
            onAppended(nextOffset)
            return Effect.succeed({ nextOffset })
          },
          onFailure: (failure): Effect.Effect<never, JournalFenced | JournalUnavailable> => {
            const reason = describeKafkaError(failure.cause)
            if (!failure.timedOut && isFencingError(failure.cause)) {
              state = { _tag: "Fenced", reason }
              return Effect.fail(new JournalFenced({ shard, message: `a newer writer owns the shard: ${reason}` }))
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
  return { shard, append }
}
