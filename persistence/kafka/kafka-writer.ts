/**
 * A journal writer of a set of shards on @platformatic/kafka: a transactional producer whose
 * transactional id names the set (`transactionalIdOf`), which fences every earlier writer of the
 * set when it opens. Each append is one
 * Kafka transaction (send to every shard's partition, commit), so a node flush is all-or-nothing
 * across its shards and a fenced writer can never commit. The client keeps the transaction
 * coordinator and the producer id between transactions, so an append is AddPartitionsToTxn,
 * Produce and EndTxn: three requests (kafkajs, the client before it, made five). docs/journal-fencing.md argues the
 * design.
 */
import { type MessageToProduce, ProduceAcks, Producer } from "@platformatic/kafka"
import { Effect, type Scope } from "effect"
import { encodeJournalRecord, eventSchemaVersion, type JournalRecord } from "../../core/events.ts"
import {
  JournalFenced,
  type JournalUnavailable,
  type JournalWriter,
  type ShardRecords,
  singleShardAppend,
  writerShards,
} from "../journal.ts"
import {
  boundedPromise,
  closeQuietly,
  type KafkaJournalConfig,
  unavailable,
  writerBaseOptions,
} from "./kafka-clients.ts"
import { describeKafkaError, isFencingError } from "./kafka-errors.ts"

export const schemaVersionHeader = "schema-version"

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

export type JournalMessage = MessageToProduce<Buffer, Buffer, Buffer, Buffer>

/** The package's root does not export the Transaction class. */
type Transaction = Awaited<ReturnType<Producer["beginTransaction"]>>

/** Bytes of record values per produce request: below the broker's 1 MiB max.message.bytes per partition. */
const sendBytesMax = 512 * 1024

const schemaVersionKey = Buffer.from(schemaVersionHeader, "utf8")
const schemaVersionValue = Buffer.from(String(eventSchemaVersion), "utf8")

export const journalMessage = (topic: string, shard: number, record: JournalRecord): JournalMessage => ({
  topic,
  partition: shard,
  value: Buffer.from(encodeJournalRecord(record), "utf8"),
  headers: new Map([[schemaVersionKey, schemaVersionValue]]),
})

