/**
 * Does kafkajs (the journal's client) work against a Kafka 4.x broker? Kafka 4 removed old protocol
 * versions (KIP-896) and ZooKeeper, so this starts a 4.x KRaft broker beside the stack's (own ports,
 * own directory), runs every broker feature the journal relies on and prints pass/fail with the exact
 * errors, then stops that broker. With `--broker host:port` it checks an already running broker instead
 * (the stack's 3.9 broker must pass everything).
 *
 *   node --import tsx scripts/local-stack/kafka4-check.ts [--version 4.1.1] [--broker 127.0.0.1:19092]
 */
import { rmSync } from "node:fs"
import { createRequire } from "node:module"
import { join } from "node:path"
import { parseArgs } from "node:util"
import { type Admin, Kafka, type logCreator, logLevel, type Producer } from "kafkajs"
import { type KafkaServerOptions, startKafka, stopKafka } from "./kafka.ts"
import { logsDirectory, stackDirectory } from "./process-control.ts"

interface CheckResult {
  readonly name: string
  readonly passed: boolean
  readonly detail: string
}

const checkTimeoutMs = 30_000

/** kafkajs's own error log lines, kept (bounded) so a failure shows what the client saw. */
const clientErrors: Array<string> = []
const clientErrorsMax = 200
const collectErrors: logCreator =
  () =>
  ({ log }) => {
    if (clientErrors.length < clientErrorsMax) clientErrors.push(`${log.message} ${log.error ?? ""}`.trim())
  }

const withTimeout = <A>(work: Promise<A>, what: string): Promise<A> =>
  Promise.race([
    work,
    new Promise<never>((_, fail) =>
      setTimeout(() => fail(new Error(`${what}: no answer in ${checkTimeoutMs} ms`)), checkTimeoutMs).unref(),
    ),
  ])

const describeError = (error: unknown): string => {
  if (!(error instanceof Error)) return String(error)
  const type = (error as { type?: unknown }).type
  const cause = (error as { cause?: unknown }).cause
  const causeText = cause instanceof Error ? ` (cause: ${cause.name}: ${cause.message})` : ""
  return `${error.name}${typeof type === "string" ? ` [${type}]` : ""}: ${error.message}${causeText}`
}

/** The checks share one run: topics, a transactional id and the values each step produced. */
interface Run {
  readonly kafka: Kafka
  readonly admin: Admin
  readonly topic: string
  readonly transactionalTopic: string
  readonly transactionalId: string
  readonly opened: Array<Producer>
}

const producer = async (run: Run, config: Parameters<Kafka["producer"]>[0]): Promise<Producer> => {
  const created = run.kafka.producer(config)
  run.opened.push(created)
  await created.connect()
  return created
}

const checks: ReadonlyArray<{ readonly name: string; readonly run: (run: Run) => Promise<string> }> = [
  {
    name: "admin describeCluster",
    run: async (run) => {
      const cluster = await run.admin.describeCluster()
      if (cluster.brokers.length !== 1) throw new Error(`expected 1 broker, got ${cluster.brokers.length}`)
      return `broker ${cluster.brokers[0]?.nodeId}, controller ${cluster.controller}`
    },
  },
  {
    name: "admin createTopics",
    run: async (run) => {
      const created = await run.admin.createTopics({
        waitForLeaders: true,
        topics: [
          { topic: run.topic, numPartitions: 2, replicationFactor: 1 },
          { topic: run.transactionalTopic, numPartitions: 1, replicationFactor: 1 },
        ],
      })
      if (!created) throw new Error("createTopics returned false (topics existed)")
      return "2 topics"
    },
  },
  {
    name: "idempotent producer send, acks -1",
    run: async (run) => {
      const idempotent = await producer(run, { idempotent: true, maxInFlightRequests: 1 })
      const metadata = await idempotent.send({ topic: run.topic, acks: -1, messages: [{ value: "one", partition: 0 }] })
      const again = await idempotent.send({ topic: run.topic, acks: -1, messages: [{ value: "two", partition: 0 }] })
      return `offsets ${metadata[0]?.baseOffset}, ${again[0]?.baseOffset}`
    },
  },
  {
    name: "admin fetchTopicOffsets",
    run: async (run) => {
      const offsets = await run.admin.fetchTopicOffsets(run.topic)
      const partitionZero = offsets.find((offset) => offset.partition === 0)
      if (partitionZero?.high !== "2") throw new Error(`expected high watermark 2, got ${JSON.stringify(offsets)}`)
      return `partition 0 low ${partitionZero.low} high ${partitionZero.high}`
    },
  },
  {
    name: "transactional send + commit",
    run: async (run) => {
      const transactional = await producer(run, {
        transactionalId: run.transactionalId,
        idempotent: true,
        maxInFlightRequests: 1,
      })
      const transaction = await transactional.transaction()
      await transaction.send({ topic: run.transactionalTopic, acks: -1, messages: [{ value: "committed-1" }] })
      await transaction.commit()
      return "committed"
    },
  },
  {
    name: "transactional send + abort",
    run: async (run) => {
      const transactional = run.opened.at(-1)
      if (transactional === undefined) throw new Error("no transactional producer (the commit check failed)")
      const aborted = await transactional.transaction()
      await aborted.send({ topic: run.transactionalTopic, acks: -1, messages: [{ value: "aborted-1" }] })
      await aborted.abort()
      const committed = await transactional.transaction()
      await committed.send({ topic: run.transactionalTopic, acks: -1, messages: [{ value: "committed-2" }] })
      await committed.commit()
      return "aborted one, committed another after it"
    },
  },
  { name: "same transactionalId fences the first producer", run: (run) => checkFencing(run) },
  { name: "read_committed consumer skips aborted records", run: (run) => checkReadCommitted(run) },
]

