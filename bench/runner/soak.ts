/**
 * The soak: a long run at a fixed rate, reported per window (a minute by default) and judged
 * against the targets: heap after the first window flat within 10 %, resident memory
 * growth from the end of the first window to the end of at most 100 MB, and a last window whose
 * p99 is no worse than the first's. The heap is judged by what the node retains: its old
 * generation right after the latest full collection before each window's end (the node's
 * `nodejs_heap_retained_bytes`). One reading of the heap in use lands anywhere on the collector's
 * sawtooth: the young generation spans 64 MB and the old one fills with promoted garbage until the
 * next full collection, so readings a minute apart differ by 100 MB with nothing retained. The
 * settled reading (the lowest of the window's last seconds) and the single reading at the end are
 * shown beside it. The rows and the verdicts are pure.
 */
import type { WindowFigures } from "../load/windows.ts"
import { fixed, megabytes, type NodeBudget } from "./node-budget.ts"
import type { SloVerdict } from "./slo.ts"

/** From the issue: "heap after the first minute flat within 10%, resident memory growth <= 100 MB". */
export const soakTargets = { heapDeviationFractionMax: 0.1, residentGrowthBytesMax: 100_000_000 }

export type SoakTargets = typeof soakTargets

/** How often the node's heap is read during a soak, to see past the young generation's sawtooth. */
export const heapPollMs = 1_000

/** The end of a window whose lowest heap reading stands for the heap there: its last 10 s (half, if shorter). */
export const settledTailMs = (windowMs: number): number => Math.min(10_000, windowMs / 2)

export interface HeapReading {
  /** From the start of the run. */
  readonly offsetMs: number
  readonly heapUsedBytes: number
  /** The node's old generation after its latest full collection (NaN before the first). */
  readonly heapRetainedBytes: number
}

/**
 * The heap retained at a window's end: the latest finite retained reading taken by then (up to one
 * poll after the end; for the last window, any, taken while the run drains). NaN without one.
 */
export const retainedHeapOf = (readings: ReadonlyArray<HeapReading>, endMs: number, isLast: boolean): number => {
  const untilMs = isLast ? Number.POSITIVE_INFINITY : endMs + heapPollMs
  let latest: HeapReading | undefined
  for (const reading of readings) {
    if (reading.offsetMs > untilMs || !Number.isFinite(reading.heapRetainedBytes)) continue
    if (latest === undefined || reading.offsetMs >= latest.offsetMs) latest = reading
  }
  return latest?.heapRetainedBytes ?? Number.NaN
}

/**
 * The heap at a window's end once garbage is set aside: the lowest reading in the window's last
 * `tailMs` (a reading up to one poll after the end counts: the boundary sample is taken then; for
 * the last window, every later one, taken while the run drains). A single reading at the end
 * lands anywhere on the young generation's sawtooth, tens of MB apart from one minute to the next
 * with nothing retained; the lowest of several readings is after a scavenge. NaN without readings.
 */
export const settledHeapOf = (
  readings: ReadonlyArray<HeapReading>,
  endMs: number,
  tailMs: number,
  isLast: boolean,
): number => {
  const untilMs = isLast ? Number.POSITIVE_INFINITY : endMs + heapPollMs
  const inTail = readings.filter(
    (reading) =>
      reading.offsetMs >= endMs - tailMs && reading.offsetMs <= untilMs && Number.isFinite(reading.heapUsedBytes),
  )
  return inTail.length === 0 ? Number.NaN : Math.min(...inTail.map((reading) => reading.heapUsedBytes))
}

/** One window of a soak: the generator's figures and the node's, sampled at the window's end. */
export interface SoakWindow {
  /** 1-based, as printed. */
  readonly number: number
  readonly startMs: number
  readonly endMs: number
  readonly offeredRate: number
  readonly achievedRate: number
  readonly completed: number
  readonly errors: number
  readonly latencyMs: { readonly p50: number; readonly p99: number; readonly p999: number; readonly max: number }
  /** The single reading at the window's end. */
  readonly heapUsedBytesEnd: number
  /** The lowest reading in the window's last seconds (`settledHeapOf`). */
  readonly heapUsedBytesSettled: number
  /** The old generation after the latest full collection (`retainedHeapOf`): what the heap verdict judges. */
  readonly heapRetainedBytes: number
  readonly residentBytesEnd: number
  readonly cpuMicrosPerTransfer: number
  readonly cpuCores: number
}

export const soakWindowOf = (
  figures: WindowFigures,
  budget: NodeBudget,
  heap: { readonly settledBytes: number; readonly retainedBytes: number },
): SoakWindow => ({
  number: figures.index + 1,
  startMs: figures.startMs,
  endMs: figures.endMs,
  offeredRate: figures.offeredRate,
  achievedRate: figures.achievedRate,
  completed: figures.completed,
  errors: figures.errors,
  latencyMs: figures.latencyMs,
  heapUsedBytesEnd: budget.heapUsedBytesEnd,
  heapUsedBytesSettled: heap.settledBytes,
  heapRetainedBytes: heap.retainedBytes,
  residentBytesEnd: budget.residentBytesEnd,
  cpuMicrosPerTransfer: budget.cpuMicrosPerTransfer,
  cpuCores: budget.cpuCores,
})

