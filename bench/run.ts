/**
 * The benchmark command: runs a scenario against a real node in a mode, with the baselines measured
 * in the same run, and writes the JSON and HTML reports.
 *
 *   npm run bench -- --scenario uniform [--mode embedded|aws] [--rate 5000] [--duration-ms 20000]
 *                    [--warmup-ms 5000] [--window-ms 60000] [--capture-delay-ms 50]
 *                    [--sweep [--sweep-from 1000] [--p99-ms-max 5]] [--no-baselines] [--profile]
 *                    [--report-dir bench/results]
 *
 * --sweep steps the offered rate up (x1.5) until the latency SLO of bench/slo.json breaks and reports
 * the highest rate that met it (the sustainable throughput), for the product and for the bare echo
 * server. --profile runs the node under the V8 CPU profiler and prints where the time went.
 *
 * Every run against the product also reports what it cost the node per transfer answered after
 * warm-up: CPU of the node process (all threads), journal records and commits, snapshot part
 * writes, heap and resident memory. A scenario with windows (soak) or --window-ms reports per
 * window too and prints the soak verdicts; `--scenario soak --duration-ms 60000 --window-ms 15000`
 * is a one-minute rehearsal with four windows.
 *
 * An authorize-capture scenario reports the payment (authorize, then capture after the scenario's
 * `captureDelayMs`, or --capture-delay-ms) and each step on its own; outside a sweep it is followed,
 * on the same node, by transfers between the same accounts at the same rate, and each step's p99
 * is judged against theirs (bench/slo.json `lifecycle`).
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { parseArgs } from "node:util"
import { stackUp } from "../scripts/local-stack/stack.ts"
import { type CeilingResult, formatCeiling } from "./baselines/ceiling.ts"
import { startEchoServer } from "./baselines/echo.ts"
import { measureKafkaCeiling } from "./baselines/kafka-ceiling.ts"
import { measureLmdbCeiling } from "./baselines/lmdb-ceiling.ts"
import { runAutocannon } from "./load/http-autocannon.ts"
import type { AuthorizeCaptureWorkload, LoadPlan, LoadResult, TransferWorkload } from "./load/plan.ts"
import { runLoad, seedAccounts } from "./load/run-load.ts"
import { formatFrames, latestCpuProfile, summarizeCpuProfile } from "./profile/summarize.ts"
import { type BenchReport, type LoadBaseline, type ReportRun, writeReport } from "./report/report.ts"
import { type MeasuredRun, runMeasured } from "./runner/measured-run.ts"
import { formatBudget, judgeCpuBudget, type NodeBudget } from "./runner/node-budget.ts"
import { formatVerdict, judgeLifecycleRun, loadSloTargets, meetsLatencySlo, type SloVerdict } from "./runner/slo.ts"
import { formatSoakWindow, judgeSoak } from "./runner/soak.ts"
import { type BenchMode, startTargetNode, type TargetNode } from "./runner/target-node.ts"
import { loadScenario, planFromScenario, type Scenario } from "./scenarios/scenarios.ts"
import { describeMachine, machineFacts } from "./support/machine.ts"

const { values } = parseArgs({
  options: {
    scenario: { type: "string" },
    mode: { type: "string", default: "embedded" },
    rate: { type: "string" },
    "duration-ms": { type: "string" },
    "warmup-ms": { type: "string" },
    "window-ms": { type: "string" },
    "capture-delay-ms": { type: "string" },
    sweep: { type: "boolean", default: false },
    "sweep-from": { type: "string", default: "1000" },
    "sweep-steps-max": { type: "string", default: "12" },
    // The sweep's latency objective; bench/slo.json's p99 unless given (aws mode's target is 10 ms).
    "p99-ms-max": { type: "string" },
    "no-baselines": { type: "boolean", default: false },
    profile: { type: "boolean", default: false },
    "report-dir": { type: "string", default: "bench/results" },
    "ceiling-ms": { type: "string", default: "8000" },
  },
})

const log = (line: string) => console.log(line)
const progress = (line: string) => process.stdout.write(`\r\x1b[2K${line}`)
const endProgress = () => process.stdout.write("\n")

const summaryLine = (
  label: string,
  result: Pick<LoadResult, "offeredRate" | "achievedRate" | "latencyMs" | "errorsByCode">,
) =>
  `${label.padEnd(28)} offered ${Math.round(result.offeredRate)}/s achieved ${Math.round(result.achievedRate)}/s  ` +
  `p50 ${result.latencyMs.p50.toFixed(2)} ms  p99 ${result.latencyMs.p99.toFixed(2)} ms  ` +
  `p99.9 ${result.latencyMs.p999.toFixed(2)} ms  max ${result.latencyMs.max.toFixed(2)} ms  errors ${JSON.stringify(result.errorsByCode)}`

/** The summary line of each step of an authorize-capture run, indented under the payment's. */
const logOperations = (result: LoadResult) => {
  for (const operation of result.operations ?? []) log(summaryLine(`  ${operation.operation}`, operation))
}

