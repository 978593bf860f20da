/**
 * The SLO check: runs the steady scenario at the tested rate and the burst scenario against a real
 * node, judges them against bench/slo.json, prints PASS/FAIL per objective, writes the report and
 * exits non-zero on any miss. A benchmark, run on demand; no test asserts timings.
 *
 *   npm run bench:slo [-- --mode embedded|aws] [--duration-ms 20000] [--targets bench/slo.json]
 */
import { parseArgs } from "node:util"
import { seedAccounts } from "./load/run-load.ts"
import { type ReportRun, writeReport } from "./report/report.ts"
import { runMeasured } from "./runner/measured-run.ts"
import { formatBudget } from "./runner/node-budget.ts"
import { formatVerdict, judgeBurstRun, judgeSteadyRun, loadSloTargets, type SloVerdict } from "./runner/slo.ts"
import { type BenchMode, startTargetNode } from "./runner/target-node.ts"
import { loadScenario, planFromScenario } from "./scenarios/scenarios.ts"
import { describeMachine, machineFacts } from "./support/machine.ts"

const { values } = parseArgs({
  options: {
    mode: { type: "string", default: "embedded" },
    "duration-ms": { type: "string" },
    "report-dir": { type: "string", default: "bench/results" },
    targets: { type: "string" },
  },
})

const progress = (line: string) => process.stdout.write(`\r\x1b[2K${line}`)

const main = async (): Promise<boolean> => {
  const mode = values.mode as BenchMode
  const targets = loadSloTargets(values.targets)
  const steady = loadScenario(targets.scenario)
  const burst = loadScenario(targets.burstScenario)
  if (steady.workload.kind !== "transfers" || burst.workload.kind !== "transfers") {
    throw new Error("the SLO scenarios must drive transfers")
  }
  console.log(`machine: ${describeMachine()}`)
  const durationOverride = values["duration-ms"] === undefined ? {} : { durationMs: Number(values["duration-ms"]) }
  const startedAt = new Date().toISOString()
  const node = await startTargetNode({ mode, shardCount: steady.workload.shardCount })
  const runs: Array<ReportRun> = []
  const verdicts: Array<SloVerdict> = []
  try {
    const target = { host: "127.0.0.1", port: node.port, apiKey: node.apiKey }
    const largest = steady.workload.accounts >= burst.workload.accounts ? steady.workload : burst.workload
    await seedAccounts({ ...target, protocol: "ws" }, largest, progress)
    process.stdout.write("\n")
    await node.snapshotsCaughtUp(300_000)
    const steadyPlan = planFromScenario(steady, target, { ratePerSecond: targets.ratePerSecond, ...durationOverride })
    const steadyRun = await runMeasured(node, steadyPlan, progress)
    process.stdout.write("\n")
    console.log(formatBudget(steadyRun.budget))
    runs.push({ label: `${steady.name} @ ${targets.ratePerSecond}/s`, ...steadyRun })
    verdicts.push(...judgeSteadyRun(steadyRun.result, targets))
    const burstPlan = planFromScenario(burst, target, durationOverride)
    const burstRun = await runMeasured(node, burstPlan, progress)
    process.stdout.write("\n")
    console.log(formatBudget(burstRun.budget))
    runs.push({ label: `${burst.name} @ ${burstPlan.ratePerSecond}/s`, ...burstRun })
    verdicts.push(judgeBurstRun(burstRun.result, targets))
  } finally {
    await node.stop()
  }
  for (const verdict of verdicts) console.log(formatVerdict(verdict))
  const paths = await writeReport(
    {
      scenario: "slo",
      mode,
      startedAt,
      machine: machineFacts(),
      settings: { targets, ...durationOverride },
      runs,
      baselines: [],
      slo: verdicts,
    },
    values["report-dir"],
  )
  console.log(`report: ${paths.jsonPath} and ${paths.htmlPath}`)
  return verdicts.every((verdict) => verdict.pass)
}

process.exit((await main()) ? 0 : 1)