const percent = (fraction: number): string => `${fraction >= 0 ? "+" : ""}${(fraction * 100).toFixed(1)}%`

/** The later window whose heap strays furthest from window 1's, by the figure `heapOf` picks. */
const worstHeapDeviation = (
  first: SoakWindow,
  later: ReadonlyArray<SoakWindow>,
  heapOf: (window: SoakWindow) => number,
) => {
  const deviations = later.map((window) => ({ window, fraction: (heapOf(window) - heapOf(first)) / heapOf(first) }))
  const worst = deviations.reduce((most, candidate) =>
    Math.abs(candidate.fraction) > Math.abs(most.fraction) ? candidate : most,
  )
  return { deviations, worst }
}

const heapVerdict = (first: SoakWindow, later: ReadonlyArray<SoakWindow>, targets: SoakTargets): SloVerdict => {
  const retained = worstHeapDeviation(first, later, (window) => window.heapRetainedBytes)
  const settled = worstHeapDeviation(first, later, (window) => window.heapUsedBytesSettled).worst
  const atEnd = worstHeapDeviation(first, later, (window) => window.heapUsedBytesEnd).worst
  const { window, fraction } = retained.worst
  return {
    name: "heap after window 1 flat",
    target:
      `retained heap within ±${targets.heapDeviationFractionMax * 100}% of window 1's ` +
      `${megabytes(first.heapRetainedBytes)} in every later window`,
    actual:
      `worst ${percent(fraction)} (window ${window.number}: ${megabytes(window.heapRetainedBytes)}); ` +
      `settled readings: worst ${percent(settled.fraction)} (window ${settled.window.number}); ` +
      `single readings at the ends: worst ${percent(atEnd.fraction)} (window ${atEnd.window.number})`,
    // NaN (a heap the node did not report) fails: no figure is no pass.
    pass: retained.deviations.every((deviation) => Math.abs(deviation.fraction) <= targets.heapDeviationFractionMax),
  }
}

const residentVerdict = (first: SoakWindow, last: SoakWindow, targets: SoakTargets): SloVerdict => {
  const growthBytes = last.residentBytesEnd - first.residentBytesEnd
  return {
    name: "resident memory growth from the end of window 1",
    target: `<= ${megabytes(targets.residentGrowthBytesMax)}`,
    actual: `${growthBytes >= 0 ? "+" : ""}${megabytes(growthBytes)} (${megabytes(first.residentBytesEnd)} -> ${megabytes(last.residentBytesEnd)})`,
    pass: growthBytes <= targets.residentGrowthBytesMax,
  }
}

const p99Verdict = (first: SoakWindow, last: SoakWindow): SloVerdict => ({
  name: `p99 of the last window (${last.number}) against the first`,
  target: `<= ${first.latencyMs.p99.toFixed(2)} ms (window 1)`,
  actual: `${last.latencyMs.p99.toFixed(2)} ms`,
  // A window with no answers has p99 0, which must not pass for "no worse".
  pass: last.completed > 0 && last.latencyMs.p99 <= first.latencyMs.p99,
})

/** The three soak verdicts; with fewer than two windows there is nothing to compare, and each fails saying so. */
export const judgeSoak = (
  windows: ReadonlyArray<SoakWindow>,
  targets: SoakTargets = soakTargets,
): ReadonlyArray<SloVerdict> => {
  const first = windows[0]
  const last = windows.at(-1)
  if (first === undefined || last === undefined || windows.length < 2) {
    const actual = `${windows.length} window(s): at least 2 are needed`
    return [
      "heap after window 1 flat",
      "resident memory growth from the end of window 1",
      "p99 of the last window",
    ].map((name) => ({ name, target: "at least 2 windows", actual, pass: false }))
  }
  return [heapVerdict(first, windows.slice(1), targets), residentVerdict(first, last, targets), p99Verdict(first, last)]
}

const clock = (ms: number): string => {
  const seconds = Math.round(ms / 1000)
  return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`
}

/** One printed row per window. */
export const formatSoakWindow = (window: SoakWindow): string =>
  `window ${String(window.number).padStart(3)}  ${clock(window.startMs)}-${clock(window.endMs)}  ` +
  `achieved ${window.achievedRate}/s of ${window.offeredRate}/s  p50 ${window.latencyMs.p50.toFixed(2)} ms  ` +
  `p99 ${window.latencyMs.p99.toFixed(2)} ms  p99.9 ${window.latencyMs.p999.toFixed(2)} ms  errors ${window.errors}  ` +
  `heap ${megabytes(window.heapUsedBytesEnd)} (settled ${megabytes(window.heapUsedBytesSettled)}, ` +
  `retained ${megabytes(window.heapRetainedBytes)})  ` +
  `RSS ${megabytes(window.residentBytesEnd)}  ` +
  `CPU ${fixed(window.cpuMicrosPerTransfer, 1)} µs/transfer (${fixed(window.cpuCores * 100, 0)}% of a core)`
