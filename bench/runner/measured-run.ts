/**
 * A load run against the product with the node's budget measured around it: the node is sampled
 * when warm-up ends (on the start clock the generator workers share), at every window boundary
 * when the plan has windows, and once more when the run has drained. The budget covers warm-up's
 * end to the drain, so it includes the snapshot writes and journal commits the window's transfers
 * cause after they are answered. With windows, the node's heap is also read once a second, so each
 * window's heap can be told apart from the garbage of the moment (see `settledHeapOf`).
 */
import type { LoadPlan, LoadResult } from "../load/plan.ts"
import { runLoad } from "../load/run-load.ts"
import { type WindowLayout, windowBoundsMs, windowCountOf, windowLayoutOf } from "../load/windows.ts"
import { budgetBetween, type NodeBudget, type NodeSample } from "./node-budget.ts"
import {
  type HeapReading,
  heapPollMs,
  retainedHeapOf,
  type SoakWindow,
  settledHeapOf,
  settledTailMs,
  soakWindowOf,
} from "./soak.ts"
import type { TargetNode } from "./target-node.ts"

export interface MeasuredRun {
  readonly result: LoadResult
  readonly budget: NodeBudget
  /** Only for a plan with windows. */
  readonly windows?: ReadonlyArray<SoakWindow>
}

/**
 * When the node is sampled during the run, in ms from its start: warm-up's end (rounded up to the
 * second, where `perSecond` starts counting), then each window's start.
 */
export const sampleOffsetsMs = (plan: LoadPlan): ReadonlyArray<number> => {
  const layout = windowLayoutOf(plan)
  if (layout === undefined) return [Math.ceil(plan.warmupMs / 1000) * 1000]
  return Array.from({ length: windowCountOf(layout) }, (_, index) => windowBoundsMs(layout, index).startMs)
}

/**
 * Transfers answered ok between the first sample and the end, counted by when the answer arrived,
 * as the node's counters count their work. `result.completed` counts by due time instead, and
 * leaves out requests due during warm-up and answered after it: behind a backlog those are
 * thousands, whose journal records and CPU the samples do include.
 */
export const answeredAfterWarmup = (result: Pick<LoadResult, "perSecond">): number =>
  result.perSecond.reduce((total, second) => total + second.completed, 0)

/** Window k runs from sample k to sample k + 1; the last, and any whose end was never sampled, to the final one. */
const windowsOf = (
  layout: WindowLayout,
  perWindow: NonNullable<LoadResult["perWindow"]>,
  starts: ReadonlyArray<NodeSample>,
  end: NodeSample,
  heap: ReadonlyArray<HeapReading>,
): ReadonlyArray<SoakWindow> =>
  perWindow.map((figures, index) => {
    const budget = budgetBetween(starts[index] ?? end, starts[index + 1] ?? end, figures.completed)
    const isLast = index === perWindow.length - 1
    const settledBytes = settledHeapOf(heap, figures.endMs, settledTailMs(layout.windowMs), isLast)
    const retainedBytes = retainedHeapOf(heap, figures.endMs, isLast)
    return soakWindowOf(figures, budget, { settledBytes, retainedBytes })
  })

/** Reads that run in the background; awaited at the end, so a failure must not count as unhandled meanwhile. */
const started = <A>(promise: Promise<A>): Promise<A> => {
  promise.catch(() => {})
  return promise
}

export const runMeasured = async (
  node: Pick<TargetNode, "sample" | "metrics">,
  plan: LoadPlan,
  onProgress?: (line: string) => void,
): Promise<MeasuredRun> => {
  const layout = windowLayoutOf(plan)
  const offsetsMs = sampleOffsetsMs(plan)
  const samples: Array<Promise<NodeSample>> = []
  // At most one reading a second for the run's length (windows bound that length).
  const heapReadings: Array<Promise<HeapReading>> = []
  const timers: Array<NodeJS.Timeout> = []
  let heapPoll: NodeJS.Timeout | undefined
  let startAtEpochMs = 0
  const readHeap = () => {
    const offsetMs = Date.now() - startAtEpochMs
    heapReadings.push(
      started(
        node.metrics().then((metrics) => ({
          offsetMs,
          heapUsedBytes: metrics.nodejs_heap_used_bytes ?? Number.NaN,
          heapRetainedBytes: metrics.nodejs_heap_retained_bytes ?? Number.NaN,
        })),
      ),
    )
  }
  const onStart = (epochMs: number) => {
    startAtEpochMs = epochMs
    offsetsMs.forEach((offsetMs, index) => {
      const delayMs = Math.max(0, epochMs + offsetMs - Date.now())
      timers.push(setTimeout(() => (samples[index] = started(node.sample())), delayMs))
    })
    if (layout !== undefined) heapPoll = setInterval(readHeap, heapPollMs)
  }
  try {
    const result = await runLoad(plan, onProgress, onStart)
    clearInterval(heapPoll)
    const end = await node.sample()
    if (layout !== undefined) readHeap()
    // A boundary the run never reached (it ended early) has no sample; the end stands in for it.
    const starts = await Promise.all(offsetsMs.map((_, index) => samples[index] ?? Promise.resolve(end)))
    const budget = budgetBetween(starts[0] ?? end, end, answeredAfterWarmup(result))
    if (layout === undefined || result.perWindow === undefined) return { result, budget }
    const heap = await Promise.all(heapReadings)
    return { result, budget, windows: windowsOf(layout, result.perWindow, starts, end, heap) }
  } finally {
    for (const timer of timers) clearTimeout(timer)
    clearInterval(heapPoll)
  }
}
