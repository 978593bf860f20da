/**
 * Quick benchmark of WebSocket transfers against a real node process, per mode: an open-loop run
 * at a fixed offered rate whose latencies are measured from each request's due time, so queueing
 * delay is not hidden, then a run offered far more than the node can take (its achieved rate is
 * the throughput; 64 in flight per connection). Same generator as `npm run bench`, in processes of
 * its own. Prints throughput and p50/p99/p99.9 with the machine, and what each run cost the node
 * per transfer (CPU of all its threads, journal records and commits). Usage:
 *   npm run bench:quick [-- --modes embedded,aws --seconds 5 --rate 2000 --saturation-rate 30000]
 * aws mode starts the local stack (Kafka, the DynamoDB API server, Redis) if it is not up.
 */
import { parseArgs } from "node:util"
import type { TransferWorkload } from "./load/plan.ts"
import { seedAccounts } from "./load/run-load.ts"
import { type MeasuredRun, runMeasured } from "./runner/measured-run.ts"
import { formatBudget } from "./runner/node-budget.ts"
import { type BenchMode, startTargetNode } from "./runner/target-node.ts"
import { describeMachine } from "./support/machine.ts"

const { values } = parseArgs({
  options: {
    modes: { type: "string", default: "embedded,aws" },
    seconds: { type: "string", default: "5" },
    rate: { type: "string", default: "2000" },
    // Offered rates well beyond what each mode can take on this kind of machine; the achieved rate is the figure.
    "saturation-rate": { type: "string" },
    accounts: { type: "string", default: "1000" },
  },
})
const durationMs = Number(values.seconds) * 1000
const shardCount = 16

const workload: TransferWorkload = {
  kind: "transfers",
  accounts: Number(values.accounts),
  distribution: { kind: "uniform" },
  crossShardOnly: false,
  shardCount,
  currency: "USD",
  amount: "0.01",
}

/** Latency is printed only for the fixed-rate run: offered beyond capacity, it only measures the backlog. */
const report = (mode: string, label: string, { result, budget }: MeasuredRun, withLatency: boolean) => {
  const ms = (value: number) => value.toFixed(2)
  const errors = Object.entries(result.errorsByCode).map(([code, count]) => `${code}=${count}`)
  const latency = withLatency
    ? `p50 ${ms(result.latencyMs.p50)} ms  p99 ${ms(result.latencyMs.p99)} ms  p99.9 ${ms(result.latencyMs.p999)} ms  `
    : ""
  console.log(
    `${mode.padEnd(8)} ${label.padEnd(30)} ${String(Math.round(result.achievedRate)).padStart(7)} transfers/s  ` +
      `${latency}errors: ${errors.join(" ") || "none"}\n${"".padEnd(9)}${formatBudget(budget)}`,
  )
}

const runMode = async (mode: BenchMode) => {
  const node = await startTargetNode({ mode, shardCount })
  try {
    const target = { host: "127.0.0.1", port: node.port, apiKey: node.apiKey, protocol: "ws" as const }
    await seedAccounts(target, workload)
    await node.snapshotsCaughtUp(120_000)
    const plan = (ratePerSecond: number, inFlightMaxPerConnection: number) => ({
      target,
      ratePerSecond,
      durationMs: durationMs + 1_000,
      warmupMs: 1_000,
      connections: 8,
      workers: 2,
      inFlightMaxPerConnection,
      requestsMax: Math.ceil((ratePerSecond * (durationMs + 1_000)) / 1000),
      workload,
    })
    // The fixed-rate run goes first: after a run beyond capacity the node is still saving the
    // snapshots that run left behind, which would be measured instead of the rate asked for.
    const rate = Number(values.rate)
    report(mode, `open loop @ ${rate}/s`, await runMeasured(node, plan(rate, 512)), true)
    // Both beyond what each mode takes here (embedded about 24,000/s, aws about 16,000/s).
    const saturationRate = Number(values["saturation-rate"] ?? (mode === "aws" ? 25_000 : 30_000))
    // 64 in flight per connection: the node is kept busy without filling its own bounded queues.
    report(mode, `throughput (offered ${saturationRate}/s)`, await runMeasured(node, plan(saturationRate, 64)), false)
  } finally {
    await node.stop()
  }
}

console.log(`machine: ${describeMachine()}`)
console.log(`settings: ${values.seconds} s per run, ${values.accounts} accounts, generator in 2 processes of its own`)
for (const mode of values.modes.split(",")) await runMode(mode.trim() as BenchMode)
process.exit(0)
