/**
 * Does the Kafka journal (persistence/kafka/, on @platformatic/kafka) work against a Kafka 4.x broker?
 * Kafka 4 removed ZooKeeper and old protocol versions (KIP-896), so this starts a 4.x KRaft broker beside
 * the stack's (own ports, own directory), runs the journal's own code against it (`layerKafka`, and the
 * writer's exported pieces where a check must stop a transaction between its send and its commit),
 * prints pass/fail with the exact errors and the protocol versions the adapter sent, then stops that
 * broker. With `--broker host:port` it checks an already running broker instead (the stack's 3.9 broker
 * must pass everything).
 *
 *   node --import tsx scripts/local-stack/kafka4-check.ts [--version 4.1.1] [--broker 127.0.0.1:19092]
 */
import { readFileSync, rmSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, join } from "node:path"
import { parseArgs } from "node:util"
import * as platformatic from "@platformatic/kafka"
import {
  type Admin,
  ConfigResourceTypes,
  connectionsApiChannel,
  FetchIsolationLevels,
  ListOffsetTimestamps,
  type Producer,
  protocolAPIsById,
  protocolAPIsByName,
} from "@platformatic/kafka"
import { Context, Effect, Layer, type Scope } from "effect"
import { encodeJournalRecord, type JournalRecord } from "../../core/events.ts"
import { Journal, type JournalEntry, type JournalFenced, type JournalUnavailable } from "../../persistence/journal.ts"
import { layerKafka } from "../../persistence/kafka/journal-kafka.ts"
import { closeQuietly, type KafkaJournalConfig, makeAdmin } from "../../persistence/kafka/kafka-clients.ts"
import { describeKafkaError, isFencingError } from "../../persistence/kafka/kafka-errors.ts"
import { chooseFetchApi } from "../../persistence/kafka/kafka-replay.ts"
import {
  appendShardsInTransaction,
  connectAndFence,
  type JournalMessage,
  journalMessage,
  makeProducer,
} from "../../persistence/kafka/kafka-writer.ts"
import { depositRecord } from "../../test/contract/fixtures.ts"
import { type KafkaServerOptions, startKafka, stopKafka } from "./kafka.ts"
import { logsDirectory, stackDirectory } from "./process-control.ts"

interface CheckResult {
  readonly name: string
  readonly passed: boolean
  readonly detail: string
}

/** Bound on one whole check; every client call inside it has its own, shorter bound (stepTimeoutMs). */
const checkTimeoutMs = 60_000
const stepTimeoutMs = 15_000
/** The adapter's bound on one request and one journal operation; also every writer's transaction timeout. */
const requestTimeoutMs = 5_000

const bounded = <A>(what: string, work: Promise<A>, timeoutMs = stepTimeoutMs): Promise<A> => {
  let timer: NodeJS.Timeout | undefined
  const expired = new Promise<never>((_, fail) => {
    timer = setTimeout(() => fail(new Error(`${what}: no answer in ${timeoutMs} ms`)), timeoutMs)
    timer.unref()
  })
  return Promise.race([work, expired]).finally(() => clearTimeout(timer))
}

// --- What went over the wire -------------------------------------------------------------------------

interface SentRequest {
  readonly apiKey: number
  readonly apiVersion: number
}

interface Refusal extends SentRequest {
  /** The broker's error names (`PRODUCER_FENCED`, ...), or the client's error when there is none. */
  readonly codes: string
}

/**
 * Every request the journal's clients send and every error answer, from the client's diagnostics
 * channel (public API). The script's own admin client (offsets, configs, clean-up) is left out, so
 * these are the adapter's requests only. Bounded: a run sends a few hundred.
 */
const requestsMax = 50_000
const sentRequests: Array<SentRequest> = []
const refusals: Array<Refusal> = []
const scriptClients = new Set<number>()

interface ApiEvent {
  readonly connection?: { readonly ownerId?: number | undefined }
  readonly apiKey?: unknown
  readonly apiVersion?: unknown
  readonly error?: unknown
}

const adapterRequest = (message: unknown): SentRequest | undefined => {
  const event = message as ApiEvent
  const owner = event.connection?.ownerId
  if (owner !== undefined && scriptClients.has(owner)) return undefined
  if (typeof event.apiKey !== "number" || typeof event.apiVersion !== "number") return undefined
  return { apiKey: event.apiKey, apiVersion: event.apiVersion }
}

