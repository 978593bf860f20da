/**
 * What the node process spends outside the product's own code, for the metrics endpoint: garbage
 * collection pauses by kind (scavenges of the young generation, mark-compact of the old one), and
 * the event loop's delay (how late a timer that should fire every 10 ms fires). Both hold every
 * answer waiting, so they explain a latency tail that the product's own figures do not.
 */
import { constants, type IntervalHistogram, monitorEventLoopDelay, PerformanceObserver } from "node:perf_hooks"
import { getHeapSpaceStatistics } from "node:v8"
import { DurationHistogram } from "../actors/duration-histogram.ts"

const kindNames: ReadonlyMap<number, string> = new Map([
  [constants.NODE_PERFORMANCE_GC_MINOR, "minor"],
  [constants.NODE_PERFORMANCE_GC_MAJOR, "major"],
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL, "incremental"],
  [constants.NODE_PERFORMANCE_GC_WEAKCB, "weakcb"],
])

/** Pauses by kind, since the observer started; one histogram per kind, so bounded. */
export const gcPauses = new Map<string, DurationHistogram>()

/**
 * The old generation's bytes in use right after the latest full (mark-compact) collection: what
 * the process keeps, without the garbage of the moment. Heap in use at any instant lands anywhere
 * on the collector's sawtooth (the young generation alone spans 64 MB here); this is the figure
 * that grows if something is retained. NaN until the first full collection.
 */
export let heapRetainedBytes = Number.NaN

const oldGenerationBytes = (): number =>
  getHeapSpaceStatistics()
    .filter((space) => space.space_name !== "new_space")
    .reduce((total, space) => total + space.space_used_size, 0)

let observer: PerformanceObserver | undefined
let loopDelay: IntervalHistogram | undefined

const loopResolutionMs = 10

/**
 * The event loop's delay since the process started observing, in milliseconds, at a few
 * percentiles: how much later than its 10 ms the sampling timer ran (Node records the whole
 * interval, so the resolution is taken off).
 */
export const eventLoopDelayMs = (): { readonly p50: number; readonly p99: number; readonly max: number } => {
  const late = (nanoseconds: number | undefined) => Math.max(0, (nanoseconds ?? 0) / 1e6 - loopResolutionMs)
  return { p50: late(loopDelay?.percentile(50)), p99: late(loopDelay?.percentile(99)), max: late(loopDelay?.max) }
}

/** Starts observing, once per process. */
export const observeProcess = (): void => {
  if (observer !== undefined) return
  loopDelay = monitorEventLoopDelay({ resolution: loopResolutionMs })
  loopDelay.enable()
  observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      // `detail.kind` says which collection it was (Node 16+); the type declarations omit it.
      const detail = (entry as unknown as { readonly detail?: { readonly kind?: number } }).detail
      const kind = kindNames.get(detail?.kind ?? -1) ?? "other"
      let histogram = gcPauses.get(kind)
      if (histogram === undefined) {
        histogram = new DurationHistogram()
        gcPauses.set(kind, histogram)
      }
      histogram.record(entry.duration)
      if (kind === "major") heapRetainedBytes = oldGenerationBytes()
    }
  })
  observer.observe({ entryTypes: ["gc"] })
}
