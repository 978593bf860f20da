/**
 * Replay of one shard's partition from an offset to its last stable offset as of the call, reading
 * committed records only. kafkajs has no manual partition assignment, so a throwaway consumer
 * group with a unique id joins with an assigner that gives it only the shard's partition, seeks to
 * the offset, and stops once the fetch position passes the end; the group is deleted afterwards.
 */
import { randomUUID } from "node:crypto"
import { Effect } from "effect"
import {
  type Admin,
  AssignerProtocol,
  type Consumer,
  type EachBatchPayload,
  type Kafka,
  type KafkaMessage,
  type PartitionAssigner,
} from "kafkajs"
import { decodeJournalRecord, eventSchemaVersion } from "../../core/events.ts"
import type { JournalEntry, JournalUnavailable } from "../journal.ts"
import { boundedPromise, clientRetry, type KafkaJournalConfig, unavailable } from "./kafka-clients.ts"
import { schemaVersionHeader } from "./kafka-writer.ts"

/** Entries handed to the callback at once; a fetch of 1 MiB holds a few thousand records. */
const entriesPerCallbackMax = 1024
/** Bytes one fetch may return for the partition: bounds the memory a replay holds at once. */
const fetchBytesMax = 1024 * 1024

const assignerName = "JournalReplayAssigner"

/** Assigns the one partition to the group's first member: the group only ever has one. */
const singlePartitionAssigner =
  (topic: string, partition: number): PartitionAssigner =>
  () => ({
    name: assignerName,
    version: 0,
    assign: async ({ members }) =>
      members.map((member, index) => ({
        memberId: member.memberId,
        memberAssignment: AssignerProtocol.MemberAssignment.encode({
          version: 0,
          assignment: index === 0 ? { [topic]: [partition] } : {},
          userData: Buffer.alloc(0),
        }),
      })),
    protocol: ({ topics }) => ({
      name: assignerName,
      metadata: AssignerProtocol.MemberMetadata.encode({ version: 0, topics, userData: Buffer.alloc(0) }),
    }),
  })

/** Partition bounds as of now: `end` is the last stable offset (ListOffsets is read_committed). */
export const partitionBounds = (admin: Admin, topic: string, shard: number) =>
  admin.fetchTopicOffsets(topic).then((partitions) => {
    const bounds = partitions.find((item) => item.partition === shard)
    if (bounds === undefined) throw new Error(`journal topic ${topic} has no partition ${shard}`)
    return { start: Number(bounds.low), end: Number(bounds.offset) }
  })

/**
 * Kafka's EndTxn returns once the commit is decided; the markers that make the records readable
 * follow within milliseconds. A replay must see every append this process has had acknowledged,
 * so it waits (bounded) until the last stable offset has passed them. Appends by other processes
 * need no wait: the caller opened its writer first, and InitProducerId completes only after every
 * earlier transaction of the shard is finished.
 */
const stableBounds = async (admin: Admin, topic: string, shard: number, visibleFrom: number, timeoutMs: number) => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const bounds = await partitionBounds(admin, topic, shard)
    if (bounds.end >= visibleFrom) return bounds
    if (Date.now() > deadline) {
      throw new Error(
        `acknowledged records of shard ${shard} below ${visibleFrom} are not readable yet (end ${bounds.end})`,
      )
    }
    await new Promise((resume) => setTimeout(resume, 2))
  }
}

/** A record that does not decode is a corrupt journal or a bug: the replay dies rather than skip it. */
const decodeEntry = (shard: number, message: KafkaMessage): JournalEntry => {
  const version = message.headers?.[schemaVersionHeader]?.toString()
  if (version !== String(eventSchemaVersion)) {
    throw new Error(`shard ${shard} offset ${message.offset}: unsupported ${schemaVersionHeader} ${version}`)
  }
  if (message.value === null) throw new Error(`shard ${shard} offset ${message.offset}: record without a value`)
  return { offset: Number(message.offset), record: decodeJournalRecord(message.value.toString("utf8")) }
}

interface ReplayRun {
  readonly shard: number
  readonly topic: string
  readonly end: number
  readonly onEntries: (entries: ReadonlyArray<JournalEntry>) => void
  /** Offset of the last record handed over; -1 while none. */
  lastRecordOffset: number
  /** Set when decoding or the callback threw: a defect, not an outage. */
  defect: unknown
}

const deliverBatch = (run: ReplayRun, batch: EachBatchPayload["batch"]): void => {
  if (batch.partition !== run.shard || run.defect !== undefined) return
  const entries: Array<JournalEntry> = []
  try {
    for (const message of batch.messages) {
      const offset = Number(message.offset)
      if (offset >= run.end || offset <= run.lastRecordOffset) continue
      entries.push(decodeEntry(run.shard, message))
      if (entries.length === entriesPerCallbackMax) run.onEntries(entries.splice(0))
      run.lastRecordOffset = offset
    }
    if (entries.length > 0) run.onEntries(entries)
  } catch (error) {
    run.defect = error
  }
}

