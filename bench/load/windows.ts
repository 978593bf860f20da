/**
 * Per-window figures of a long run (a soak): the per-second counts and latency histograms the
 * parent already merges, folded into windows of `windowMs` that tile the measured part of the run,
 * [warmupMs, durationMs). Only the window being filled holds a live histogram; a window left
 * behind keeps its compressed encoding (a few kilobytes), and the number of windows is capped, so
 * a ten-minute run costs the parent no more memory than a short one.
 */
import type * as hdr from "hdr-histogram-js"
import { encodeHistogram, latencySummaryOf, mergeHistograms } from "./histograms.ts"
import type { LoadPlan } from "./plan.ts"

/** More windows than this is a mistake in the options (a 1 s window over hours), not a soak. */
export const windowsMax = 1_000

export interface WindowLayout {
  readonly warmupMs: number
  readonly durationMs: number
  readonly windowMs: number
}

/** One window's figures; answers count in the window in which they arrived. */
export interface WindowFigures {
  /** 0-based. */
  readonly index: number
  /** From the start of the run, like the plan's times; the last window may be shorter. */
  readonly startMs: number
  readonly endMs: number
  readonly due: number
  readonly completed: number
  readonly errors: number
  readonly offeredRate: number
  readonly achievedRate: number
  readonly latencyMs: { readonly p50: number; readonly p99: number; readonly p999: number; readonly max: number }
  /** Merged, compressed (hdr encodeIntoCompressedBase64), microseconds; "" when nothing was answered. */
  readonly histogramBase64: string
}

export const windowCountOf = (layout: WindowLayout): number =>
  Math.ceil((layout.durationMs - layout.warmupMs) / layout.windowMs)

/** Windows are whole seconds long and start on a second, because the seconds they are built from do. */
export const validateWindowLayout = (layout: WindowLayout): void => {
  if (!(Number.isInteger(layout.windowMs) && layout.windowMs >= 1000 && layout.windowMs % 1000 === 0)) {
    throw new Error(`windowMs must be a whole number of seconds, at least 1000, not ${layout.windowMs}`)
  }
  if (layout.warmupMs % 1000 !== 0) {
    throw new Error(`with windows, warmupMs must be a whole number of seconds, not ${layout.warmupMs}`)
  }
  const count = windowCountOf(layout)
  if (count > windowsMax) throw new Error(`${count} windows of ${layout.windowMs} ms: at most ${windowsMax}`)
}

export const windowLayoutOf = (plan: LoadPlan): WindowLayout | undefined =>
  plan.windowMs === undefined
    ? undefined
    : { warmupMs: plan.warmupMs, durationMs: plan.durationMs, windowMs: plan.windowMs }

/**
 * The window of the second that starts at `second * 1000` ms, or undefined during warm-up (the same
 * seconds `perSecond` leaves out). Answers arriving after `durationMs`, while the run drains, count
 * in the last window.
 */
export const windowIndexOf = (layout: WindowLayout, second: number): number | undefined => {
  const sinceWarmupMs = second * 1000 - layout.warmupMs
  if (sinceWarmupMs < 0) return undefined
  return Math.min(windowCountOf(layout) - 1, Math.floor(sinceWarmupMs / layout.windowMs))
}

/** Start and end of window `index` in ms from the start of the run. */
export const windowBoundsMs = (layout: WindowLayout, index: number): { startMs: number; endMs: number } => {
  const startMs = layout.warmupMs + index * layout.windowMs
  return { startMs, endMs: Math.min(layout.durationMs, startMs + layout.windowMs) }
}

export interface SecondCounts {
  readonly due: number
  readonly completed: number
  readonly errors: number
}

interface Accumulated {
  due: number
  completed: number
  errors: number
  histogramBase64: string
}

/**
 * Folds closed seconds into windows. Seconds normally arrive in order; one that arrives late for
 * a window already left behind reopens that window (decode, add, encode), so no answer is lost.
 */
export class WindowAggregate {
  private readonly windows: Array<Accumulated>
  private open: { readonly index: number; readonly histogram: hdr.Histogram } | undefined

  constructor(private readonly layout: WindowLayout) {
    validateWindowLayout(layout)
    this.windows = Array.from({ length: windowCountOf(layout) }, () => ({
      due: 0,
      completed: 0,
      errors: 0,
      histogramBase64: "",
    }))
  }

  /** Adds one second's counts and its merged histogram (not kept: the caller may destroy it). */
  add(second: number, counts: SecondCounts, histogram: hdr.Histogram): void {
    const index = windowIndexOf(this.layout, second)
    if (index === undefined) return
    const window = this.windows[index] as Accumulated
    window.due += counts.due
    window.completed += counts.completed
    window.errors += counts.errors
    if (histogram.totalCount === 0) return
    this.histogramOf(index).add(histogram)
  }

  /** Whether a window is being filled now: at most one live histogram at any time. */
  hasLiveHistogram(): boolean {
    return this.open !== undefined
  }

  /** Closes the window being filled and returns every window's figures. */
  finish(): ReadonlyArray<WindowFigures> {
    this.closeOpen()
    return this.windows.map((window, index) => this.figuresOf(index, window))
  }

  private histogramOf(index: number): hdr.Histogram {
    if (this.open?.index === index) return this.open.histogram
    this.closeOpen()
    const histogram = mergeHistograms([(this.windows[index] as Accumulated).histogramBase64])
    this.open = { index, histogram }
    return histogram
  }

  private closeOpen(): void {
    if (this.open === undefined) return
    const window = this.windows[this.open.index] as Accumulated
    window.histogramBase64 = encodeHistogram(this.open.histogram)
    this.open.histogram.destroy()
    this.open = undefined
  }

  private figuresOf(index: number, window: Accumulated): WindowFigures {
    const { startMs, endMs } = windowBoundsMs(this.layout, index)
    const seconds = (endMs - startMs) / 1000
    const histogram = mergeHistograms([window.histogramBase64])
    const summary = latencySummaryOf(histogram)
    histogram.destroy()
    return {
      index,
      startMs,
      endMs,
      due: window.due,
      completed: window.completed,
      errors: window.errors,
      offeredRate: Math.round(window.due / seconds),
      achievedRate: Math.round(window.completed / seconds),
      latencyMs: { p50: summary.p50, p99: summary.p99, p999: summary.p999, max: summary.max },
      histogramBase64: window.histogramBase64,
    }
  }
}