const brokerCodes = (error: unknown): string => {
  const nested = (error as { errors?: unknown }).errors
  if (!Array.isArray(nested) || nested.length === 0) return describeKafkaError(error)
  return [...new Set(nested.map((item: { apiId?: unknown }) => String(item.apiId ?? describeKafkaError(item))))].join(
    ",",
  )
}

connectionsApiChannel.start.subscribe((message) => {
  const request = adapterRequest(message)
  if (request !== undefined && sentRequests.length < requestsMax) sentRequests.push(request)
})
connectionsApiChannel.error.subscribe((message) => {
  const request = adapterRequest(message)
  if (request !== undefined && refusals.length < requestsMax) {
    refusals.push({ ...request, codes: brokerCodes((message as ApiEvent).error) })
  }
})

/** The adapter's requests and error answers from now on. */
const requestWindow = () => {
  const sentFrom = sentRequests.length
  const refusedFrom = refusals.length
  return { sent: () => sentRequests.slice(sentFrom), refused: () => refusals.slice(refusedFrom) }
}

const apiName = (apiKey: number): string => protocolAPIsById[apiKey] ?? `api ${apiKey}`

/** "AddPartitionsToTxn v5 x1, Produce v11 x1": requests grouped by API and version, in first-sent order. */
const summarize = (requests: ReadonlyArray<SentRequest | Refusal>): string => {
  const counts = new Map<string, number>()
  for (const request of requests) {
    const codes = "codes" in request ? ` ${request.codes}` : ""
    const key = `${apiName(request.apiKey)} v${request.apiVersion}${codes}`
    counts.set(key, (counts.get(key) ?? 0) + 1)
  }
  return counts.size === 0 ? "none" : [...counts].map(([key, count]) => `${key} x${count}`).join(", ")
}

const countOf = (requests: ReadonlyArray<SentRequest>, api: string): number =>
  requests.filter((request) => request.apiKey === protocolAPIsByName[api]).length

// --- Records and replays ------------------------------------------------------------------------------

/** Each check's records are deposits to an account named after them, so a replay reads back as labels. */
const labels = new Map<string, string>()

const recordOf = (label: string): JournalRecord => {
  const record = depositRecord(`kafka4-check-${label}`, 2, 1n)
  labels.set(encodeJournalRecord(record), label)
  return record
}

/** "offset:label"; a record that does not encode exactly like one this run wrote reads "offset:?". */
const entryLabel = (entry: JournalEntry): string =>
  `${entry.offset}:${labels.get(encodeJournalRecord(entry.record)) ?? "?"}`

interface Replayed {
  readonly entries: ReadonlyArray<string>
  readonly nextOffset: number
  readonly fetches: number
}

const replayOf = (journal: Journal["Service"], shard: number, fromOffset: number) =>
  Effect.gen(function* () {
    const window = requestWindow()
    const entries: Array<string> = []
    const { nextOffset } = yield* journal.replay(shard, fromOffset, (batch) => {
      for (const entry of batch) entries.push(entryLabel(entry))
    })
    return { entries, nextOffset, fetches: countOf(window.sent(), "Fetch") } satisfies Replayed
  })