/**
 * A second producer with the same transactional id bumps the epoch; the first one's next send or commit
 * must fail. kafkajs sends the transactional InitProducerId lazily, at a producer's first
 * `transaction()` (connect() alone does not fence anyone), so the successor opens and ends an empty one.
 */
const checkFencing = async (run: Run): Promise<string> => {
  const transactionalId = `${run.transactionalId}-fence`
  const config = { transactionalId, idempotent: true, maxInFlightRequests: 1 }
  const first = await producer(run, config)
  const warmup = await first.transaction()
  await warmup.send({ topic: run.transactionalTopic, acks: -1, messages: [{ value: "fence-warmup" }] })
  await warmup.commit()
  const successor = await producer(run, config)
  const fencing = await successor.transaction()
  // No partitions were added, so this ends the empty transaction without a request to the broker.
  await fencing.abort()
  try {
    const zombie = await first.transaction()
    await zombie.send({ topic: run.transactionalTopic, acks: -1, messages: [{ value: "zombie" }] })
    await zombie.commit()
  } catch (error) {
    return `first producer refused: ${describeError(error)}`
  }
  throw new Error("the fenced producer's send and commit both succeeded")
}

/** Reads the transactional topic from the beginning until the two last committed values have been seen. */
const readTransactionalTopic = async (run: Run, readUncommitted: boolean): Promise<ReadonlyArray<string>> => {
  const isolation = readUncommitted ? "uncommitted" : "committed"
  const consumer = run.kafka.consumer({ groupId: `${run.transactionalId}-${isolation}`, readUncommitted })
  await consumer.connect()
  try {
    await consumer.subscribe({ topic: run.transactionalTopic, fromBeginning: true })
    const seen: Array<string> = []
    await new Promise<void>((resolve) => {
      void consumer.run({
        eachMessage: async ({ message }) => {
          seen.push(message.value?.toString() ?? "")
          if (seen.includes("committed-2") && seen.includes("fence-warmup")) resolve()
        },
      })
    })
    return seen
  } finally {
    await consumer.disconnect()
  }
}

/** The aborted record is in the log (a read_uncommitted reader sees it); a read_committed reader must not. */
const checkReadCommitted = async (run: Run): Promise<string> => {
  const uncommitted = await readTransactionalTopic(run, true)
  if (!uncommitted.includes("aborted-1"))
    throw new Error(`read_uncommitted did not see the aborted record: ${uncommitted}`)
  const committed = await readTransactionalTopic(run, false)
  if (committed.includes("aborted-1") || committed.includes("zombie")) {
    throw new Error(`read_committed saw uncommitted records: ${committed.join(", ")}`)
  }
  return `read_committed saw ${committed.join(", ")}; read_uncommitted also saw aborted-1`
}

const runChecks = async (brokers: string): Promise<ReadonlyArray<CheckResult>> => {
  const kafka = new Kafka({
    clientId: "kafka4-check",
    brokers: [brokers],
    connectionTimeout: 3_000,
    requestTimeout: 10_000,
    retry: { retries: 3 },
    logLevel: logLevel.ERROR,
    logCreator: collectErrors,
  })
  const suffix = Date.now().toString(36)
  const admin = kafka.admin()
  const run: Run = {
    kafka,
    admin,
    topic: `check-plain-${suffix}`,
    transactionalTopic: `check-transactional-${suffix}`,
    transactionalId: `check-${suffix}`,
    opened: [],
  }
  const results: Array<CheckResult> = []
  try {
    await withTimeout(admin.connect(), "admin connect")
    for (const check of checks) {
      const errorsBefore = clientErrors.length
      try {
        results.push({ name: check.name, passed: true, detail: await withTimeout(check.run(run), check.name) })
      } catch (error) {
        const logged = clientErrors.slice(errorsBefore, errorsBefore + 3).join(" | ")
        results.push({
          name: check.name,
          passed: false,
          detail: `${describeError(error)}${logged ? ` — client log: ${logged}` : ""}`,
        })
      }
    }
  } finally {
    await Promise.allSettled(run.opened.map((opened) => opened.disconnect()))
    await admin.deleteTopics({ topics: [run.topic, run.transactionalTopic] }).catch(() => {})
    await admin.disconnect().catch(() => {})
  }
  return results
}

