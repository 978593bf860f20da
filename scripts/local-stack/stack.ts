/**
 * The local stack as one API: `stackUp` makes Kafka, the DynamoDB-API server and Redis answer on
 * loopback (reusing what already runs, starting the rest in parallel), `stackDown` stops what the pid
 * files name, `stackEndpoints` says where the servers are. Ports and sizes come from STACK_* variables
 * whose defaults match the node's own configuration defaults.
 */
import { join } from "node:path"
import { dynamodbAnswers, dynamodbPid, startDynamodb, stopDynamodb } from "./dynamodb.ts"
import { type KafkaServerOptions, kafkaAnswers, kafkaPid, startKafka, stopKafka } from "./kafka.ts"
import {
  integerFromEnvironment,
  logsDirectory,
  type ServerName,
  stackDirectory,
  waitUntilReady,
  withLockFile,
} from "./process-control.ts"
import { redisAnswers, redisPid, startRedis, stopRedis } from "./redis.ts"

export type { ServerName } from "./process-control.ts"

export interface StackEndpoints {
  readonly kafkaBrokers: string
  readonly dynamodbEndpoint: string
  readonly redisUrl: string
}

export interface StackUpResult extends StackEndpoints {
  readonly started: ReadonlyArray<ServerName>
}

const serverNames: ReadonlyArray<ServerName> = ["kafka", "dynamodb", "redis"]

/** The first run resolves Kafka's jars and formats its storage before the wait; only the start counts. */
const kafkaReadyDeadlineMs = 180_000
const readyDeadlineMs = 30_000
/** How long a server whose process lives but does not answer gets before it is restarted. */
const unresponsiveGraceMs = 30_000

const ports = () => ({
  kafka: integerFromEnvironment("STACK_KAFKA_PORT", 19092),
  kafkaController: integerFromEnvironment("STACK_KAFKA_CONTROLLER_PORT", 19093),
  dynamodb: integerFromEnvironment("STACK_DYNAMODB_PORT", 18000),
  redis: integerFromEnvironment("STACK_REDIS_PORT", 16379),
})

export const stackEndpoints = (): StackEndpoints => {
  const port = ports()
  return {
    kafkaBrokers: `127.0.0.1:${port.kafka}`,
    dynamodbEndpoint: `http://127.0.0.1:${port.dynamodb}`,
    redisUrl: `redis://127.0.0.1:${port.redis}`,
  }
}

export const stackKafkaOptions = (): KafkaServerOptions => {
  const version = process.env.STACK_KAFKA_VERSION ?? "3.9.1"
  return {
    name: "kafka",
    version,
    port: ports().kafka,
    controllerPort: ports().kafkaController,
    heapMaxMb: integerFromEnvironment("STACK_KAFKA_HEAP_MAX_MB", 768),
    installDirectory: join(stackDirectory(), `kafka-${version}`),
    dataDirectory: join(stackDirectory(), "kafka-data"),
    logFile: join(logsDirectory(), "kafka.log"),
    readyDeadlineMs: kafkaReadyDeadlineMs,
  }
}

/** What the stack needs to know about one server to reuse, start or stop it. */
interface ServerDriver {
  readonly name: ServerName
  readonly logFile: string
  readonly pid: () => number | undefined
  readonly answers: () => Promise<boolean>
  readonly start: () => Promise<number>
  readonly stop: () => Promise<boolean>
}

const drivers = (log: (line: string) => void): ReadonlyArray<ServerDriver> => {
  const endpoints = stackEndpoints()
  const port = ports()
  return [
    {
      name: "kafka",
      logFile: stackKafkaOptions().logFile,
      pid: () => kafkaPid(stackKafkaOptions()),
      answers: () => kafkaAnswers(endpoints.kafkaBrokers),
      start: () => startKafka(stackKafkaOptions()),
      stop: () => stopKafka({ name: "kafka" }),
    },
    {
      name: "dynamodb",
      logFile: join(logsDirectory(), "dynamodb.log"),
      pid: dynamodbPid,
      answers: () => dynamodbAnswers(endpoints.dynamodbEndpoint),
      start: () =>
        startDynamodb({
          port: port.dynamodb,
          dataDirectory: join(stackDirectory(), "dynamodb"),
          logFile: join(logsDirectory(), "dynamodb.log"),
          readyDeadlineMs,
        }),
      stop: stopDynamodb,
    },
    {
      name: "redis",
      logFile: join(logsDirectory(), "redis.log"),
      pid: redisPid,
      answers: () => redisAnswers(endpoints.redisUrl),
      start: () =>
        startRedis({
          port: port.redis,
          workingDirectory: join(stackDirectory(), "redis"),
          logFile: join(logsDirectory(), "redis.log"),
          readyDeadlineMs,
          log,
        }),
      stop: stopRedis,
    },
  ]
}

const seconds = (sinceMs: number): string => `${((Date.now() - sinceMs) / 1000).toFixed(1)} s`

/** Makes one server answer; resolves true when this call started it. */
const ensureServer = async (driver: ServerDriver, log: (line: string) => void): Promise<boolean> => {
  const startedAt = Date.now()
  const pid = driver.pid()
  if (pid !== undefined) {
    const answering = await waitUntilReady({
      name: driver.name,
      answers: driver.answers,
      deadlineMs: unresponsiveGraceMs,
      pid,
      logFile: driver.logFile,
    }).then(
      () => true,
      () => false,
    )
    if (answering) {
      log(`${driver.name}: already running (pid ${pid}), checked in ${seconds(startedAt)}`)
      return false
    }
    log(`${driver.name}: pid ${pid} does not answer; restarting it`)
    await driver.stop()
  } else if (await driver.answers()) {
    // Something we did not start answers on the port (a stack from another checkout, a CI service).
    log(`${driver.name}: a server without our pid file answers on its port; using it, stack:down will not stop it`)
    return false
  }
  const newPid = await driver.start()
  log(`${driver.name}: started (pid ${newPid}) in ${seconds(startedAt)}`)
  return true
}

export const stackUp = async (options?: { readonly log?: (line: string) => void }): Promise<StackUpResult> => {
  const log = options?.log ?? (() => {})
  const started = await withLockFile("stack-up", kafkaReadyDeadlineMs * 2, async () => {
    const outcomes = await Promise.allSettled(
      drivers(log).map(async (driver) => ({ name: driver.name, started: await ensureServer(driver, log) })),
    )
    const failures = outcomes.flatMap((outcome) => (outcome.status === "rejected" ? [String(outcome.reason)] : []))
    if (failures.length > 0) throw new Error(`local stack did not come up:\n${failures.join("\n")}`)
    return outcomes.flatMap((outcome) =>
      outcome.status === "fulfilled" && outcome.value.started ? [outcome.value.name] : [],
    )
  })
  return { ...stackEndpoints(), started }
}

export const stackDown = async (options?: { readonly only?: ReadonlyArray<ServerName> }): Promise<void> => {
  const only = options?.only ?? serverNames
  await Promise.all(
    drivers(() => {})
      .filter((driver) => only.includes(driver.name))
      .map((driver) => driver.stop()),
  )
}