const expectEqual = (what: string, actual: unknown, expected: unknown): void => {
  if (JSON.stringify(actual) !== JSON.stringify(expected)) {
    throw new Error(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`)
  }
}

const expectReplay = (what: string, replayed: Replayed, entries: ReadonlyArray<string>, nextOffset: number) => {
  expectEqual(`${what} entries`, replayed.entries, entries)
  expectEqual(`${what} nextOffset`, replayed.nextOffset, nextOffset)
}

const showReplay = (shard: number, from: number, replayed: Replayed): string =>
  `shard ${shard} from ${from}: [${replayed.entries.join(" ")}] next ${replayed.nextOffset}`

// --- The run ------------------------------------------------------------------------------------------

/** The checks share one run: a fresh topic and transactional ids, and the script's own admin client. */
interface Run {
  readonly config: KafkaJournalConfig
  /** Reads high watermarks and topic configs; its requests are not counted as the adapter's. */
  readonly admin: Admin
  readonly producers: Array<Producer>
}

/** Each call builds the layer afresh, as a new process would: nothing is remembered between calls. */
const withJournal = <A>(
  run: Run,
  what: string,
  program: Effect.Effect<A, JournalUnavailable | JournalFenced, Journal | Scope.Scope>,
): Promise<A> =>
  bounded(what, Effect.runPromise(Effect.scoped(program).pipe(Effect.provide(layerKafka(run.config)))), checkTimeoutMs)

/**
 * Replays shards 0 and 1 from another layer, as another process would: it opens its writer first,
 * as recovery does, which completes every earlier transaction.
 */
const replayByNewLayer = (run: Run, start0: number, start1: number) =>
  withJournal(
    run,
    "replay by a new layer",
    Effect.gen(function* () {
      const journal = yield* Journal
      yield* journal.openWriter([0, 1])
      return [yield* replayOf(journal, 0, start0), yield* replayOf(journal, 1, start1)] as const
    }),
  )

/** A writer of shards 0 and 1 built from the adapter's own pieces, for the checks that must drive a transaction. */
const rawWriter = async (run: Run): Promise<Producer> => {
  const producer = makeProducer(run.config, [0, 1])
  run.producers.push(producer)
  await bounded("connectAndFence", connectAndFence(producer))
  return producer
}

/** Offsets after the last record or marker in the log (read_uncommitted): what a transaction occupies. */
const highWatermarks = async (run: Run, shards: ReadonlyArray<number>): Promise<ReadonlyArray<number>> => {
  const [topic] = await bounded(
    "listing offsets",
    run.admin.listOffsets({
      topics: [
        {
          name: run.config.topic,
          partitions: shards.map((shard) => ({ partitionIndex: shard, timestamp: ListOffsetTimestamps.LATEST })),
        },
      ],
      isolationLevel: FetchIsolationLevels.READ_UNCOMMITTED,
    }),
  )
  return shards.map((shard) => {
    const partition = topic?.partitions.find((item) => item.partitionIndex === shard)
    if (partition === undefined) throw new Error(`no offset for partition ${shard}`)
    return Number(partition.offset)
  })
}

const messagesOf = (run: Run, shard: number, records: ReadonlyArray<JournalRecord>): Array<JournalMessage> =>
  records.map((record) => journalMessage(run.config.topic, shard, record))

// --- Checks -------------------------------------------------------------------------------------------

/** What `createTopic` in kafka-clients.ts sets on a single-replica topic. */
const expectedTopicConfigs: Readonly<Record<string, string>> = {
  "retention.ms": "-1",
  "retention.bytes": "-1",
  "cleanup.policy": "delete",
  "min.insync.replicas": "1",
  "unclean.leader.election.enable": "false",
}

const checkTopicCreated = async (run: Run): Promise<string> => {
  const { admin, config } = run
  if ((await bounded("listing topics", admin.listTopics())).includes(config.topic)) {
    throw new Error(`topic ${config.topic} existed before the layer was built`)
  }
  const window = requestWindow()
  await withJournal(run, "building layerKafka", Effect.void)
  const metadata = await bounded("metadata", admin.metadata({ topics: [config.topic], forceUpdate: true }))
  const topic = metadata.topics.get(config.topic)
  expectEqual("partitions", topic?.partitionsCount, config.shardCount)
  if (topic?.partitions.some((partition) => partition.leader < 0)) throw new Error("a partition has no leader")
  const [description] = await bounded(
    "describing the topic's configs",
    admin.describeConfigs({
      resources: [
        {
          resourceType: ConfigResourceTypes.TOPIC,
          resourceName: config.topic,
          configurationKeys: Object.keys(expectedTopicConfigs),
        },
      ],
    }),
  )
  const found = new Map((description?.configs ?? []).map((item) => [item.name, item.value]))
  const configs = Object.fromEntries(Object.keys(expectedTopicConfigs).map((name) => [name, found.get(name)]))
  expectEqual("topic configs", configs, expectedTopicConfigs)
  return `${config.shardCount} partitions, each with a leader; ${JSON.stringify(configs)}; the layer sent ${summarize(window.sent())}`
}

const checkExistingTopic = async (run: Run): Promise<string> => {
  await withJournal(run, "building layerKafka on the existing topic", Effect.void)
  const shardCount = run.config.shardCount + 1
  const refused = await bounded(
    "building layerKafka with one shard more than partitions",
    Effect.runPromise(Effect.result(Effect.scoped(Layer.build(layerKafka({ ...run.config, shardCount }))))),
  )
  if (refused._tag === "Success")
    throw new Error(`a topic of ${run.config.shardCount} partitions served ${shardCount} shards`)
  if (!refused.failure.message.includes(`has ${run.config.shardCount} partitions`)) {
    throw new Error(`refused, but not for its partition count: ${refused.failure.message}`)
  }
  return `accepted for ${run.config.shardCount} shards; for ${shardCount}: ${refused.failure._tag}: ${refused.failure.message}`
}

const checkMultiShardAppend = async (run: Run): Promise<string> => {
  const [start0 = -1, start1 = -1] = await highWatermarks(run, [0, 1])
  const records = [recordOf("two-0a"), recordOf("two-0b"), recordOf("two-1a")] as const
  const written = await withJournal(
    run,
    "append and replay",
    Effect.gen(function* () {
      const journal = yield* Journal
      const writer = yield* journal.openWriter([0, 1])
      const window = requestWindow()
      const nextOffsets = yield* writer.appendShards([
        { shard: 0, records: [records[0], records[1]] },
        { shard: 1, records: [records[2]] },
      ])
      const appendRequests = window.sent()
      return {
        nextOffsets,
        appendRequests,
        shard0: yield* replayOf(journal, 0, start0),
        shard1: yield* replayOf(journal, 1, start1),
      }
    }),
  )
  expectEqual("next offsets", written.nextOffsets, [start0 + 2, start1 + 1])
  expectEqual("EndTxn requests of the append (one transaction)", countOf(written.appendRequests, "EndTxn"), 1)
  const expected0 = [`${start0}:two-0a`, `${start0 + 1}:two-0b`]
  const expected1 = [`${start1}:two-1a`]
  expectReplay("replay by the writing process, shard 0", written.shard0, expected0, start0 + 2)
  expectReplay("replay by the writing process, shard 1", written.shard1, expected1, start1 + 1)
  const [shard0, shard1] = await replayByNewLayer(run, start0, start1)
  expectReplay("replay by a new layer, shard 0", shard0, expected0, start0 + 2)
  expectReplay("replay by a new layer, shard 1", shard1, expected1, start1 + 1)
  return (
    `next offsets ${JSON.stringify(written.nextOffsets)}; the append sent ${summarize(written.appendRequests)}; ` +
    `${showReplay(0, start0, shard0)}; ${showReplay(1, start1, shard1)} (same in the writing process)`
  )
}

class AbortedOnPurpose extends Error {}

const checkClientAbort = async (run: Run): Promise<string> => {
  const producer = await rawWriter(run)
  const [start0 = -1, start1 = -1] = await highWatermarks(run, [0, 1])
  const aborted = await bounded(
    "the aborted append",
    appendShardsInTransaction(
      producer,
      run.config.topic,
      [
        { shard: 0, messages: messagesOf(run, 0, [recordOf("abort-0a"), recordOf("abort-0b")]) },
        { shard: 1, messages: messagesOf(run, 1, [recordOf("abort-1a")]) },
      ],
      async () => {
        throw new AbortedOnPurpose("aborted by the check before its commit")
      },
    ).then(
      (offsets) => new Error(`the append committed at ${offsets} although its hook threw`),
      (error: unknown) => error,
    ),
  )
  if (!(aborted instanceof AbortedOnPurpose))
    throw new Error(`expected the hook's error, got ${describeKafkaError(aborted)}`)
  const committed = await bounded(
    "the committed append",
    appendShardsInTransaction(producer, run.config.topic, [
      { shard: 0, messages: messagesOf(run, 0, [recordOf("abort-0c")]) },
      { shard: 1, messages: messagesOf(run, 1, [recordOf("abort-1b")]) },
    ]),
  )
  // The aborted records and their abort marker hold offsets, so the committed records come after them:
  // this shows the aborted ones were written, and a replay that skips them filtered them out.
  expectEqual("next offsets of the committed append", committed, [start0 + 4, start1 + 3])
  const [shard0, shard1] = await replayByNewLayer(run, start0, start1)
  expectReplay("shard 0", shard0, [`${start0 + 3}:abort-0c`], start0 + 4)
  expectReplay("shard 1", shard1, [`${start1 + 2}:abort-1b`], start1 + 3)
  return `aborted 2+1 records over shards 0 and 1, then committed 1+1: ${showReplay(0, start0, shard0)}; ${showReplay(1, start1, shard1)}`
}

/** Two layers (two nodes) over one topic: the second node's writer of the same shards fences the first's. */
const checkSecondWriterFences = async (run: Run): Promise<string> => {
  const observed = await bounded(
    "two writers of shards 0 and 1",
    Effect.runPromise(
      Effect.scoped(
        Effect.gen(function* () {
          const first = Context.get(yield* Layer.build(layerKafka(run.config)), Journal)
          const second = Context.get(yield* Layer.build(layerKafka(run.config)), Journal)
          const old = yield* first.openWriter([0, 1])
          const [start0 = -1, start1 = -1] = yield* Effect.promise(() => highWatermarks(run, [0, 1]))
          const acknowledged = yield* old.appendShards([{ shard: 0, records: [recordOf("fence-acked")] }])
          const successor = yield* second.openWriter([0, 1])
          const window = requestWindow()
          const fenced = yield* Effect.result(
            old.appendShards([
              { shard: 0, records: [recordOf("fence-refused-0")] },
              { shard: 1, records: [recordOf("fence-refused-1")] },
            ]),
          )
          const refusedRequests = window.refused()
          const again = yield* Effect.result(old.appendShards([{ shard: 0, records: [recordOf("fence-again")] }]))
          const successorAcknowledged = yield* successor.appendShards([{ shard: 0, records: [recordOf("fence-new")] }])
          const shard0 = yield* replayOf(second, 0, start0)
          const shard1 = yield* replayOf(second, 1, start1)
          return { start0, start1, acknowledged, fenced, refusedRequests, again, successorAcknowledged, shard0, shard1 }
        }),
      ),
    ),
    checkTimeoutMs,
  )
  const { start0, start1, fenced, again } = observed
  expectEqual("the first writer's acknowledged append", observed.acknowledged, [start0 + 1])
  if (fenced._tag === "Success") throw new Error(`the fenced writer's append was acknowledged at ${fenced.success}`)
  expectEqual("the fenced append's failure", fenced.failure._tag, "JournalFenced")
  if (again._tag === "Success") throw new Error("the fenced writer's next append was acknowledged")
  expectEqual("the fenced writer's next append", again.failure._tag, "JournalFenced")
  const [successorNext = -1] = observed.successorAcknowledged
  expectReplay("shard 0", observed.shard0, [`${start0}:fence-acked`, `${successorNext - 1}:fence-new`], successorNext)
  expectReplay("shard 1", observed.shard1, [], start1)
  return (
    `first writer's append: ${fenced.failure._tag}, the broker answered ${summarize(observed.refusedRequests)}; ` +
    `its next append: ${again.failure._tag}; ${showReplay(0, start0, observed.shard0)}; ${showReplay(1, start1, observed.shard1)}`
  )
}

const deferred = () => {
  let resolve = () => {}
  const promise = new Promise<void>((settle) => {
    resolve = settle
  })
  return { promise, resolve: () => resolve() }
}

type CommitOutcome =
  | { readonly committed: true; readonly offsets: ReadonlyArray<number> }
  | { readonly committed: false; readonly error: unknown }

/**
 * The stale-owner race: a writer has sent its records and waits before its commit (a GC pause, a
 * partition) while a new owner opens. The new owner's open aborts the open transaction; the old
 * writer's commit must be refused and its records never become visible.
 */
const checkPausedWriter = async (run: Run): Promise<string> => {
  const producer = await rawWriter(run)
  const [start0 = -1, start1 = -1] = await highWatermarks(run, [0, 1])
  const sent = deferred()
  const release = deferred()
  let sentAtMs = 0
  const outcome: Promise<CommitOutcome> = appendShardsInTransaction(
    producer,
    run.config.topic,
    [
      { shard: 0, messages: messagesOf(run, 0, [recordOf("paused-0")]) },
      { shard: 1, messages: messagesOf(run, 1, [recordOf("paused-1")]) },
    ],
    async () => {
      sentAtMs = Date.now()
      sent.resolve()
      await bounded("the paused writer's wait", release.promise)
    },
  ).then(
    (offsets) => ({ committed: true, offsets }),
    (error: unknown) => ({ committed: false, error }),
  )
  try {
    const reached = await bounded(
      "the paused writer's send",
      Promise.race([sent.promise.then(() => "sent" as const), outcome]),
    )
    if (reached !== "sent") throw new Error(`the paused writer ended before its commit: ${JSON.stringify(reached)}`)
    // Its records are in the log, uncommitted: a replay that does not show them filtered them out.
    expectEqual("high watermarks while paused", await highWatermarks(run, [0, 1]), [start0 + 1, start1 + 1])
    const observed = await withJournal(
      run,
      "a new writer while the old one is paused",
      Effect.gen(function* () {
        const journal = yield* Journal
        const writer = yield* journal.openWriter([0, 1])
        const pausedMs = Date.now() - sentAtMs
        const window = yield* Effect.sync(requestWindow)
        yield* Effect.sync(release.resolve)
        const commit = yield* Effect.promise(() => bounded("the paused writer's commit", outcome))
        const refusedCommit = window.refused()
        const acknowledged = yield* writer.appendShards([{ shard: 0, records: [recordOf("paused-successor")] }])
        return {
          pausedMs,
          commit,
          refusedCommit,
          acknowledged,
          shard0: yield* replayOf(journal, 0, start0),
          shard1: yield* replayOf(journal, 1, start1),
        }
      }),
    )
    const { commit, pausedMs } = observed
    if (commit.committed) throw new Error(`the paused writer committed at ${commit.offsets} after a new writer opened`)
    // A transaction older than its timeout is aborted by the broker itself, which would pass for the wrong reason.
    if (pausedMs >= requestTimeoutMs)
      throw new Error(`paused ${pausedMs} ms, past the transaction timeout: inconclusive`)
    if (!isFencingError(commit.error))
      throw new Error(`refused, but not as fenced: ${describeKafkaError(commit.error)}`)
    // The paused records and their abort marker hold two offsets before the successor's record.
    expectEqual("the successor's acknowledged append", observed.acknowledged, [start0 + 3])
    expectReplay("shard 0", observed.shard0, [`${start0 + 2}:paused-successor`], start0 + 3)
    expectReplay("shard 1", observed.shard1, [], start1)
    return (
      `paused ${pausedMs} ms; its commit failed as fenced (the broker answered ${summarize(observed.refusedCommit)}); ` +
      `${showReplay(0, start0, observed.shard0)}; ${showReplay(1, start1, observed.shard1)}`
    )
  } finally {
    release.resolve()
  }
}

const checkEmptyTail = async (run: Run): Promise<string> => {
  const [end0 = -1, end2 = -1] = await highWatermarks(run, [0, 2])
  expectEqual("shard 2's high watermark (never written)", end2, 0)
  const replays = await withJournal(
    run,
    "replays of empty tails",
    Effect.gen(function* () {
      const journal = yield* Journal
      const untouched = yield* replayOf(journal, 2, 0)
      const atEnd = yield* replayOf(journal, 0, end0)
      // A replay's nextOffset is after the last record, which is the last commit marker's offset.
      const all = yield* replayOf(journal, 0, 0)
      const atMarker = yield* replayOf(journal, 0, all.nextOffset)
      return { untouched, atEnd, all, atMarker }
    }),
  )
  expectReplay("shard 2 from 0", replays.untouched, [], 0)
  expectReplay(`shard 0 from its end ${end0}`, replays.atEnd, [], end0)
  expectReplay(`shard 0 from ${replays.all.nextOffset}`, replays.atMarker, [], replays.all.nextOffset)
  for (const replay of [replays.untouched, replays.atEnd, replays.atMarker])
    expectEqual("Fetch requests", replay.fetches, 1)
  return (
    `untouched shard 2 from 0: next 0; shard 0 from its end ${end0}: next ${end0}; ` +
    `from its last commit marker ${replays.all.nextOffset}: next ${replays.all.nextOffset}; one Fetch each`
  )
}

const checks: ReadonlyArray<{ readonly name: string; readonly run: (run: Run) => Promise<string> }> = [
  { name: "layerKafka creates the journal topic, one partition per shard", run: checkTopicCreated },
  { name: "layerKafka accepts the existing topic, refuses one with too few partitions", run: checkExistingTopic },
  { name: "append over shards 0 and 1 in one transaction, replayed exactly", run: checkMultiShardAppend },
  { name: "transaction aborted by the client is invisible, the next commit visible", run: checkClientAbort },
  { name: "second writer of the same shards fences the first", run: checkSecondWriterFences },
  { name: "writer paused between send and commit is refused at commit", run: checkPausedWriter },
  { name: "replay of an empty tail", run: checkEmptyTail },
]

const runChecks = async (brokers: string): Promise<ReadonlyArray<CheckResult>> => {
  const suffix = Date.now().toString(36)
  const config: KafkaJournalConfig = {
    brokers: [brokers],
    topic: `kafka4-check-${suffix}`,
    // Shards 0 and 1 are written; shard 2 stays empty for the empty-tail check.
    shardCount: 3,
    replicationFactor: 1,
    requestTimeoutMs,
    clientId: "kafka4-check",
    transactionalIdPrefix: `kafka4-check-${suffix}`,
  }
  const admin = makeAdmin(config)
  scriptClients.add(admin.instanceId)
  const run: Run = { config, admin, producers: [] }
  const results: Array<CheckResult> = []
  try {
    for (const check of checks) {
      try {
        results.push({
          name: check.name,
          passed: true,
          detail: await bounded(check.name, check.run(run), checkTimeoutMs),
        })
      } catch (error) {
        results.push({ name: check.name, passed: false, detail: describeKafkaError(error) })
      }
    }
  } finally {
    await Promise.allSettled(
      run.producers.map((producer) => Effect.runPromise(closeQuietly(producer, requestTimeoutMs))),
    )
    await bounded("deleting the topic", admin.deleteTopics({ topics: [config.topic] })).catch(() => {})
    await Effect.runPromise(closeQuietly(admin, requestTimeoutMs))
  }
  return results
}

// --- Protocol versions --------------------------------------------------------------------------------

/**
 * The versions of an API this client implements: the package exports one namespace per API version
 * (`produceV11`, `fetchV17`, ...), which is also the table the client picks from (base.js `kGetApi`).
 */
const implementedVersions = (api: string): ReadonlyArray<number> => {
  const prefix = `${api.charAt(0).toLowerCase()}${api.slice(1)}V`
  return Object.keys(platformatic)
    .filter((name) => name.startsWith(prefix) && /^\d+$/.test(name.slice(prefix.length)))
    .map((name) => Number(name.slice(prefix.length)))
    .sort((a, b) => a - b)
}

const rangeOf = (versions: ReadonlyArray<number>): string =>
  versions.length <= 1 ? versions.join("") || "-" : `${versions[0]}-${versions[versions.length - 1]}`

interface ProtocolReport {
  readonly rows: ReadonlyArray<string>
  readonly fetchVersion: number
  /** APIs the client implements of which the broker accepts no version the client has. */
  readonly unusable: ReadonlyArray<string>
}

/** The broker's ranges (its ApiVersions answer), beside what the client implements and what the adapter sent. */
const protocolReport = async (brokers: string): Promise<ProtocolReport> => {
  const admin = makeAdmin({
    brokers: [brokers],
    topic: "-",
    shardCount: 1,
    replicationFactor: 1,
    requestTimeoutMs,
    clientId: "kafka4-check-versions",
    transactionalIdPrefix: "-",
  })
  scriptClients.add(admin.instanceId)
  let brokerApis: Awaited<ReturnType<Admin["listApis"]>>
  try {
    brokerApis = await bounded("listApis", admin.listApis())
  } finally {
    await Effect.runPromise(closeQuietly(admin, requestTimeoutMs))
  }
  const brokerRange = (apiKey: number) => brokerApis.find((api) => api.apiKey === apiKey)
  const sentKeys = [...new Set(sentRequests.map((request) => request.apiKey))].sort((a, b) => a - b)
  const rows = sentKeys.map((apiKey) => {
    const range = brokerRange(apiKey)
    const versions = [...new Set(sentRequests.filter((item) => item.apiKey === apiKey).map((item) => item.apiVersion))]
    return `| ${apiName(apiKey)} | ${rangeOf(implementedVersions(apiName(apiKey)))} | ${range === undefined ? "absent" : `${range.minVersion}-${range.maxVersion}`} | ${versions.sort((a, b) => a - b).join(", ")} |`
  })
  const unusable = Object.entries(protocolAPIsByName).flatMap(([api, apiKey]) => {
    const implemented = implementedVersions(api)
    const range = brokerRange(apiKey)
    if (implemented.length === 0 || range === undefined) return []
    return implemented.some((version) => version >= range.minVersion && version <= range.maxVersion) ? [] : [api]
  })
  return { rows, fetchVersion: chooseFetchApi([...brokerApis]).version, unusable }
}

const printProtocolReport = (report: ProtocolReport): void => {
  console.log("\n| API | client implements | broker accepts | adapter sent |")
  console.log("| --- | --- | --- | --- |")
  for (const row of report.rows) console.log(row)
  console.log(`\nFetch version the replay chose (chooseFetchApi): ${report.fetchVersion}`)
  console.log(
    `APIs the client implements but this broker accepts none of the client's versions: ${report.unusable.join(", ") || "none"}`,
  )
}

const printTable = (title: string, results: ReadonlyArray<CheckResult>): void => {
  console.log(`\n### ${title}\n`)
  console.log("| check | result | detail |")
  console.log("| --- | --- | --- |")
  for (const result of results) {
    console.log(
      `| ${result.name} | ${result.passed ? "pass" : "FAIL"} | ${result.detail.replaceAll("|", "\\|").replaceAll("\n", " ")} |`,
    )
  }
}

const clientVersion = (): string => {
  const entry = createRequire(import.meta.url).resolve("@platformatic/kafka")
  const manifest = JSON.parse(readFileSync(join(dirname(entry), "..", "package.json"), "utf8")) as { version: string }
  return manifest.version
}

const checkBrokerOptions = (version: string): KafkaServerOptions => ({
  name: "kafka4-check",
  version,
  port: 29092,
  controllerPort: 29093,
  heapMaxMb: 512,
  installDirectory: join(stackDirectory(), `kafka-${version}`),
  dataDirectory: join(stackDirectory(), "kafka4-check-data"),
  logFile: join(logsDirectory(), "kafka4-check.log"),
  readyDeadlineMs: 180_000,
})

const checkBroker = async (brokers: string, title: string): Promise<number> => {
  const startedAt = Date.now()
  const results = await runChecks(brokers)
  printTable(`@platformatic/kafka ${clientVersion()} (the journal adapter) against ${title}`, results)
  printProtocolReport(await protocolReport(brokers))
  console.log(`\nChecks took ${Date.now() - startedAt} ms.`)
  return results.every((result) => result.passed) ? 0 : 1
}

const main = async (): Promise<number> => {
  const { values } = parseArgs({
    options: { broker: { type: "string" }, version: { type: "string", default: "4.1.1" } },
  })
  if (values.broker !== undefined) return checkBroker(values.broker, `the running broker at ${values.broker}`)
  const options = checkBrokerOptions(values.version)
  await stopKafka(options)
  // A fresh cluster every run, so results never depend on what an earlier run left behind.
  rmSync(options.dataDirectory, { recursive: true, force: true })
  const startedAt = Date.now()
  try {
    await startKafka(options)
    console.log(`Kafka ${values.version} answered on 127.0.0.1:${options.port} after ${Date.now() - startedAt} ms`)
    return await checkBroker(`127.0.0.1:${options.port}`, `Apache Kafka ${values.version} (KRaft, single node)`)
  } finally {
    await stopKafka(options)
  }
}

process.exitCode = await main().catch((error: unknown) => {
  console.error(describeKafkaError(error))
  return 2
})
// A check that timed out may leave a client's socket open; the exit code is set, so leave within a bound.
setTimeout(() => process.exit(), 5_000).unref()
