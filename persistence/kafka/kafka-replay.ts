/**
 * Replay of one shard's partition from an offset to its last stable offset as of the call, reading
 * committed records only, with plain read_committed Fetch requests to the partition's leader: no
 * consumer group, no join. The first fetch's answer carries the partition's log start and last
 * stable offset, so an empty tail costs one request. Records of aborted transactions are dropped
 * here, from the fetch answer's aborted-transaction list and the abort markers, as the Java
 * consumer does; the client's own filter is not used because it drops too little and can throw
 * (see `committedBatches`).
 */
import {
  type Admin,
  FetchIsolationLevels,
  fetchV13,
  fetchV14,
  fetchV15,
  fetchV16,
  fetchV17,
  IS_CONTROL,
  IS_TRANSACTIONAL,
  type KafkaRecord,
  type RecordsBatch,
} from "@platformatic/kafka"
import { Effect } from "effect"
import { decodeJournalRecord, eventSchemaVersion } from "../../core/events.ts"
import type { JournalEntry, JournalUnavailable } from "../journal.ts"
import { boundedPromise, type KafkaJournalConfig, unavailable } from "./kafka-clients.ts"
import { hasBrokerError } from "./kafka-errors.ts"
import { schemaVersionHeader } from "./kafka-writer.ts"

// The package's root exports these types only inside the API namespaces or not at all.
type FetchResponse = fetchV17.FetchResponse
type FetchResponsePartition = fetchV17.FetchResponsePartition
type ApiVersionsResponseApi = Awaited<ReturnType<Admin["listApis"]>>[number]

/** Entries handed to the callback at once; a fetch of 1 MiB holds a few thousand records. */
const entriesPerCallbackMax = 1024
/** Bytes one fetch may return for the partition: bounds the memory a replay holds at once. */
const fetchBytesMax = 1024 * 1024
/** Fetches in a row that return nothing below the end before the replay gives up (it cannot happen on a sane broker). */
const emptyFetchesMax = 3

type FetchApi = typeof fetchV17.api

/** The Fetch versions this client implements that name topics by id, newest first; their requests are alike. */
const fetchApis: ReadonlyArray<FetchApi> = [fetchV17.api, fetchV16.api, fetchV15.api, fetchV14.api, fetchV13.api]

/** The newest Fetch version both the client and the broker speak. */
export const chooseFetchApi = (brokerApis: ReadonlyArray<ApiVersionsResponseApi>): FetchApi => {
  const fetch = brokerApis.find((api) => api.apiKey === fetchV17.api.key)
  const chosen = fetchApis.find(
    (api) => fetch !== undefined && api.version >= fetch.minVersion && api.version <= fetch.maxVersion,
  )
  if (chosen === undefined) throw new Error(`the broker speaks no Fetch version of 13..17 (${JSON.stringify(fetch)})`)
  return chosen
}

export interface ReplayTools {
  readonly admin: Admin
  readonly fetchApi: FetchApi
  readonly config: KafkaJournalConfig
}

/**
 * One read_committed fetch of the shard's partition from `offset`, answered at once with what is
 * there (no wait for more). Sessionless (session id 0, epoch -1): a replay holds no fetch session
 * slot on the broker.
 */