interface VersionRange {
  readonly minVersion: number
  readonly maxVersion: number
}

interface ProtocolRow {
  readonly api: string
  readonly kafkajs: string
  readonly broker: string
  readonly chosen: string
  readonly usable: boolean
}

/**
 * Which version of each API kafkajs would send. kafkajs picks min(its newest, the broker's newest) and
 * never compares with the broker's oldest, so an API whose removed versions are all kafkajs knows
 * would be sent anyway and refused: this table shows whether any API the client implements is in that
 * case. It reads kafkajs internals (the request table and the seed broker's ApiVersions answer), which
 * is acceptable for a diagnostic script and nothing else.
 */
const protocolVersions = async (brokers: string): Promise<ReadonlyArray<ProtocolRow>> => {
  const require = createRequire(import.meta.url)
  const { requests } = require("kafkajs/src/protocol/requests/index.js") as {
    requests: Record<string, { versions?: ReadonlyArray<string | number> } | undefined>
  }
  const apiKeys = require("kafkajs/src/protocol/requests/apiKeys.js") as Record<string, number>
  const kafka = new Kafka({ clientId: "kafka4-check-versions", brokers: [brokers], logLevel: logLevel.NOTHING })
  const createCluster = Object.getOwnPropertySymbols(kafka).find(
    (symbol) => symbol.description === "private:Kafka:createCluster",
  )
  if (createCluster === undefined) throw new Error("kafkajs internals changed: no createCluster symbol")
  const cluster = (kafka as unknown as Record<symbol, (options: object) => KafkajsCluster>)[createCluster]?.({})
  if (cluster === undefined) throw new Error("kafkajs internals changed: createCluster is not a function")
  await cluster.connect()
  try {
    const brokerVersions = cluster.brokerPool.seedBroker.versions
    return Object.entries(apiKeys).flatMap(([api, key]) => {
      const implemented = (requests[api]?.versions ?? []).map(Number)
      if (implemented.length === 0) return []
      const newest = Math.max(...implemented)
      const range = brokerVersions[key]
      const chosen = range === undefined ? undefined : Math.min(newest, range.maxVersion)
      return [
        {
          api,
          kafkajs: `${Math.min(...implemented)}-${newest}`,
          broker: range === undefined ? "absent" : `${range.minVersion}-${range.maxVersion}`,
          chosen: chosen === undefined ? "-" : String(chosen),
          usable: range !== undefined && chosen !== undefined && chosen >= range.minVersion,
        },
      ]
    })
  } finally {
    await cluster.disconnect()
  }
}

interface KafkajsCluster {
  readonly connect: () => Promise<void>
  readonly disconnect: () => Promise<void>
  readonly brokerPool: { readonly seedBroker: { readonly versions: Record<number, VersionRange | undefined> } }
}

const printProtocolTable = (rows: ReadonlyArray<ProtocolRow>): void => {
  console.log("\n| API | kafkajs implements | broker accepts | kafkajs sends | usable |")
  console.log("| --- | --- | --- | --- | --- |")
  for (const row of rows) {
    console.log(`| ${row.api} | ${row.kafkajs} | ${row.broker} | ${row.chosen} | ${row.usable ? "yes" : "NO"} |`)
  }
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

const main = async (): Promise<number> => {
  const { values } = parseArgs({
    options: { broker: { type: "string" }, version: { type: "string", default: "4.1.1" } },
  })
  const kafkajsVersion = (createRequire(import.meta.url)("kafkajs/package.json") as { version: string }).version
  if (values.broker !== undefined) {
    const results = await runChecks(values.broker)
    printTable(`kafkajs ${kafkajsVersion} against the running broker at ${values.broker}`, results)
    printProtocolTable(await protocolVersions(values.broker))
    return results.every((result) => result.passed) ? 0 : 1
  }
  const options = checkBrokerOptions(values.version)
  await stopKafka(options)
  // A fresh cluster every run, so results never depend on what an earlier run left behind.
  rmSync(options.dataDirectory, { recursive: true, force: true })
  const startedAt = Date.now()
  try {
    await startKafka(options)
    console.log(`Kafka ${values.version} answered on 127.0.0.1:${options.port} after ${Date.now() - startedAt} ms`)
    const results = await runChecks(`127.0.0.1:${options.port}`)
    printTable(`kafkajs ${kafkajsVersion} against Apache Kafka ${values.version} (KRaft, single node)`, results)
    printProtocolTable(await protocolVersions(`127.0.0.1:${options.port}`))
    return results.every((result) => result.passed) ? 0 : 1
  } finally {
    await stopKafka(options)
  }
}

process.exitCode = await main().catch((error: unknown) => {
  console.error(describeError(error))
  return 2
})