type Overrides = Partial<Omit<LoadPlan, "target" | "workload">>

const overridesFromArguments = (): Overrides => ({
  ...(values.rate === undefined ? {} : { ratePerSecond: Number(values.rate) }),
  ...(values["duration-ms"] === undefined ? {} : { durationMs: Number(values["duration-ms"]) }),
  ...(values["warmup-ms"] === undefined ? {} : { warmupMs: Number(values["warmup-ms"]) }),
  ...(values["window-ms"] === undefined ? {} : { windowMs: Number(values["window-ms"]) }),
})

interface SweepStep {
  readonly rate: number
  readonly result: LoadResult
  readonly meetsSlo: boolean
  readonly budget?: NodeBudget
}

/**
 * Runs the load at increasing rates (x1.5) until the latency SLO has broken twice in a row (one miss
 * can be noise on a shared machine); if the first rate already misses, steps down (/2) to find one
 * that meets it. Every step is kept for the report.
 */
const sweep = async (
  label: string,
  runAt: (rate: number) => Promise<{ readonly result: LoadResult; readonly budget?: NodeBudget }>,
): Promise<Array<SweepStep>> => {
  const configured = loadSloTargets()
  const targets =
    values["p99-ms-max"] === undefined ? configured : { ...configured, p99MsMax: Number(values["p99-ms-max"]) }
  const steps: Array<SweepStep> = []
  const step = async (rate: number) => {
    const { result, budget } = await runAt(rate)
    endProgress()
    const meetsSlo = meetsLatencySlo(result, targets)
    log(`${summaryLine(`${label} @ ${rate}/s`, result)}  ${meetsSlo ? "meets SLO" : "misses SLO"}`)
    logOperations(result)
    if (budget !== undefined) log(`  ${formatBudget(budget)}`)
    steps.push({ rate, result, meetsSlo, ...(budget === undefined ? {} : { budget }) })
    return meetsSlo
  }
  const stepsMax = Number(values["sweep-steps-max"])
  let rate = Number(values["sweep-from"])
  let missesInRow = 0
  for (let index = 0; index < stepsMax && missesInRow < 2; index++) {
    missesInRow = (await step(rate)) ? 0 : missesInRow + 1
    rate = Math.round(rate * 1.5)
  }
  rate = Number(values["sweep-from"])
  for (let index = 0; index < 3 && !steps.some((done) => done.meetsSlo); index++) {
    rate = Math.round(rate / 2)
    await step(rate)
  }
  return steps.sort((left, right) => left.rate - right.rate)
}

/** The highest rate that met the SLO. */
const sustainable = (steps: ReadonlyArray<SweepStep>) =>
  steps
    .filter((step) => step.meetsSlo)
    .sort((left, right) => left.rate - right.rate)
    .at(-1)

const printVerdicts = (verdicts: ReadonlyArray<SloVerdict>) => {
  for (const verdict of verdicts) log(formatVerdict(verdict))
}

