/**
 * Runs an open-loop load plan: forks the generator workers, splits connections and rate between
 * them (worker w sends requests w, w + workers, ...), starts them together, prints a progress line
 * every second and merges what they measured into one LoadResult.
 *
 * Set BENCH_GENERATOR_CPU_PROF=<dir> to run the workers under --cpu-prof (profiles land in <dir>).
 */
import { type ChildProcess, fork } from "node:child_process"
import { fileURLToPath } from "node:url"
import { assertLoopback } from "./channels.ts"
import { encodeHistogram, latencySummaryOf, mergeHistograms, spectrumOf } from "./histograms.ts"
import type { DoneReport, FromWorker, OperationReport, SecondReport, ToWorker, WorkerShare } from "./messages.ts"
import type { LoadPlan, LoadResult, OperationResult } from "./plan.ts"
import { validateWindowLayout, WindowAggregate, windowLayoutOf } from "./windows.ts"

export { seedAccounts } from "./seed.ts"
export { accountIdOf } from "./workload.ts"

const workerPath = fileURLToPath(new URL("./generator-worker.ts", import.meta.url))
/** How long answers are awaited after the last request was due; the rest count as TIMEOUT. */
const drainTimeoutMs = 10_000
/** Requests one worker holds while its connections are full; beyond it they are GENERATOR_BACKLOG. */
const backlogMax = 100_000
/** Lead time of the common start, so every worker is in its timer loop before the first request is due. */
const startLeadMs = 250
/** Workers that have not connected by then fail the run (a server that accepts nothing). */
const readyTimeoutMs = 30_000

export const validatePlan = (plan: LoadPlan): void => {
  assertLoopback(plan.target.host)
  const ports = plan.target.ports
  if (ports !== undefined && (ports.length === 0 || !ports.every((port) => Number.isInteger(port) && port > 0))) {
    throw new Error(`plan.target.ports must be one or more ports, not ${JSON.stringify(ports)}`)
  }
  const positive = { ratePerSecond: plan.ratePerSecond, durationMs: plan.durationMs, connections: plan.connections }
  for (const [name, value] of Object.entries({
    ...positive,
    workers: plan.workers,
    inFlightMaxPerConnection: plan.inFlightMaxPerConnection,
    requestsMax: plan.requestsMax,
  })) {
    if (!(value > 0) || !Number.isFinite(value)) throw new Error(`plan.${name} must be a positive number, not ${value}`)
  }
  if (!(plan.warmupMs >= 0 && plan.warmupMs < plan.durationMs)) {
    throw new Error(`plan.warmupMs must be in [0, durationMs), not ${plan.warmupMs}`)
  }
  const layout = windowLayoutOf(plan)
  if (layout !== undefined) validateWindowLayout(layout)
}

interface WorkerHandle {
  readonly child: ChildProcess
  readonly ready: Promise<void>
  readonly done: Promise<DoneReport>
}

const forkWorker = (share: WorkerShare, onSecond: (report: SecondReport) => void): WorkerHandle => {
  const profileDirectory = process.env.BENCH_GENERATOR_CPU_PROF
  const execArgv = ["--import", "tsx"]
  if (profileDirectory !== undefined) execArgv.push("--cpu-prof", `--cpu-prof-dir=${profileDirectory}`)
  const child = fork(workerPath, [], { execArgv, stdio: ["ignore", "inherit", "inherit", "ipc"] })
  let markReady: () => void = () => {}
  let markDone: (report: DoneReport) => void = () => {}
  let fail: (error: Error) => void = () => {}
  const ready = new Promise<void>((resolve, reject) => {
    markReady = resolve
    fail = reject
  })
  const done = new Promise<DoneReport>((resolve, reject) => {
    markDone = resolve
    const previous = fail
    fail = (error) => {
      previous(error)
      reject(error)
    }
  })
  // Either may never be awaited if the other fails first.
  ready.catch(() => {})
  done.catch(() => {})
  child.on("message", (message: FromWorker) => {
    if (message.type === "ready") markReady()
    else if (message.type === "second") onSecond(message)
    else if (message.type === "done") markDone(message)
    else fail(new Error(`generator worker ${share.workerIndex}: ${message.message}`))
  })
  child.once("exit", (code, signal) =>
    fail(new Error(`generator worker ${share.workerIndex} exited (${signal ?? code})`)),
  )
  child.send({ type: "init", share } satisfies ToWorker)
  return { child, ready, done }
}

/** Splits `total` into `parts` near-equal whole shares. */
export const splitEvenly = (total: number, parts: number): Array<number> =>
  Array.from({ length: parts }, (_, index) => Math.floor(total / parts) + (index < total % parts ? 1 : 0))

