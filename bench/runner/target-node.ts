/**
 * The system under test: a real node process (the same entry point as `npm start`) in the mode a
 * benchmark asks for, on loopback, with its own data directory (embedded) or its own topic, tables
 * and key prefix on the local stack (aws), and optionally under the V8 CPU profiler.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { stackUp } from "../../scripts/local-stack/stack.ts"
import { type NodeProcess, startNodeProcess } from "../../test/support/node-process.ts"
import { clockTicksPerSecond, cpuSecondsOf, type NodeSample, nodeSampleOf, parseProcStat } from "./node-budget.ts"

export type BenchMode = "embedded" | "aws"

export const benchApiKey = "bench-key-0001"

/** The node's TENANTS: the one tenant every benchmark runs as. */
export const benchTenants = `bench:${benchApiKey}`

export interface TargetNode {
  readonly port: number
  readonly apiKey: string
  /** The node's gauges from `GET /metrics`, by name. */
  readonly metrics: () => Promise<Record<string, number>>
  /**
   * Waits until the snapshot store has every entity version (seeding leaves a backlog that would
   * otherwise be measured as the first rate's latency), up to `timeoutMs`.
   */
  readonly snapshotsCaughtUp: (timeoutMs: number) => Promise<boolean>
  /** Resident set size of the node process now, from /proc. */
  readonly residentBytes: () => number
  /** CPU (all threads) and RSS from /proc, then the counters and heap from `/metrics`. */
  readonly sample: () => Promise<NodeSample>
  /** Stops the node (SIGTERM, so a CPU profile is written) and removes its data directory. */
  readonly stop: () => Promise<void>
}

export const residentBytesOf = (pid: number): number => {
  const status = readFileSync(`/proc/${pid}/status`, "utf8")
  const kilobytes = /VmRSS:\s+(\d+) kB/.exec(status)?.[1]
  return kilobytes === undefined ? 0 : Number(kilobytes) * 1024
}

/** User + system CPU of every thread of the process, from /proc/<pid>/stat. */
export const cpuSecondsOfProcess = (pid: number): number =>
  cpuSecondsOf(parseProcStat(readFileSync(`/proc/${pid}/stat`, "utf8")), clockTicksPerSecond())

const readMetrics = async (port: number): Promise<Record<string, number>> => {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
  const gauges: Record<string, number> = {}
  for (const line of text.split("\n")) {
    const [name, value] = line.split(" ")
    if (name !== undefined && value !== undefined && !name.startsWith("#")) gauges[name] = Number(value)
  }
  return gauges
}

/**
 * Node settings a benchmark run adds to the node's environment: `BENCH_NODE_ENV`, comma-separated
 * `NAME=value` pairs (e.g. `BENCH_NODE_ENV=RECENT_ENTRIES_MAX=16384,SNAPSHOT_INTERVAL_MS=2000`), so a
 * configuration can be measured without editing the runner.
 */
export const nodeSettingsFromEnvironment = (text = process.env.BENCH_NODE_ENV ?? ""): Record<string, string> => {
  const settings: Record<string, string> = {}
  for (const pair of text.split(",").map((item) => item.trim())) {
    if (pair === "") continue
    const separator = pair.indexOf("=")
    if (separator <= 0) throw new Error(`BENCH_NODE_ENV: "${pair}" is not NAME=value`)
    settings[pair.slice(0, separator)] = pair.slice(separator + 1)
  }
  return settings
}

/**
 * Where an aws-mode node keeps its state on the local stack (started if needed): the journal topic,
 * the tables and the key prefix all named `name`, so runs and clusters never share state.
 */
export const awsStorageEnvironmentOf = async (name: string): Promise<Record<string, string>> => {
  const endpoints = await stackUp()
  return {
    KAFKA_BROKERS: endpoints.kafkaBrokers,
    DYNAMODB_ENDPOINT: endpoints.dynamodbEndpoint,
    REDIS_URL: endpoints.redisUrl,
    KAFKA_TOPIC: `${name}-journal`,
    DYNAMODB_TABLE_PREFIX: name,
    REDIS_KEY_PREFIX: name,
  }
}

/** The measuring view of a started node process; `stop` ends it with `signal` and removes `dataDir`. */
export const targetNodeOf = (node: NodeProcess, dataDir: string): TargetNode => {
  const pid = node.child.pid ?? 0
  const metrics = () => readMetrics(node.port)
  return {
    port: node.port,
    apiKey: benchApiKey,
    metrics,
    snapshotsCaughtUp: async (timeoutMs) => {
      const deadline = Date.now() + timeoutMs
      while (Date.now() < deadline) {
        if ((await metrics()).payments_snapshot_unsaved_entities === 0) return true
        await new Promise((resolve) => setTimeout(resolve, 250))
      }
      return false
    },
    residentBytes: () => residentBytesOf(pid),
    sample: async () => {
      const atMs = performance.now()
      const cpuSeconds = cpuSecondsOfProcess(pid)
      const residentBytes = residentBytesOf(pid)
      return nodeSampleOf(atMs, cpuSeconds, residentBytes, await metrics())
    },
    stop: async () => {
      await node.kill("SIGTERM")
      rmSync(dataDir, { recursive: true, force: true })
    },
  }
}

export const startTargetNode = async (options: {
  readonly mode: BenchMode
  readonly shardCount: number
  readonly profileDirectory?: string | undefined
}): Promise<TargetNode> => {
  const dataDir = mkdtempSync(join(tmpdir(), "bench-node-"))
  const env: Record<string, string> = {
    MODE: options.mode,
    DATA_DIR: dataDir,
    TENANTS: benchTenants,
    SHARD_COUNT: String(options.shardCount),
  }
  if (options.mode === "aws") {
    const unique = `bench${Date.now().toString(36)}`
    Object.assign(env, { NODE_ID: `${unique}-node`, ...(await awsStorageEnvironmentOf(unique)) })
  }
  Object.assign(env, nodeSettingsFromEnvironment())
  const profileArguments =
    options.profileDirectory === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${options.profileDirectory}`]
  const node = await startNodeProcess(env, 180_000, profileArguments)
  return targetNodeOf(node, dataDir)
}
