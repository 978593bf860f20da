/**
 * The report's three plots, built from a BenchReport: the latency percentile spectrum on
 * HdrHistogram's 1/(1-p) axis (one line per run, per step of an authorize-capture run, and per
 * baseline; journal ceilings, known only at p50/p99/p99.9, dashed), completed answers per second,
 * and p99 per second.
 */
import type { LoadResult } from "../load/plan.ts"
import { type Axis, linearAxis, lineChart, logAxis, type Series } from "./plots.ts"
import type { BenchReport, CeilingResult, LoadBaseline } from "./report.ts"

/** The label of one step's table row and spectrum line: the run's, then the operation. */
export const operationLabel = (runLabel: string, operation: string): string => `${runLabel} · ${operation}`

export const isLoadBaseline = (baseline: CeilingResult | LoadBaseline): baseline is LoadBaseline => "result" in baseline

/** The spectrum's x coordinate: 1/(1-p), so 90 %, 99 %, 99.9 % sit a decade apart. */
const spectrumX = (percentile: number): number => 1 / (1 - percentile / 100)

const spectrumTicks = [0, 50, 90, 99, 99.9, 99.99, 99.999, 99.9999].map((percentile) => ({
  value: spectrumX(percentile),
  label: `${percentile}%`,
}))

/** The 100 % point (the max) has no finite x: it is drawn one halving further right than the last finite point. */
const spectrumPoints = (result: Pick<LoadResult, "spectrum">) => {
  const finite = result.spectrum.filter((point) => point.percentile < 100)
  const lastX = finite.length > 0 ? spectrumX(finite[finite.length - 1]?.percentile ?? 0) : 1
  return result.spectrum.map((point) => ({
    x: point.percentile < 100 ? spectrumX(point.percentile) : lastX * 2,
    y: point.latencyMs,
  }))
}

const spectrumChart = (report: BenchReport): string => {
  const series: Array<Series> = report.runs.flatMap((run) => [
    { label: run.label, points: spectrumPoints(run.result) },
    ...(run.result.operations ?? []).map((operation) => ({
      label: operationLabel(run.label, operation.operation),
      points: spectrumPoints(operation),
    })),
  ])
  for (const baseline of report.baselines) {
    if (isLoadBaseline(baseline)) {
      series.push({ label: `${baseline.name} (baseline)`, points: spectrumPoints(baseline.result) })
    } else {
      const latency = baseline.appendLatencyMs
      const points = [
        { x: spectrumX(50), y: latency.p50 },
        { x: spectrumX(99), y: latency.p99 },
        { x: spectrumX(99.9), y: latency.p999 },
      ]
      series.push({ label: `${baseline.name} append`, points, sparse: true })
    }
  }
  const points = series.flatMap((line) => line.points)
  const xMax = Math.max(10_000, ...points.map((point) => point.x))
  const xAxis: Axis = {
    label: "percentile",
    scale: "log",
    min: 1,
    max: 10 ** Math.ceil(Math.log10(xMax)),
    ticks: spectrumTicks.filter((tick) => tick.value <= 10 ** Math.ceil(Math.log10(xMax)) * 1.0001),
  }
  const latencies = points.map((point) => point.y).filter((value) => value > 0)
  const yAxis = logAxis("latency (ms)", Math.min(...latencies, 1), Math.max(...latencies, 1))
  return lineChart({ title: "Latency by percentile (HdrHistogram spectrum)", x: xAxis, y: yAxis, series })
}

/** Runs and load baselines that have per-second figures, with their labels. */
const timedResults = (report: BenchReport): Array<{ readonly label: string; readonly result: LoadResult }> => [
  ...report.runs,
  ...report.baselines.filter(isLoadBaseline).map((baseline) => ({ label: baseline.name, result: baseline.result })),
]

const throughputChart = (report: BenchReport): string => {
  // Errors are not drawn: at this scale they would sit on the axis; the tables give them by code.
  const series: Array<Series> = timedResults(report).map(({ label, result }) => ({
    label,
    points: result.perSecond.map((second) => ({ x: second.second, y: second.completed })),
  }))
  const points = series.flatMap((line) => line.points)
  const xAxis = linearAxis("second of the run", Math.max(1, ...points.map((point) => point.x)))
  const yAxis = linearAxis("answers per second", Math.max(1, ...points.map((point) => point.y)))
  return lineChart({ title: "Throughput over time (completed per second)", x: xAxis, y: yAxis, series })
}

const p99Chart = (report: BenchReport): string => {
  const series: Array<Series> = timedResults(report).map(({ label, result }) => ({
    label,
    points: result.perSecond
      .filter((second) => second.completed > 0)
      .map((second) => ({ x: second.second, y: second.p99Ms })),
  }))
  const points = series.flatMap((line) => line.points)
  const latencies = points.map((point) => point.y).filter((value) => value > 0)
  const xAxis = linearAxis("second of the run", Math.max(1, ...points.map((point) => point.x)))
  const yAxis = logAxis("p99 latency (ms)", Math.min(...latencies, 1), Math.max(...latencies, 1))
  return lineChart({ title: "p99 latency per second", x: xAxis, y: yAxis, series })
}

export const reportCharts = (report: BenchReport) => ({
  spectrum: spectrumChart(report),
  throughput: throughputChart(report),
  p99: p99Chart(report),
})
