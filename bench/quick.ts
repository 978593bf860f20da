/**
 * Quick benchmark of WebSocket transfers against a real node process, per mode: a saturation run
 * (pipelined, bounded in flight) for throughput, then an open-loop run at a fixed offered rate
 * whose latencies are measured from each request's intended send time, so queueing delay is not
 * hidden. Prints throughput and p50/p99/p99.9 with the machine. Usage:
 *   npm run bench:quick [-- --modes embedded,aws --seconds 5 --rate 2000]
 * aws mode starts the local stack (Kafka, the DynamoDB API server, Redis) if it is not up.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { parseArgs } from "node:util"
import * as hdr from "hdr-histogram-js"
import { stackUp } from "../scripts/local-stack/stack.ts"
import { startNodeProcess } from "../test/support/node-process.ts"
import { WsClient } from "../test/support/ws-client.ts"
import { describeMachine } from "./support/machine.ts"

const { values } = parseArgs({
  options: {
    modes: { type: "string", default: "embedded,aws" },
    seconds: { type: "string", default: "5" },
    rate: { type: "string", default: "2000" },
    accounts: { type: "string", default: "1000" },
    connections: { type: "string", default: "4" },
    "in-flight": { type: "string", default: "64" },
  },
})
const seconds = Number(values.seconds)
const offeredRate = Number(values.rate)
const accountCount = Number(values.accounts)
const connectionCount = Number(values.connections)
const inFlightPerConnection = Number(values["in-flight"])
const apiKey = "bench-key-0001"

const newHistogram = () =>
  hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 })

interface RunResult {
  readonly completed: number
  readonly errors: Map<string, number>
  readonly elapsedMs: number
  readonly latencyMicros: hdr.Histogram
}

const randomTransfer = (sequence: number) => {
  const from = Math.floor(Math.random() * accountCount)
  let to = Math.floor(Math.random() * (accountCount - 1))
  if (to >= from) to++
  return {
    paymentId: `b-${Date.now()}-${sequence}`,
    from: `acct-${from}`,
    to: `acct-${to}`,
    amount: "0.01",
    currency: "USD",
  }
}

const setUpAccounts = async (client: WsClient) => {
  for (let start = 0; start < accountCount; start += 200) {
    const batch = []
    for (let index = start; index < Math.min(accountCount, start + 200); index++) {
      batch.push(
        client.request("openAccount", { accountId: `acct-${index}`, currency: "USD" }).then(() =>
          client.request("deposit", {
            accountId: `acct-${index}`,
            depositId: `seed-${index}`,
            amount: "1000000.00",
            currency: "USD",
          }),
        ),
      )
    }
    await Promise.all(batch)
  }
}

/** Closed loop: every connection keeps `inFlightPerConnection` transfers outstanding. */
const saturate = async (clients: ReadonlyArray<WsClient>): Promise<RunResult> => {
  const latencyMicros = newHistogram()
  const errors = new Map<string, number>()
  let completed = 0
  let sequence = 0
  const started = performance.now()
  const deadline = started + seconds * 1000
  const worker = async (client: WsClient) => {
    while (performance.now() < deadline) {
      const sentAt = performance.now()
      const answer = await client.request("transfer", randomTransfer(sequence++))
      latencyMicros.recordValue(Math.max(1, Math.round((performance.now() - sentAt) * 1000)))
      if (answer.ok) completed++
      else errors.set(answer.error?.code ?? "?", (errors.get(answer.error?.code ?? "?") ?? 0) + 1)
    }
  }
  await Promise.all(clients.flatMap((client) => Array.from({ length: inFlightPerConnection }, () => worker(client))))
  return { completed, errors, elapsedMs: performance.now() - started, latencyMicros }
}

/** Open loop: requests are due at a fixed rate; latency counts from when each was due. */
const openLoop = async (clients: ReadonlyArray<WsClient>, rate: number): Promise<RunResult> => {
  const latencyMicros = newHistogram()
  const errors = new Map<string, number>()
  let completed = 0
  let sent = 0
  const total = Math.floor(rate * seconds)
  const started = performance.now()
  const outstanding: Array<Promise<void>> = []
  while (sent < total) {
    const now = performance.now()
    const due = Math.min(total, Math.floor(((now - started) / 1000) * rate))
    for (; sent < due; sent++) {
      const intendedAt = started + (sent / rate) * 1000
      const client = clients[sent % clients.length] as WsClient
      outstanding.push(
        client.request("transfer", randomTransfer(sent)).then((answer) => {
          latencyMicros.recordValue(Math.max(1, Math.round((performance.now() - intendedAt) * 1000)))
          if (answer.ok) completed++
          else errors.set(answer.error?.code ?? "?", (errors.get(answer.error?.code ?? "?") ?? 0) + 1)
        }),
      )
    }
    await new Promise((resolve) => setImmediate(resolve))
  }
  await Promise.all(outstanding)
  return { completed, errors, elapsedMs: performance.now() - started, latencyMicros }
}

const report = (mode: string, label: string, result: RunResult) => {
  const ms = (percentile: number) => (result.latencyMicros.getValueAtPercentile(percentile) / 1000).toFixed(2)
  const rate = Math.round((result.completed / result.elapsedMs) * 1000)
  const errors = [...result.errors].map(([code, count]) => `${code}=${count}`).join(" ") || "none"
  console.log(
    `${mode.padEnd(8)} ${label.padEnd(22)} ${String(rate).padStart(7)} transfers/s  p50 ${ms(50)} ms  p99 ${ms(99)} ms  p99.9 ${ms(99.9)} ms  errors: ${errors}`,
  )
}

const runMode = async (mode: string) => {
  const dataDir = mkdtempSync(join(tmpdir(), "bench-quick-"))
  const env: Record<string, string> = {
    MODE: mode,
    DATA_DIR: dataDir,
    TENANTS: `bench:${apiKey}`,
    LOG_LEVEL: "warning",
  }
  if (mode === "aws") {
    const endpoints = await stackUp()
    const unique = `bench${Date.now()}`
    Object.assign(env, {
      KAFKA_BROKERS: endpoints.kafkaBrokers,
      DYNAMODB_ENDPOINT: endpoints.dynamodbEndpoint,
      REDIS_URL: endpoints.redisUrl,
      KAFKA_TOPIC: `${unique}-journal`,
      DYNAMODB_TABLE_PREFIX: unique,
      REDIS_KEY_PREFIX: unique,
    })
  }
  const node = await startNodeProcess(env, 180_000)
  try {
    const clients = await Promise.all(
      Array.from({ length: connectionCount }, () => WsClient.connect(node.port, apiKey)),
    )
    await setUpAccounts(clients[0] as WsClient)
    report(mode, `saturation (${connectionCount}x${inFlightPerConnection})`, await saturate(clients))
    report(mode, `open loop @ ${offeredRate}/s`, await openLoop(clients, offeredRate))
    for (const client of clients) client.close()
  } finally {
    await node.kill("SIGTERM")
    rmSync(dataDir, { recursive: true, force: true })
  }
}

console.log(`machine: ${describeMachine()}`)
console.log(`settings: ${seconds} s per run, ${accountCount} accounts, load generator in its own process`)
for (const mode of values.modes.split(",")) await runMode(mode.trim())