const fetchPartition = async (tools: ReplayTools, shard: number, offset: number): Promise<FetchResponsePartition> => {
  const { admin, config } = tools
  const metadata = await admin.metadata({ topics: [config.topic] })
  const topic = metadata.topics.get(config.topic)
  const partition = topic?.partitions[shard]
  const broker = partition === undefined ? undefined : metadata.brokers.get(partition.leader)
  if (topic === undefined || partition === undefined || broker === undefined) {
    throw new Error(`journal topic ${config.topic} has no partition ${shard} with a known leader`)
  }
  const connection = await admin.connections.get(broker)
  const request = {
    partition: shard,
    currentLeaderEpoch: partition.leaderEpoch,
    fetchOffset: BigInt(offset),
    lastFetchedEpoch: -1,
    partitionMaxBytes: fetchBytesMax,
  }
  const topics = [{ topicId: topic.id, partitions: [request] }]
  let response: FetchResponse
  try {
    response = await tools.fetchApi.async(
      connection,
      0,
      0,
      fetchBytesMax,
      FetchIsolationLevels.READ_COMMITTED,
      0,
      -1,
      topics,
      [],
      "",
    )
  } catch (error) {
    // A leader that moved answers NOT_LEADER_OR_FOLLOWER or FENCED_LEADER_EPOCH: the next attempt
    // (the runtime retries the recovery) must look the leader up again.
    admin.clearMetadata()
    throw error
  }
  const answer = response.responses[0]?.partitions[0]
  if (answer === undefined) throw new Error(`fetch of ${config.topic}/${shard} answered no partition`)
  return answer
}

const isAbortMarker = (batch: RecordsBatch): boolean =>
  (batch.attributes & IS_CONTROL) !== 0 && batch.records[0]?.key?.readInt16BE(2) === 0

/**
 * The batches of one fetch answer that hold committed records. The answer lists each aborted
 * transaction that overlaps it by producer and first offset; a producer's batches from that offset
 * to its abort marker are aborted. The client's own filter keeps one aborted range per producer
 * and only when its marker is in the same answer, so it can hand over aborted records, and it
 * throws on an abort marker whose transaction began before the fetch offset
 * (github.com/platformatic/kafka/issues/391).
 */
const committedBatches = (answer: FetchResponsePartition): ReadonlyArray<RecordsBatch> => {
  const aborted = [...answer.abortedTransactions].sort((a, b) => (a.firstOffset < b.firstOffset ? -1 : 1))
  const abortedProducers = new Set<bigint>()
  const kept: Array<RecordsBatch> = []
  let nextAborted = 0
  for (const batch of answer.records ?? []) {
    const lastOffset = batch.firstOffset + BigInt(batch.lastOffsetDelta)
    // A transaction that begins at or before this batch's last offset is aborted from here on.
    for (let pending = aborted[nextAborted]; pending !== undefined && pending.firstOffset <= lastOffset; ) {
      abortedProducers.add(pending.producerId)
      pending = aborted[++nextAborted]
    }
    if (isAbortMarker(batch)) abortedProducers.delete(batch.producerId)
    const abortedBatch = (batch.attributes & IS_TRANSACTIONAL) !== 0 && abortedProducers.has(batch.producerId)
    if ((batch.attributes & IS_CONTROL) === 0 && !abortedBatch) kept.push(batch)
  }
  return kept
}

/** A record that does not decode is a corrupt journal or a bug: the replay dies rather than skip it. */
const decodeEntry = (shard: number, offset: number, record: KafkaRecord): JournalEntry => {
  const versionHeader = record.headers.find(([key]) => key?.toString("utf8") === schemaVersionHeader)
  const version = versionHeader?.[1]?.toString("utf8")
  if (version !== String(eventSchemaVersion)) {
    throw new Error(`shard ${shard} offset ${offset}: unsupported ${schemaVersionHeader} ${version}`)
  }
  if (record.value === null) throw new Error(`shard ${shard} offset ${offset}: record without a value`)
  return { offset, record: decodeJournalRecord(record.value.toString("utf8")) }
}

interface ReplayRun {
  readonly shard: number
  readonly fromOffset: number
  /** The last stable offset as of the call: records at or after it are not read. */
  readonly end: number
  readonly onEntries: (entries: ReadonlyArray<JournalEntry>) => void
  /** Offset of the last record handed over; -1 while none. */
  lastRecordOffset: number
}

/**
 * Hands the committed records of one answer in [fromOffset, end) to the callback, in bounded
 * batches; returns where the next fetch starts (after every batch of the answer, markers and
 * aborted ones included). Throws (a defect) when a record does not decode or the callback throws.
 */
