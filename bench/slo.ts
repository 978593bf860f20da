/**
 * The SLO check: runs the steady scenario at the tested rate, the lifecycle (authorize-capture)
 * scenario at the same rate when the targets name one, and the burst scenario against a real node,
 * judges them against bench/slo.json (authorize and capture against the steady run's p99), prints
 * PASS/FAIL per objective, writes the report and exits non-zero on any miss. A benchmark, run on
 * demand; no test asserts timings.
 *
 *   npm run bench:slo [-- --mode embedded|aws] [--duration-ms 20000] [--targets bench/slo.json]
 */
import { parseArgs } from "node:util"
import type { LoadResult } from "./load/plan.ts"
import { seedAccounts } from "./load/run-load.ts"
import { type ReportRun, writeReport } from "./report/report.ts"
import { runMeasured } from "./runner/measured-run.ts"
import { formatBudget } from "./runner/node-budget.ts"
import {
  formatVerdict,
  judgeBurstRun,
  judgeLifecycleRun,
  judgeSteadyRun,
  type LifecycleTargets,
  loadSloTargets,
  type SloVerdict,
} from "./runner/slo.ts"
import { type BenchMode, startTargetNode, type TargetNode } from "./runner/target-node.ts"
import { loadScenario, planFromScenario, type Scenario } from "./scenarios/scenarios.ts"
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

/** The lifecycle scenario at the steady run's rate, on the same node, judged against the steady run. */
const runLifecycle = async (
  node: TargetNode,
  scenario: Scenario,
  targets: LifecycleTargets,
  ratePerSecond: number,
  durationOverride: { readonly durationMs?: number },
  steady: LoadResult,
): Promise<{ readonly run: ReportRun; readonly verdicts: ReadonlyArray<SloVerdict> }> => {
  const target = { host: "127.0.0.1", port: node.port, apiKey: node.apiKey }
  await node.snapshotsCaughtUp(60_000)
  const measured = await runMeasured(
    node,
    planFromScenario(scenario, target, { ratePerSecond, ...durationOverride }),
    progress,
  )
  process.stdout.write("\n")
  console.log(formatBudget(measured.budget))
  return {
    run: { label: `${scenario.name} @ ${ratePerSecond}/s`, ...measured },
    verdicts: judgeLifecycleRun(measured.result, steady, targets),
  }
}

const main = async (): Promise<boolean> => {
  const mode = values.mode as BenchMode
  const targets = loadSloTargets(values.targets)
  const steady = loadScenario(targets.scenario)
  const burst = loadScenario(targets.burstScenario)
  if (steady.workload.kind !== "transfers" || burst.workload.kind !== "transfers") {
    throw new Error("the SLO scenarios must drive transfers")
  }
  const lifecycle = targets.lifecycle === undefined ? undefined : loadScenario(targets.lifecycle.scenario)
  if (lifecycle !== undefined && lifecycle.workload.kind !== "authorize-capture") {
    throw new Error("the lifecycle SLO scenario must drive authorize-capture")
  }
  console.log(`machine: ${describeMachine()}`)
  const durationOverride = values["duration-ms"] === undefined ? {} : { durationMs: Number(values["duration-ms"]) }
  const startedAt = new Date().toISOString()
  const node = await startTargetNode({ mode, shardCount: steady.workload.shardCount })
  const runs: Array<ReportRun> = []
  const verdicts: Array<SloVerdict> = []
  try {
    const target = { host: "127.0.0.1", port: node.port, apiKey: node.apiKey }
    const workloads = [
      steady.workload,
      burst.workload,
      ...(lifecycle?.workload.kind === "authorize-capture" ? [lifecycle.workload] : []),
    ]
    // Every scenario pays among accounts acct-0 .. acct-(n-1): seeding the most accounts seeds them all.
    const largest = workloads.reduce((most, workload) => (workload.accounts > most.accounts ? workload : most))
    await seedAccounts({ ...target, protocol: "ws" }, largest, progress)
    process.stdout.write("\n")
    await node.snapshotsCaughtUp(300_000)
    const steadyPlan = planFromScenario(steady, target, { ratePerSecond: targets.ratePerSecond, ...durationOverride })
    const steadyRun = await runMeasured(node, steadyPlan, progress)
    process.stdout.write("\n")
    console.log(formatBudget(steadyRun.budget))
    runs.push({ label: `${steady.name} @ ${targets.ratePerSecond}/s`, ...steadyRun })
    verdicts.push(...judgeSteadyRun(steadyRun.result, targets))
    if (targets.lifecycle !== undefined && lifecycle !== undefined) {
      const lifecycleRun = await runLifecycle(
        node,
        lifecycle,
        targets.lifecycle,
        targets.ratePerSecond,
        durationOverride,
        steadyRun.result,
      )
      runs.push(lifecycleRun.run)
      verdicts.push(...lifecycleRun.verdicts)
    }
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