/**
 * Prints a measured run (its summary, the node's budget, its windows) and returns its report entry
 * with its verdicts: the CPU target when the run was offered the target's rate, the soak's targets
 * when it had windows.
 */
const reportMeasured = (
  label: string,
  plan: LoadPlan,
  measured: MeasuredRun,
): { readonly run: ReportRun; readonly verdicts: ReadonlyArray<SloVerdict> } => {
  log(summaryLine(label, measured.result))
  logOperations(measured.result)
  log(`  ${formatBudget(measured.budget)}`)
  if (measured.result.operations !== undefined)
    log("  (the node's figures per transfer count one authorize + capture as one)")
  const verdicts: Array<SloVerdict> = []
  const cpu = judgeCpuBudget(measured.budget, plan.ratePerSecond)
  if (cpu !== undefined) verdicts.push(cpu)
  if (measured.windows !== undefined) {
    log(`per window of ${(plan.windowMs ?? 0) / 1000} s:`)
    for (const window of measured.windows) log(`  ${formatSoakWindow(window)}`)
    verdicts.push(...judgeSoak(measured.windows))
  }
  printVerdicts(verdicts)
  return { run: { label, ...measured }, verdicts }
}

/** The product's rate sweep, each step measured on the node; the CPU target is judged at the steps it applies to. */
const sweepProduct = async (node: TargetNode, scenario: Scenario, mode: BenchMode) => {
  const target = { host: "127.0.0.1", port: node.port, apiKey: node.apiKey }
  const runAt = (rate: number) =>
    runMeasured(
      node,
      planFromScenario(scenario, target, { ...overridesFromArguments(), ratePerSecond: rate }),
      progress,
    )
  const steps = await sweep("product", runAt)
  const runs: Array<ReportRun> = steps.map((step) => ({
    label: `${mode} @ ${step.rate}/s`,
    result: step.result,
    ...(step.budget === undefined ? {} : { budget: step.budget }),
  }))
  const verdicts = steps.flatMap((step) =>
    step.budget === undefined ? [] : (judgeCpuBudget(step.budget, step.rate) ?? []),
  )
  printVerdicts(verdicts)
  return { steps, runs, verdicts }
}

/** Transfers between the same accounts as an authorize-capture workload, picked the same way. */
const transfersLike = (workload: AuthorizeCaptureWorkload): TransferWorkload => ({
  kind: "transfers",
  accounts: workload.accounts,
  distribution: workload.distribution,
  crossShardOnly: workload.crossShardOnly,
  shardCount: workload.shardCount,
  currency: workload.currency,
  amount: workload.amount,
})

/**
 * After an authorize-capture run: the same plan as transfers on the same node, once the node has
 * saved what the first run left behind, and each step's p99 judged against the transfers'.
 */
const measureTransfersBeside = async (
  node: TargetNode,
  mode: BenchMode,
  plan: LoadPlan,
  workload: AuthorizeCaptureWorkload,
  lifecycle: LoadResult,
): Promise<{ readonly run: ReportRun; readonly verdicts: ReadonlyArray<SloVerdict> }> => {
  if (!(await node.snapshotsCaughtUp(60_000))) log("snapshots did not catch up with the authorize-capture run in 60 s")
  const transferPlan: LoadPlan = { ...plan, workload: transfersLike(workload) }
  const measured = await runMeasured(node, transferPlan, progress)
  endProgress()
  const label = `${mode} ws transfers (same accounts) @ ${plan.ratePerSecond}/s`
  const { run, verdicts } = reportMeasured(label, transferPlan, measured)
  const targets = loadSloTargets().lifecycle
  if (targets === undefined) {
    log("bench/slo.json has no lifecycle targets: authorize and capture are not judged against the transfers")
    return { run, verdicts }
  }
  const comparison = judgeLifecycleRun(lifecycle, measured.result, targets)
  printVerdicts(comparison)
  return { run, verdicts: [...verdicts, ...comparison] }
}