const deliver = (run: ReplayRun, answer: FetchResponsePartition, fetchedFrom: number): number => {
  let next = fetchedFrom
  for (const batch of answer.records ?? []) {
    next = Math.max(next, Number(batch.firstOffset) + batch.lastOffsetDelta + 1)
  }
  const entries: Array<JournalEntry> = []
  for (const batch of committedBatches(answer)) {
    for (const record of batch.records) {
      const offset = Number(batch.firstOffset) + record.offsetDelta
      if (offset < run.fromOffset || offset >= run.end || offset <= run.lastRecordOffset) continue
      entries.push(decodeEntry(run.shard, offset, record))
      run.lastRecordOffset = offset
      if (entries.length === entriesPerCallbackMax) run.onEntries(entries.splice(0))
    }
  }
  if (entries.length > 0) run.onEntries(entries)
  return next
}

const sleep = (ms: number) => new Promise((resume) => setTimeout(resume, ms))

/**
 * The first fetch, repeated (bounded) until the last stable offset has passed `visibleFrom`, the
 * offset after the last append this process had acknowledged: Kafka's EndTxn may return before
 * the commit markers are written (docs/journal-fencing.md issue 6). Appends by other processes need
 * no wait: the caller opened its writer first, which completes every earlier transaction.
 */
const firstFetch = async (tools: ReplayTools, shard: number, fromOffset: number, visibleFrom: number) => {
  const deadline = Date.now() + tools.config.requestTimeoutMs
  for (;;) {
    const answer = await fetchPartition(tools, shard, fromOffset)
    if (Number(answer.lastStableOffset) >= visibleFrom) return answer
    if (Date.now() > deadline) {
      throw new Error(
        `acknowledged records of shard ${shard} below ${visibleFrom} are not readable yet (end ${answer.lastStableOffset})`,
      )
    }
    await sleep(2)
  }
}

const goneRecords = (shard: number, fromOffset: number, holds: string) =>
  Effect.die(
    new Error(
      `replay of shard ${shard} from ${fromOffset} but the partition holds ${holds}: ` +
        "journal records the snapshot depends on are gone",
    ),
  )

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
    const timeoutMs = tools.config.requestTimeoutMs
    const first = yield* boundedPromise(shard, "replay", timeoutMs * 2, () =>
      firstFetch(tools, shard, fromOffset, visibleFrom),
    ).pipe(
      Effect.catchIf(
        (failure) => hasBrokerError(failure.cause, "OFFSET_OUT_OF_RANGE"),
        () => goneRecords(shard, fromOffset, "no such offset"),
      ),
    )
    const start = Number(first.logStartOffset)
    const end = Number(first.lastStableOffset)
    if (fromOffset < start || fromOffset > end) return yield* goneRecords(shard, fromOffset, `${start}..${end}`)
    const run: ReplayRun = { shard, fromOffset, end, onEntries, lastRecordOffset: -1 }
    let next = yield* Effect.sync(() => deliver(run, first, fromOffset))
    for (let emptyFetches = 0; next < end; ) {
      const fetchedFrom = next
      const answer = yield* boundedPromise(shard, "replay", timeoutMs, () => fetchPartition(tools, shard, fetchedFrom))
      next = yield* Effect.sync(() => deliver(run, answer, fetchedFrom))
      emptyFetches = next > fetchedFrom ? 0 : emptyFetches + 1
      if (emptyFetches === emptyFetchesMax) {
        return yield* Effect.fail({
          cause: new Error(`replay of shard ${shard} made no progress at offset ${next} (end ${end})`),
          timedOut: false,
        })
      }
    }
    return { nextOffset: run.lastRecordOffset >= 0 ? run.lastRecordOffset + 1 : fromOffset }
  }).pipe(Effect.mapError((failure) => unavailable(shard, "replay", failure.cause)))