const withTimeout = <A>(promise: Promise<A>, timeoutMs: number, what: string): Promise<A> => {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took more than ${timeoutMs} ms`)), timeoutMs)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/**
 * `onStart` is told the common start (wall-clock ms) once every worker is connected, before the
 * first request is due, so a caller can sample the target at points of the run (end of warm-up,
 * window boundaries) on the same clock the workers use.
 */
export const runLoad = async (
  plan: LoadPlan,
  onProgress?: (line: string) => void,
  onStart?: (startAtEpochMs: number) => void,
): Promise<LoadResult> => {
  validatePlan(plan)
  // A worker without a connection would have nothing to send on.
  const workers = Math.min(plan.workers, plan.connections)
  const runId = `r${Date.now().toString(36)}${Math.floor(Math.random() * 36 ** 4).toString(36)}`
  const seconds = new SecondsAggregate(plan, workers, onProgress)
  const handles = splitEvenly(plan.connections, workers).map((connections, workerIndex) =>
    forkWorker({ plan, workerIndex, workers, connections, runId, drainTimeoutMs, backlogMax }, (report) =>
      seconds.add(report),
    ),
  )
  try {
    await withTimeout(Promise.all(handles.map((handle) => handle.ready)), readyTimeoutMs, "connecting the generators")
    const startAtEpochMs = Date.now() + startLeadMs
    for (const handle of handles) handle.child.send({ type: "start", startAtEpochMs } satisfies ToWorker)
    onStart?.(startAtEpochMs)
    const reports = await withTimeout(
      Promise.all(handles.map((handle) => handle.done)),
      startLeadMs + plan.durationMs + drainTimeoutMs + readyTimeoutMs,
      "the load run",
    )
    seconds.flush()
    const result = resultOf(plan, reports, seconds.perSecond, seconds.finishWindows())
    onProgress?.(generatorLine(reports, result.durationMs + plan.warmupMs))
    return result
  } finally {
    for (const handle of handles) if (handle.child.exitCode === null) handle.child.kill("SIGKILL")
  }
}

/** Sums the workers' per-second reports; a second is printed once every worker has reported it. */
class SecondsAggregate {
  readonly perSecond: Array<LoadResult["perSecond"][number]> = []
  private readonly pending = new Map<number, Array<SecondReport>>()
  private readonly windows: WindowAggregate | undefined
  private dueSoFar = 0
  private completedSoFar = 0
  private errorsSoFar = 0

  constructor(
    private readonly plan: LoadPlan,
    private readonly workers: number,
    private readonly onProgress: ((line: string) => void) | undefined,
  ) {
    const layout = windowLayoutOf(plan)
    this.windows = layout === undefined ? undefined : new WindowAggregate(layout)
  }

  add(report: SecondReport): void {
    const reports = this.pending.get(report.second) ?? []
    reports.push(report)
    this.pending.set(report.second, reports)
    if (reports.length === this.workers) this.close(report.second)
  }

  /** The per-window figures once every second is closed; undefined when the plan has no windows. */
  finishWindows(): LoadResult["perWindow"] {
    return this.windows?.finish()
  }

  /** Closes the seconds that not every worker reported (the last, partial ones). */
  flush(): void {
    for (const second of [...this.pending.keys()].sort((left, right) => left - right)) this.close(second)
  }

  private close(second: number): void {
    const reports = this.pending.get(second) ?? []
    this.pending.delete(second)
    const sum = (pick: (report: SecondReport) => number) => reports.reduce((total, report) => total + pick(report), 0)
    const histogram = mergeHistograms(reports.map((report) => report.histogramBase64))
    const p99Ms = histogram.totalCount === 0 ? 0 : histogram.getValueAtPercentile(99) / 1000
    const completed = sum((report) => report.completed)
    const errors = sum((report) => report.errors)
    this.windows?.add(second, { due: sum((report) => report.due), completed, errors }, histogram)
    histogram.destroy()
    this.dueSoFar += sum((report) => report.due)
    this.completedSoFar += completed
    this.errorsSoFar += errors
    const warmup = (second + 1) * 1000 <= this.plan.warmupMs
    if (second * 1000 >= this.plan.warmupMs) this.perSecond.push({ second, completed, errors, p99Ms })
    this.onProgress?.(
      `${String(second + 1).padStart(4)} s  offered ${sum((report) => report.due)}/s  achieved ${completed}/s  ` +
        `errors ${errors} (total ${this.errorsSoFar})  p99 ${p99Ms.toFixed(2)} ms${warmup ? "  (warm-up)" : ""}`,
    )
  }
}

/** The sum of the workers' counts by error code. */
const mergeErrorsByCode = (parts: ReadonlyArray<Readonly<Record<string, number>>>): Record<string, number> => {
  const errorsByCode: Record<string, number> = {}
  for (const part of parts) {
    for (const [code, count] of Object.entries(part)) errorsByCode[code] = (errorsByCode[code] ?? 0) + count
  }
  return errorsByCode
}

/**
 * The workers' figures of each operation (authorize-capture) merged into one per operation, with
 * rates over the same windows as the payment's, in the order the first worker reports them.
 */
export const mergeOperations = (
  perWorker: ReadonlyArray<ReadonlyArray<OperationReport>>,
  windows: { readonly offeredMs: number; readonly achievedMs: number },
): ReadonlyArray<OperationResult> => {
  const names = (perWorker[0] ?? []).map((report) => report.operation)
  return names.map((operation) => {
    const parts = perWorker.flatMap((reports) => reports.filter((report) => report.operation === operation))
    if (parts.length !== perWorker.length) throw new Error(`assertion: not every worker reported ${operation}`)
    const sum = (pick: (report: OperationReport) => number) => parts.reduce((total, part) => total + pick(part), 0)
    const histogram = mergeHistograms(parts.map((part) => part.histogramBase64))
    const completed = sum((part) => part.completed)
    const figures: OperationResult = {
      operation,
      due: sum((part) => part.due),
      sent: sum((part) => part.sent),
      completed,
      offeredRate: Math.round(sum((part) => part.due) / (windows.offeredMs / 1000)),
      achievedRate: Math.round(completed / (windows.achievedMs / 1000)),
      errorsByCode: mergeErrorsByCode(parts.map((part) => part.errorsByCode)),
      latencyMs: latencySummaryOf(histogram),
      spectrum: spectrumOf(histogram),
      histogramBase64: encodeHistogram(histogram),
    }
    histogram.destroy()
    return figures
  })
}

const resultOf = (
  plan: LoadPlan,
  reports: ReadonlyArray<DoneReport>,
  perSecond: LoadResult["perSecond"],
  perWindow: LoadResult["perWindow"],
): LoadResult => {
  const sum = (pick: (report: DoneReport) => number) => reports.reduce((total, report) => total + pick(report), 0)
  const max = (pick: (report: DoneReport) => number) => Math.max(0, ...reports.map(pick))
  const errorsByCode = mergeErrorsByCode(reports.map((report) => report.errorsByCode))
  const histogram = mergeHistograms(reports.map((report) => report.histogramBase64))
  // The offered window ends when the last request was due (early if requestsMax bound the run).
  const intervalMs = 1000 / plan.ratePerSecond
  const offeredWindowMs = Math.max(
    intervalMs,
    Math.min(plan.durationMs, max((report) => report.lastDueMs) + intervalMs) - plan.warmupMs,
  )
  const achievedWindowMs = Math.max(offeredWindowMs, max((report) => report.lastAnswerMs) - plan.warmupMs)
  const completed = sum((report) => report.completed)
  const operations = reports.some((report) => report.operations !== undefined)
    ? mergeOperations(
        reports.map((report) => report.operations ?? []),
        { offeredMs: offeredWindowMs, achievedMs: achievedWindowMs },
      )
    : undefined
  const result: LoadResult = {
    offeredRate: Math.round(sum((report) => report.due) / (offeredWindowMs / 1000)),
    achievedRate: Math.round(completed / (achievedWindowMs / 1000)),
    sent: sum((report) => report.sent),
    completed,
    errorsByCode,
    latencyMs: latencySummaryOf(histogram),
    spectrum: spectrumOf(histogram),
    histogramBase64: encodeHistogram(histogram),
    perSecond,
    durationMs: Math.round(achievedWindowMs),
    ...(perWindow === undefined ? {} : { perWindow }),
    ...(operations === undefined ? {} : { operations }),
  }
  histogram.destroy()
  return result
}

/** The generator's own cost: CPU per worker and how late requests left, to judge the measurement. */
const generatorLine = (reports: ReadonlyArray<DoneReport>, runMs: number): string => {
  const lag = mergeHistograms(reports.map((report) => report.sendLagBase64))
  const cpuPercent = reports.map((report) => `${((report.cpuMicros / 1000 / runMs) * 100).toFixed(0)}%`).join(" ")
  const line = `generator: cpu per worker ${cpuPercent} of a core; send lag p50 ${(lag.getValueAtPercentile(50) / 1000).toFixed(2)} ms, p99 ${(lag.getValueAtPercentile(99) / 1000).toFixed(2)} ms, max ${(lag.maxValue / 1000).toFixed(2)} ms`
  lag.destroy()
  return line
}