const measureProduct = async (scenario: Scenario, mode: BenchMode, profileDirectory: string | undefined) => {
  if (scenario.workload.kind === "echo") throw new Error(`scenario ${scenario.name} does not drive the product`)
  const node = await startTargetNode({ mode, shardCount: scenario.workload.shardCount, profileDirectory })
  try {
    const target = { host: "127.0.0.1", port: node.port, apiKey: node.apiKey }
    const residentBeforeSeedBytes = node.residentBytes()
    await seedAccounts({ ...target, protocol: "ws" }, scenario.workload, progress)
    endProgress()
    const residentPerAccountBytes = Math.round(
      (node.residentBytes() - residentBeforeSeedBytes) / scenario.workload.accounts,
    )
    log(`seeded ${scenario.workload.accounts} accounts; resident memory grew ${residentPerAccountBytes} bytes/account`)
    if (!(await node.snapshotsCaughtUp(300_000))) log("snapshots did not catch up with the seeding in 300 s")
    if (values.sweep) return { ...(await sweepProduct(node, scenario, mode)), residentPerAccountBytes }
    const plan = planFromScenario(scenario, target, overridesFromArguments())
    const measured = await runMeasured(node, plan, progress)
    endProgress()
    const { run, verdicts } = reportMeasured(`${mode} ${scenario.protocol} @ ${plan.ratePerSecond}/s`, plan, measured)
    const workload = scenario.workload
    if (workload.kind === "authorize-capture") {
      const beside = await measureTransfersBeside(node, mode, plan, workload, measured.result)
      return {
        steps: [],
        runs: [run, beside.run],
        verdicts: [...verdicts, ...beside.verdicts],
        residentPerAccountBytes,
      }
    }
    const runs = [run]
    if (scenario.protocol !== "http") return { steps: [], runs, verdicts, residentPerAccountBytes }
    // HTTP is also measured the way autocannon does (closed loop), beside the open-loop figures.
    const closedLoop = await runAutocannon({
      target,
      workload,
      connections: plan.connections,
      durationMs: plan.durationMs,
      requestsMax: plan.requestsMax * 10,
    })
    log(
      `autocannon closed loop, ${closedLoop.connections} connections: ${closedLoop.requestsPerSecond} requests/s, ` +
        `p50 ${closedLoop.latencyMs.p50} ms, p99 ${closedLoop.latencyMs.p99} ms, p99.9 ${closedLoop.latencyMs.p999} ms, ` +
        `non-2xx ${closedLoop.non2xx}, errors ${closedLoop.errors}`,
    )
    return { steps: [], runs, verdicts, residentPerAccountBytes, closedLoop }
  } finally {
    await node.stop()
  }
}

/** The transport ceiling: the same generator and frames against a bare uWebSockets.js JSON echo. */
const measureEcho = async (scenario: Scenario): Promise<LoadBaseline> => {
  const echo = await startEchoServer()
  try {
    const target = { host: "127.0.0.1", port: echo.port, apiKey: echo.apiKey }
    const echoScenario: Scenario = { ...scenario, workload: { kind: "echo" }, protocol: "ws" }
    const runAt = (rate: number) =>
      runLoad(
        planFromScenario(echoScenario, target, { ...overridesFromArguments(), ratePerSecond: rate }),
        progress,
      ).then((result) => ({ result }))
    if (values.sweep) {
      const best = sustainable(await sweep("echo", runAt))
      if (best === undefined) throw new Error("the echo baseline met the SLO at no rate")
      return { name: `echo (uWebSockets.js, sustainable ${best.rate}/s)`, result: best.result }
    }
    const plan = planFromScenario(echoScenario, target, overridesFromArguments())
    const result = await runLoad(plan, progress)
    endProgress()
    log(summaryLine(`echo @ ${plan.ratePerSecond}/s`, result))
    return { name: "echo (uWebSockets.js)", result }
  } finally {
    await echo.stop()
  }
}

const ceilingMs = () => Number(values["ceiling-ms"])
const ceilingWarmupMs = () => Math.min(2_000, Math.round(ceilingMs() / 4))

