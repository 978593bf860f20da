/**
 * The benchmark command: runs a scenario against a real node in a mode, with the baselines measured
 * in the same run, and writes the JSON and HTML reports.
 *
 *   npm run bench -- --scenario uniform [--mode embedded|aws] [--rate 5000] [--duration-ms 20000]
 *                    [--warmup-ms 5000] [--window-ms 60000] [--capture-delay-ms 50]
 *                    [--sweep [--sweep-from 1000] [--p99-ms-max 5]] [--no-baselines] [--profile]
 *                    [--report-dir bench/results]
 *                    [--nodes 3 [--sweep] | --nodes-series 1,2,3] [--takeover] [--scale-out]   (aws mode)
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
 *
 * --nodes N (1 to 5, aws mode) runs the scenario against a cluster of N nodes on loopback, formed
 * under names unique to the run and measured once they agree on the shard map: the generator's
 * connections go to the nodes in turn (so about (N - 1)/N of the requests are forwarded), the
 * budget sums every node process. --nodes-series 1,2,3 (or --nodes 3 --sweep: with a cluster the
 * sweep is over the node count, not the rate) measures each size at the same rate on a fresh
 * cluster and prints a comparison table. --takeover then SIGKILLs one node of the largest cluster
 * under the same load and times how long the survivors take to serve every shard again; --scale-out
 * (before it) adds one node to the largest cluster under load and reports what moved and each
 * node's hand-off pause. Without --nodes the run uses one node outside a cluster, as before.
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
import {
  type ClusterComparisonRow,
  clusterConnectionsOf,
  formatComparison,
  formatScaleOut,
  movedShards,
  nodeCountsOf,
  routingSharesOf,
  type ScaleOutFigures,
  type TakeoverFigures,
} from "./runner/cluster-figures.ts"
import { type MeasuredRun, runMeasured } from "./runner/measured-run.ts"
import { formatBudget, judgeCpuBudget, type NodeBudget } from "./runner/node-budget.ts"
import { formatVerdict, judgeLifecycleRun, loadSloTargets, meetsLatencySlo, type SloVerdict } from "./runner/slo.ts"
import { formatSoakWindow, judgeSoak } from "./runner/soak.ts"
import { startTargetCluster, type TargetCluster } from "./runner/target-cluster.ts"
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
    nodes: { type: "string" },
    "nodes-series": { type: "string" },
    takeover: { type: "boolean", default: false },
    "scale-out": { type: "boolean", default: false },
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

/** A node or a cluster under measurement; a cluster's `ports` spread the generator's connections over its nodes. */
type ProductTarget = TargetNode & { readonly ports?: ReadonlyArray<number> }

const targetOf = (node: ProductTarget) => ({
  host: "127.0.0.1",
  port: node.port,
  apiKey: node.apiKey,
  ...(node.ports === undefined ? {} : { ports: node.ports }),
})