const makeConsumer = (kafka: Kafka, config: KafkaJournalConfig, shard: number, groupId: string): Consumer =>
  kafka.consumer({
    groupId,
    partitionAssigners: [singlePartitionAssigner(config.topic, shard)],
    readUncommitted: false,
    allowAutoTopicCreation: false,
    // The group is new and has one member, so the join completes at once (with the broker's
    // group.initial.rebalance.delay.ms=0); these only bound how long a dead member is waited for.
    sessionTimeout: 6_000,
    rebalanceTimeout: config.requestTimeoutMs,
    heartbeatInterval: 1_000,
    // Data up to the end is there when the fetch arrives; a fetch waits only past the end.
    maxWaitTimeInMs: 100,
    minBytes: 1,
    maxBytes: fetchBytesMax,
    maxBytesPerPartition: fetchBytesMax,
    // A crashed replay is reported to the runtime, which retries the whole recovery.
    retry: { ...clientRetry, restartOnFailure: async () => false },
  })

/**
 * Consumes until the fetch position passes `end - 1` (a record, an aborted record or a commit marker:
 * every offset below the last stable offset is decided, so the fetch always reaches it). No batch
 * for `idleTimeoutMs` is an outage.
 */
const consumeToEnd = (consumer: Consumer, run: ReplayRun, fromOffset: number, idleTimeoutMs: number) =>
  new Promise<void>((resolve, reject) => {
    let idleTimer: NodeJS.Timeout | undefined
    const armIdleTimer = () => {
      clearTimeout(idleTimer)
      idleTimer = setTimeout(
        () => reject(new Error(`replay of shard ${run.shard} made no progress for ${idleTimeoutMs} ms`)),
        idleTimeoutMs,
      )
    }
    const settle = (error?: unknown) => {
      clearTimeout(idleTimer)
      if (error === undefined) resolve()
      else reject(error)
    }
    // END_BATCH_PROCESS fires for batches of records and for batches holding only markers or
    // aborted records (which never reach eachBatch); its lastOffset counts those too.
    consumer.on(consumer.events.END_BATCH_PROCESS, (event) => {
      if (event.payload.partition !== run.shard) return
      if (run.defect !== undefined || Number(event.payload.lastOffset) >= run.end - 1) settle()
      else armIdleTimer()
    })
    consumer.on(consumer.events.CRASH, (event) => settle(event.payload.error))
    armIdleTimer()
    consumer
      .run({ autoCommit: false, eachBatchAutoResolve: true, eachBatch: async ({ batch }) => deliverBatch(run, batch) })
      .catch(settle)
    // consumer.run creates the group synchronously before its first await, so the seek is in
    // place before the first fetch.
    consumer.seek({ topic: run.topic, partition: run.shard, offset: String(fromOffset) })
  })

export interface ReplayTools {
  readonly kafka: Kafka
  readonly admin: Admin
  readonly config: KafkaJournalConfig
}

const replayWithConsumer = (tools: ReplayTools, run: ReplayRun, fromOffset: number) => {
  const { kafka, admin, config } = tools
  const groupId = `${config.clientId}-replay-${config.topic}-${run.shard}-${randomUUID()}`
  const consumer = makeConsumer(kafka, config, run.shard, groupId)
  const timeoutMs = config.requestTimeoutMs
  const consume = boundedPromise(run.shard, "replay", timeoutMs * 3, async () => {
    await consumer.connect()
    await consumer.subscribe({ topic: config.topic, fromBeginning: true })
  }).pipe(
    Effect.andThen(
      Effect.tryPromise({
        try: () => consumeToEnd(consumer, run, fromOffset, timeoutMs * 2),
        catch: (cause) => ({ cause, timedOut: false }),
      }),
    ),
  )
  const cleanUp = boundedPromise(run.shard, "replay clean-up", timeoutMs, async () => {
    await consumer.disconnect()
    await admin.deleteGroups([groupId])
  }).pipe(Effect.ignore)
  return consume.pipe(Effect.ensuring(cleanUp))
}

/**
 * `visibleFrom`: the offset after the last record this process had acknowledged on the shard (0 if
 * none): the replay reads at least up to it.
 */
export const replayShard = (
  tools: ReplayTools,
  shard: number,
  fromOffset: number,
  visibleFrom: number,
  onEntries: (entries: ReadonlyArray<JournalEntry>) => void,
): Effect.Effect<{ readonly nextOffset: number }, JournalUnavailable> =>
  Effect.gen(function* () {
    const { config } = tools
    const bounds = yield* boundedPromise(shard, "reading the partition's offsets", config.requestTimeoutMs * 2, () =>
      stableBounds(tools.admin, config.topic, shard, visibleFrom, config.requestTimeoutMs),
    )
    if (fromOffset < bounds.start || fromOffset > bounds.end) {
      return yield* Effect.die(
        new Error(
          `replay of shard ${shard} from ${fromOffset} but the partition holds ${bounds.start}..${bounds.end}: ` +
            "journal records the snapshot depends on are gone",
        ),
      )
    }
    if (fromOffset === bounds.end) return { nextOffset: fromOffset }
    const run: ReplayRun = {
      shard,
      topic: config.topic,
      end: bounds.end,
      onEntries,
      lastRecordOffset: -1,
      defect: undefined,
    }
    yield* replayWithConsumer(tools, run, fromOffset)
    if (run.defect !== undefined) return yield* Effect.die(run.defect)
    return { nextOffset: run.lastRecordOffset >= 0 ? run.lastRecordOffset + 1 : fromOffset }
  }).pipe(Effect.mapError((failure) => unavailable(shard, "replay", failure.cause)))