/** The durability ceiling of the mode: its journal's raw appends with the group commit's batching. */
const measureJournalCeiling = async (mode: BenchMode): Promise<CeilingResult> => {
  if (mode === "aws") {
    const endpoints = await stackUp()
    return measureKafkaCeiling({
      brokers: endpoints.kafkaBrokers,
      durationMs: ceilingMs(),
      warmupMs: ceilingWarmupMs(),
      batchRecords: 16,
    })
  }
  const dataDir = mkdtempSync(join(tmpdir(), "bench-lmdb-ceiling-"))
  try {
    return await measureLmdbCeiling({ dataDir, durationMs: ceilingMs(), warmupMs: ceilingWarmupMs(), batchRecords: 16 })
  } finally {
    rmSync(dataDir, { recursive: true, force: true })
  }
}

/** The scenario with --capture-delay-ms applied; only an authorize-capture scenario has a capture delay. */
const withCaptureDelayOverride = (scenario: Scenario): Scenario => {
  const override = values["capture-delay-ms"]
  if (override === undefined) return scenario
  const captureDelayMs = Number(override)
  if (!(Number.isInteger(captureDelayMs) && captureDelayMs >= 0)) {
    throw new Error(`--capture-delay-ms must be a whole number of milliseconds, not ${override}`)
  }
  if (scenario.workload.kind !== "authorize-capture") {
    throw new Error(`--capture-delay-ms applies to authorize-capture scenarios, not ${scenario.name}`)
  }
  return { ...scenario, workload: { ...scenario.workload, captureDelayMs } }
}

const main = async () => {
  if (values.scenario === undefined) throw new Error("--scenario <name> is required (see bench/scenarios)")
  const mode = values.mode as BenchMode
  if (mode !== "embedded" && mode !== "aws") throw new Error(`--mode must be embedded or aws, not ${values.mode}`)
  const scenario = withCaptureDelayOverride(loadScenario(values.scenario))
  log(`machine: ${describeMachine()}`)
  log(`scenario ${scenario.name} (${mode}): ${scenario.description}`)
  if (scenario.requires !== undefined) {
    log(`not runnable: the scenario needs ${scenario.requires}, which the product does not have yet`)
    return
  }
  const startedAt = new Date().toISOString()
  const profileDirectory = values.profile ? mkdtempSync(join(tmpdir(), "bench-profile-")) : undefined
  const product = await measureProduct(scenario, mode, profileDirectory)
  const profilePath = profileDirectory === undefined ? undefined : latestCpuProfile(profileDirectory)
  const topFrames = profilePath === undefined ? undefined : summarizeCpuProfile(profilePath, 20)
  if (topFrames !== undefined) log(`where the node's time went (CPU profile):\n${formatFrames(topFrames)}`)
  const baselines: Array<CeilingResult | LoadBaseline> = []
  if (!values["no-baselines"]) {
    baselines.push(await measureEcho(scenario))
    const ceiling = await measureJournalCeiling(mode)
    log(formatCeiling(ceiling))
    baselines.push(ceiling)
  }
  const report: BenchReport = {
    scenario: scenario.name,
    mode,
    startedAt,
    machine: machineFacts(),
    settings: {
      ...scenario,
      ...overridesFromArguments(),
      residentPerAccountBytes: product.residentPerAccountBytes,
      ...("closedLoop" in product ? { autocannonClosedLoop: product.closedLoop } : {}),
    },
    runs: product.runs,
    baselines,
    ...(product.verdicts.length === 0 ? {} : { slo: product.verdicts }),
    ...(product.steps.length === 0 ? {} : { sweep: product.steps }),
    ...(topFrames === undefined ? {} : { profile: { topFrames } }),
  }
  const paths = await writeReport(report, values["report-dir"])
  log(`report: ${paths.jsonPath} and ${paths.htmlPath}`)
  const best = sustainable(product.steps)
  if (best !== undefined)
    log(`sustainable rate (${mode}): ${best.rate}/s at p99 ${best.result.latencyMs.p99.toFixed(2)} ms`)
}

await main()
process.exit(0)