/** Splits a batch into produce requests of at most sendBytesMax value bytes (at least one message each). */
const chunksOf = (messages: ReadonlyArray<JournalMessage>): ReadonlyArray<Array<JournalMessage>> => {
  const chunks: Array<Array<JournalMessage>> = []
  let current: Array<JournalMessage> = []
  let bytes = 0
  for (const message of messages) {
    const size = message.value?.length ?? 0
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

/**
 * Sends one chunk (one Produce request per partition leader) and returns, per partition in it, the
 * offset after its last record.
 */
const sendChunk = async (
  transaction: Transaction,
  topic: string,
  messages: Array<JournalMessage>,
): Promise<Map<number, number>> => {
  const counts = new Map<number, number>()
  for (const message of messages)
    counts.set(message.partition as number, (counts.get(message.partition as number) ?? 0) + 1)
  const result = await transaction.send({ messages })
  const after = new Map<number, number>()
  for (const [partition, count] of counts) {
    const answer = result.offsets?.find((item) => item.topic === topic && item.partition === partition)
    if (answer === undefined) throw new Error(`produce to ${topic}/${partition} answered no offset`)
    after.set(partition, Number(answer.offset) + count)
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
  batch: ReadonlyArray<{ readonly shard: number; readonly messages: ReadonlyArray<JournalMessage> }>,
  beforeCommit: () => Promise<void> = async () => {},
): Promise<ReadonlyArray<number>> => {
  const transaction = await producer.beginTransaction()
  try {
    const nextOffsets = new Map<number, number>()
    for (const chunk of chunksOf(batch.flatMap((item) => item.messages))) {
      for (const [partition, next] of await sendChunk(transaction, topic, chunk)) nextOffsets.set(partition, next)
    }
    await beforeCommit()
    await transaction.commit()
    return batch.map((item) => nextOffsets.get(item.shard) as number)
  } catch (error) {
    // A fenced producer cannot abort (the broker refuses its epoch and has aborted already).
    if (!transaction.completed && !isFencingError(error)) await transaction.abort().catch(() => undefined)
    throw error
  }
}

/** `appendShardsInTransaction` for one shard: the offset after its last record. */
export const appendInTransaction = async (
  producer: Producer,
  topic: string,
  shard: number,
  messages: ReadonlyArray<JournalMessage>,
  beforeCommit: () => Promise<void> = async () => {},
): Promise<number> => {
  const [nextOffset] = await appendShardsInTransaction(producer, topic, [{ shard, messages }], beforeCommit)
  return nextOffset as number
}

export const makeProducer = (config: KafkaJournalConfig, shards: number | ReadonlyArray<number>): Producer =>
  makeProducerWithId(config, transactionalIdOf(config, writerShards(shards)))

const makeProducerWithId = (config: KafkaJournalConfig, transactionalId: string): Producer =>
  new Producer({
    ...writerBaseOptions(config),
    transactionalId,
    idempotent: true,
    acks: ProduceAcks.ALL,
    maxInflights: 1,
    compression: "none",
    // The client sends its `timeout` (requestTimeoutMs here, see platformatic-clients.ts) as the
    // transaction timeout too. An append's transaction never outlives the append's own deadline of
    // requestTimeoutMs (past it the writer is never used again), so nothing is lost by that; and a
    // process that dies mid-append holds the partition's last stable offset, which every
    // read_committed reader waits on, for seconds rather than a minute.
    //
    // InitProducerId carries the producer id and epoch a producer already has, -1 for none (KIP-360).
    // The client sends 0 and 0 unless told otherwise, which the broker answers with PRODUCER_FENCED
    // for every transactional id that has had an owner: a new writer could never take a shard over.
    producerId: -1n,
    producerEpoch: -1,
    // After NOT_LEADER_OR_FOLLOWER, a send is repeated once against the partition's new leader (the
    // idempotent sequence numbers keep a repeat from writing twice).
    repeatOnStaleMetadata: true,
  })

/**
 * Connects and fences: beginning a transaction finds the coordinator and sends the transactional
 * InitProducerId, which bumps the epoch and aborts the previous owner's open transaction (the
 * broker answers CONCURRENT_TRANSACTIONS, retried, until that abort is written). Cancelling the
 * empty transaction sends nothing; the producer keeps its id and epoch for the appends.
 */
export const connectAndFence = async (producer: Producer): Promise<void> => {
  const fencing = await producer.beginTransaction()
  await fencing.cancel()
}

/**
 * Fences every producer of `transactionalId`: InitProducerId bumps its epoch and aborts its open
 * transaction, so the previous owner of a shard, whose writer named another shard set, can neither
 * finish the transaction it has open nor start another. Nothing is written.
 */
export const fenceTransactionalId = (
  config: KafkaJournalConfig,
  transactionalId: string,
): Effect.Effect<void, JournalUnavailable> =>
  Effect.acquireUseRelease(
    Effect.sync(() => makeProducerWithId(config, transactionalId)),
    (producer) =>
      boundedPromise(-1, `fencing writer ${transactionalId}`, config.requestTimeoutMs, () =>
        connectAndFence(producer),
      ).pipe(Effect.mapError((failure) => unavailable(-1, `fencing writer ${transactionalId}`, failure.cause))),
    (producer) => closeQuietly(producer, config.requestTimeoutMs),
  )

type WriterState =
  | { readonly _tag: "Ready" }
  | { readonly _tag: "Appending" }
  | { readonly _tag: "Fenced"; readonly reason: string }
  | { readonly _tag: "Broken"; readonly reason: string }

/** `onAppended` hears the offset after each acknowledged batch of a shard, so replays can read their own writes. */
export const openKafkaWriter = (
  config: KafkaJournalConfig,
  shards: ReadonlyArray<number>,
  onAppended: (shard: number, nextOffset: number) => void,
): Effect.Effect<JournalWriter, JournalUnavailable, Scope.Scope> => {
  const producer = makeProducer(config, shards)
  const first = shards[0] ?? -1
  const opened = boundedPromise(first, "opening the writer", config.requestTimeoutMs, () => connectAndFence(producer))
  return Effect.acquireRelease(
    opened.pipe(
      Effect.onError(() => closeQuietly(producer, config.requestTimeoutMs)),
      Effect.mapError((failure) => unavailable(first, "opening the journal writer", failure.cause)),
    ),
    () => closeQuietly(producer, config.requestTimeoutMs),
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
        messages: item.records.map((record) => journalMessage(config.topic, item.shard, record)),
      }))
      return boundedPromise(shard, "append", config.requestTimeoutMs, () =>
        appendShardsInTransaction(producer, config.topic, messages),
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
            // A produce that failed leaves the client's sequence numbers where they were, so if the
            // broker did write it (the answer was lost), a later transaction on this producer could
            // be taken for a duplicate of it and "succeed" without writing. The writer is therefore
            // never used again.
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