/** The product's rate sweep, each step measured on the node; the CPU target is judged at the steps it applies to. */
const sweepProduct = async (node: ProductTarget, scenario: Scenario, labelPrefix: string, overrides: Overrides) => {
  const runAt = (rate: number) =>
    runMeasured(node, planFromScenario(scenario, targetOf(node), { ...overrides, ratePerSecond: rate }), progress)
  const steps = await sweep("product", runAt)
  const runs: Array<ReportRun> = steps.map((step) => ({
    label: `${labelPrefix} @ ${step.rate}/s`,
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
  node: ProductTarget,
  labelPrefix: string,
  plan: LoadPlan,
  workload: AuthorizeCaptureWorkload,
  lifecycle: LoadResult,
): Promise<{ readonly run: ReportRun; readonly verdicts: ReadonlyArray<SloVerdict> }> => {
  if (!(await node.snapshotsCaughtUp(60_000))) log("snapshots did not catch up with the authorize-capture run in 60 s")
  const transferPlan: LoadPlan = { ...plan, workload: transfersLike(workload) }
  const measured = await runMeasured(node, transferPlan, progress)
  endProgress()
  const label = `${labelPrefix} ws transfers (same accounts) @ ${plan.ratePerSecond}/s`
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

/**
 * Seeds a started node (or cluster) and measures the scenario on it: a rate sweep when `rateSweep`,
 * else one run, followed by transfers beside an authorize-capture run and, over HTTP, by autocannon.
 */
const measureOn = async (
  node: ProductTarget,
  scenario: Scenario,
  labelPrefix: string,
  overrides: Overrides,
  rateSweep: boolean,
) => {
  if (scenario.workload.kind === "echo") throw new Error(`scenario ${scenario.name} does not drive the product`)
  const target = targetOf(node)
  const residentBeforeSeedBytes = node.residentBytes()
  await seedAccounts({ ...target, protocol: "ws" }, scenario.workload, progress)
  endProgress()
  const residentPerAccountBytes = Math.round(
    (node.residentBytes() - residentBeforeSeedBytes) / scenario.workload.accounts,
  )
  log(`seeded ${scenario.workload.accounts} accounts; resident memory grew ${residentPerAccountBytes} bytes/account`)
  if (!(await node.snapshotsCaughtUp(300_000))) log("snapshots did not catch up with the seeding in 300 s")
  if (rateSweep) return { ...(await sweepProduct(node, scenario, labelPrefix, overrides)), residentPerAccountBytes }
  const plan = planFromScenario(scenario, target, overrides)
  const measured = await runMeasured(node, plan, progress)
  endProgress()
  const label = `${labelPrefix} ${scenario.protocol} @ ${plan.ratePerSecond}/s`
  const { run, verdicts } = reportMeasured(label, plan, measured)
  const workload = scenario.workload
  if (workload.kind === "authorize-capture") {
    const beside = await measureTransfersBeside(node, labelPrefix, plan, workload, measured.result)
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
  // autocannon takes one address: a cluster's closed loop goes to its first node only.
  const where = node.ports === undefined ? "" : " (first node only)"
  log(
    `autocannon closed loop${where}, ${closedLoop.connections} connections: ${closedLoop.requestsPerSecond} requests/s, ` +
      `p50 ${closedLoop.latencyMs.p50} ms, p99 ${closedLoop.latencyMs.p99} ms, p99.9 ${closedLoop.latencyMs.p999} ms, ` +
      `non-2xx ${closedLoop.non2xx}, errors ${closedLoop.errors}`,
  )
  return { steps: [], runs, verdicts, residentPerAccountBytes, closedLoop }
}

const measureProduct = async (scenario: Scenario, mode: BenchMode, profileDirectory: string | undefined) => {
  if (scenario.workload.kind === "echo") throw new Error(`scenario ${scenario.name} does not drive the product`)
  const node = await startTargetNode({ mode, shardCount: scenario.workload.shardCount, profileDirectory })
  try {
    return await measureOn(node, scenario, mode, overridesFromArguments(), values.sweep)
  } finally {
    await node.stop()
  }
}

/** When, into the takeover's load run, the node is killed: the generator and every link are warm by then. */
const takeoverKillAtMs = 3_000
/** How long the load goes on after the kill: the 6 s session, the rebalance and the recoveries, with room to spare. */
const takeoverLoadMs = 20_000
/** How long the survivors get to agree on a map with every shard serving before the takeover counts as failed. */
const takeoverTimeoutMs = 60_000

/**
 * Under the scenario's load at the run's rate, SIGKILLs the cluster's last node and times the
 * takeover as GET /v1/cluster shows it; the load's figures count from the kill on.
 */
const measureTakeover = async (
  cluster: TargetCluster,
  scenario: Scenario,
  overrides: Overrides,
): Promise<TakeoverFigures> => {
  // Windows are for a soak's minutes; the takeover's run is one stretch.
  const { windowMs: _soakWindowMs, ...plan } = planFromScenario(scenario, targetOf(cluster), {
    ...overrides,
    warmupMs: takeoverKillAtMs,
    durationMs: takeoverKillAtMs + takeoverLoadMs,
  })
  const victim = cluster.nodeIds.length - 1
  const killedNodeId = cluster.nodeIds[victim] as string
  let takeover: Promise<number | null> | undefined
  let killTimer: NodeJS.Timeout | undefined
  const scheduleKill = (startAtEpochMs: number) => {
    killTimer = setTimeout(
      () => {
        takeover = cluster.killAndTimeTakeover(victim, takeoverTimeoutMs)
        // Awaited once the run is over, which rethrows; until then a failure must not count as unhandled.
        takeover.catch(() => {})
      },
      Math.max(0, startAtEpochMs + takeoverKillAtMs - Date.now()),
    )
  }
  log(`takeover: SIGKILL of ${killedNodeId} ${takeoverKillAtMs / 1000} s into a run at ${plan.ratePerSecond}/s`)
  try {
    const result = await runLoad(plan, progress, scheduleKill)
    endProgress()
    if (takeover === undefined) throw new Error("assertion: the takeover's run ended before the kill")
    const takeoverMs = await takeover
    return { nodeCount: cluster.nodeIds.length, killedNodeId, takeoverMs, result }
  } finally {
    clearTimeout(killTimer)
  }
}

const formatTakeover = (figures: TakeoverFigures): string => {
  const survivors = figures.nodeCount === 2 ? "the survivor" : `the ${figures.nodeCount - 1} survivors`
  const outcome =
    figures.takeoverMs === null
      ? `${survivors} did not agree on a map with every shard serving within ${takeoverTimeoutMs / 1000} s`
      : `${survivors} served every shard again after ${(figures.takeoverMs / 1000).toFixed(1)} s ` +
        "(SIGKILL to an agreed map on GET /v1/cluster, polled every 0.2 s)"
  return `takeover of ${figures.killedNodeId} (1 of ${figures.nodeCount}): ${outcome}
${summaryLine("  load from the kill on", figures.result)}`
}

/** When, into the scale-out's load run, the node is added, and how long the load goes on after. */
const scaleOutAddAtMs = 3_000
const scaleOutLoadMs = 20_000

/**
 * Under the scenario's load at the run's rate, adds one node to the cluster and measures what moved
 * and each node's hand-off pause (from its `/metrics`); the load's figures count from the add on.
 */
const measureScaleOut = async (
  cluster: TargetCluster,
  scenario: Scenario,
  overrides: Overrides,
): Promise<ScaleOutFigures> => {
  const { windowMs: _soakWindowMs, ...plan } = planFromScenario(scenario, targetOf(cluster), {
    ...overrides,
    warmupMs: scaleOutAddAtMs,
    durationMs: scaleOutAddAtMs + scaleOutLoadMs,
  })
  let added: ReturnType<TargetCluster["addNodeAndTimeHandOff"]> | undefined
  let addTimer: NodeJS.Timeout | undefined
  const scheduleAdd = (startAtEpochMs: number) => {
    addTimer = setTimeout(
      () => {
        added = cluster.addNodeAndTimeHandOff(takeoverTimeoutMs)
        // Awaited once the run is over, which rethrows; until then a failure must not count as unhandled.
        added.catch(() => {})
      },
      Math.max(0, startAtEpochMs + scaleOutAddAtMs - Date.now()),
    )
  }
  const nodeCountBefore = cluster.nodeIds.length
  log(
    `scale-out: one node added to ${nodesText(nodeCountBefore)} ${scaleOutAddAtMs / 1000} s into a run at ${plan.ratePerSecond}/s`,
  )
  try {
    const result = await runLoad(plan, progress, scheduleAdd)
    endProgress()
    if (added === undefined) throw new Error("assertion: the scale-out's run ended before the add")
    const scaleOut = await added
    const shardCount = scaleOut.after.shards.length
    return {
      nodeCountBefore,
      addedNodeId: scaleOut.addedNodeId,
      agreedMs: scaleOut.agreedMs,
      moved: movedShards(scaleOut.before, scaleOut.after),
      movedMax: Math.ceil(shardCount / (nodeCountBefore + 1)) + 1,
      handOffs: scaleOut.handOffs,
      result,
    }
  } finally {
    clearTimeout(addTimer)
  }
}

const nodesText = (nodeCount: number): string => `${nodeCount} node${nodeCount === 1 ? "" : "s"}`

/** One cluster size: a fresh cluster, seeded and measured at the run's rate, its routing shares, the takeover if asked. */
const measureCluster = async (scenario: Scenario, nodeCount: number, withTakeover: boolean, withScaleOut: boolean) => {
  const workload = scenario.workload
  if (workload.kind === "echo") throw new Error(`scenario ${scenario.name} does not drive the product`)
  const cluster = await startTargetCluster({ nodeCount, shardCount: workload.shardCount })
  try {
    log(
      `cluster ${cluster.name}: ${nodesText(nodeCount)} on ports ${cluster.ports.join(", ")}, ` +
        `every shard serving on one agreed map after ${(cluster.formedMs / 1000).toFixed(1)} s`,
    )
    const connections = clusterConnectionsOf(scenario.connections, scenario.workers, nodeCount)
    const overrides: Overrides = { ...overridesFromArguments(), connections }
    const label = `aws ${nodeCount}-node cluster`
    const measured = await measureOn(cluster, scenario, label, overrides, false)
    const mapAfter = await cluster.agreedMap(5_000).catch(() => undefined)
    if (JSON.stringify(mapAfter) !== JSON.stringify(cluster.map))
      log("  the shard map moved during the run: the routing shares below are of the map before it")
    const routing = routingSharesOf(cluster.map, cluster.nodeIds, workload)
    log(
      `  routing (from the shard map and the workload's picker, ${connections} connections over ${nodesText(nodeCount)}): ` +
        `${(routing.forwarded * 100).toFixed(1)}% forwarded to the owner, ` +
        `${(routing.crossNode * 100).toFixed(1)}% cross-node (the credit over a peer link)`,
    )
    const first = measured.runs[0]
    if (first?.budget === undefined) throw new Error("assertion: a cluster run is measured with its budget")
    const row: ClusterComparisonRow = { nodeCount, connections, result: first.result, budget: first.budget, routing }
    // Printed with the comparison, as its own line.
    const scaleOut = withScaleOut ? await measureScaleOut(cluster, scenario, overrides) : undefined
    const takeover = withTakeover ? await measureTakeover(cluster, scenario, overrides) : undefined
    return { ...measured, row, takeover, scaleOut }
  } finally {
    await cluster.stop()
  }
}

/**
 * Every cluster size in turn, each on its own cluster at the same rate, then the comparison; the
 * takeover runs on the largest size (it needs a survivor).
 */
const measureClusters = async (scenario: Scenario, nodeCounts: ReadonlyArray<number>) => {
  const largest = Math.max(...nodeCounts)
  if (values.takeover && largest < 2) log("--takeover needs a cluster of 2 nodes or more: skipped")
  const runs: Array<ReportRun> = []
  const verdicts: Array<SloVerdict> = []
  const comparison: Array<ClusterComparisonRow> = []
  let takeover: TakeoverFigures | undefined
  let scaleOut: ScaleOutFigures | undefined
  let residentPerAccountBytes = 0
  for (const nodeCount of nodeCounts) {
    const measured = await measureCluster(
      scenario,
      nodeCount,
      values.takeover && nodeCount === largest && largest >= 2,
      values["scale-out"] && nodeCount === largest,
    )
    runs.push(...measured.runs)
    verdicts.push(...measured.verdicts)
    comparison.push(measured.row)
    takeover = measured.takeover ?? takeover
    scaleOut = measured.scaleOut ?? scaleOut
    residentPerAccountBytes = measured.residentPerAccountBytes
  }
  log(
    `cluster comparison (${scenario.name}, the same offered rate; CPU summed over every node process; ` +
      "forwarded and cross-node computed from the shard map):",
  )
  log(formatComparison(comparison))
  log(
    "  every node, the generator and the local stack share this machine's cores: more nodes compete for " +
      "them, so the table shows each node's and each hop's cost, not how a cluster of machines scales",
  )
  if (scaleOut !== undefined) {
    log(formatScaleOut(scaleOut))
    log(summaryLine("  load from the add on", scaleOut.result))
  }
  if (takeover !== undefined) log(formatTakeover(takeover))
  return {
    steps: [],
    runs,
    verdicts,
    residentPerAccountBytes,
    cluster: {
      comparison,
      ...(takeover === undefined ? {} : { takeover }),
      ...(scaleOut === undefined ? {} : { scaleOut }),
    },
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
  const nodeCounts = nodeCountsOf({ nodes: values.nodes, nodesSeries: values["nodes-series"], sweep: values.sweep })
  if (nodeCounts !== undefined && mode !== "aws")
    throw new Error("--nodes and --nodes-series start a cluster: aws mode only")
  if (nodeCounts !== undefined && values.profile) throw new Error("--profile profiles one node: run it without --nodes")
  if (nodeCounts === undefined && values.takeover) throw new Error("--takeover needs a cluster: add --nodes 2 or more")
  if (nodeCounts === undefined && values["scale-out"])
    throw new Error("--scale-out needs a cluster: add --nodes 1 or more")
  const scenario = withCaptureDelayOverride(loadScenario(values.scenario))
  log(`machine: ${describeMachine()}`)
  const nodesNote = nodeCounts === undefined ? "" : `, a cluster of ${nodeCounts.map(nodesText).join(", then ")}`
  log(`scenario ${scenario.name} (${mode}${nodesNote}): ${scenario.description}`)
  if (scenario.requires !== undefined) {
    log(`not runnable: the scenario needs ${scenario.requires}, which the product does not have yet`)
    return
  }
  const startedAt = new Date().toISOString()
  const profileDirectory = values.profile ? mkdtempSync(join(tmpdir(), "bench-profile-")) : undefined
  const product =
    nodeCounts === undefined
      ? await measureProduct(scenario, mode, profileDirectory)
      : await measureClusters(scenario, nodeCounts)
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
    // A cluster's report is named after its sizes too, so it never replaces the one-node report of the day.
    mode: nodeCounts === undefined ? mode : `${mode}-${nodeCounts.join("-")}-nodes`,
    startedAt,
    machine: machineFacts(),
    settings: {
      ...scenario,
      ...overridesFromArguments(),
      residentPerAccountBytes: product.residentPerAccountBytes,
      ...("closedLoop" in product ? { autocannonClosedLoop: product.closedLoop } : {}),
      ...(nodeCounts === undefined ? {} : { nodes: nodeCounts }),
    },
    runs: product.runs,
    baselines,
    ...(product.verdicts.length === 0 ? {} : { slo: product.verdicts }),
    ...(product.steps.length === 0 ? {} : { sweep: product.steps }),
    ...(topFrames === undefined ? {} : { profile: { topFrames } }),
    ...("cluster" in product ? { cluster: product.cluster } : {}),
  }
  const paths = await writeReport(report, values["report-dir"])
  log(`report: ${paths.jsonPath} and ${paths.htmlPath}`)
  const best = sustainable(product.steps)
  if (best !== undefined)
    log(`sustainable rate (${mode}): ${best.rate}/s at p99 ${best.result.latencyMs.p99.toFixed(2)} ms`)
}

await main()
process.exit(0)
