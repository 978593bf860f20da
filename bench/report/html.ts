/**
 * The report's HTML page: one self-contained file (inline CSS and SVG, no script, nothing fetched)
 * with the run's header, tables of runs (an authorize-capture run with a row per step under the
 * payment's), SLOs, baselines (the product as a fraction of each), the sweep and the profile, and
 * the three plots.
 */
import type { LoadResult } from "../load/plan.ts"
import { comparisonCells, comparisonHeaders, formatScaleOut } from "../runner/cluster-figures.ts"
import { isLoadBaseline, operationLabel, reportCharts } from "./charts.ts"
import { escapeXml, formatNumber } from "./plots.ts"
import type { BenchReport, ReportRun } from "./report.ts"

/** Figures align right so their digits line up; words align left. */
const numericPattern = /^-?[\d.]+[kM%]?$/

const cell = (value: string | number, className = ""): string => {
  const text = typeof value === "number" ? formatNumber(value) : value
  const classes = [numericPattern.test(text) ? "num" : "", className].filter((name) => name !== "").join(" ")
  return `<td${classes === "" ? "" : ` class="${classes}"`}>${escapeXml(text)}</td>`
}

const table = (headers: ReadonlyArray<string>, rows: ReadonlyArray<string>): string =>
  `<table><thead><tr>${headers.map((header) => `<th>${escapeXml(header)}</th>`).join("")}</tr></thead>` +
  `<tbody>${rows.join("\n")}</tbody></table>`

const milliseconds = (value: number): string => value.toFixed(value < 10 ? 2 : 1)

export const formatErrors = (errorsByCode: Readonly<Record<string, number>>): string => {
  const entries = Object.entries(errorsByCode).filter(([, count]) => count > 0)
  return entries.length === 0 ? "none" : entries.map(([code, count]) => `${code} ${count}`).join(", ")
}

const describeValue = (value: unknown): string => (typeof value === "string" ? value : JSON.stringify(value))

const definitionList = (object: object): string =>
  Object.keys(object).length === 0
    ? "<p>(none recorded)</p>"
    : `<dl>${Object.entries(object)
        .map(([key, value]) => `<dt>${escapeXml(key)}</dt><dd>${escapeXml(describeValue(value))}</dd>`)
        .join("")}</dl>`

/** What a row of figures shows: a run's result, or one step of an authorize-capture run. */
type RowFigures = Pick<LoadResult, "offeredRate" | "achievedRate" | "completed" | "latencyMs" | "errorsByCode">

const resultCells = (result: RowFigures): string =>
  [
    cell(result.offeredRate),
    cell(result.achievedRate),
    cell(result.completed),
    cell(milliseconds(result.latencyMs.p50)),
    cell(milliseconds(result.latencyMs.p90)),
    cell(milliseconds(result.latencyMs.p99)),
    cell(milliseconds(result.latencyMs.p999)),
    cell(milliseconds(result.latencyMs.max)),
    cell(formatErrors(result.errorsByCode), Object.keys(result.errorsByCode).length > 0 ? "warn" : ""),
  ].join("")

const resultHeaders = [
  "offered/s",
  "achieved/s",
  "completed",
  "p50 ms",
  "p90 ms",
  "p99 ms",
  "p99.9 ms",
  "max ms",
  "errors",
]

const runsTable = (report: BenchReport): string =>
  table(
    ["run", ...resultHeaders],
    report.runs.flatMap((run) => [
      `<tr>${cell(run.label)}${resultCells(run.result)}</tr>`,
      ...(run.result.operations ?? []).map(
        (operation) => `<tr>${cell(operationLabel(run.label, operation.operation))}${resultCells(operation)}</tr>`,
      ),
    ]),
  )

/** A figure to a fixed number of decimals; "n/a" where there is none (NaN, or null once read back from JSON). */
const decimals = (value: number | null, digits: number): string =>
  value !== null && Number.isFinite(value) ? value.toFixed(digits) : "n/a"

const megabytes = (bytes: number | null): string => decimals(bytes === null ? null : bytes / 1e6, 1)

const kilobytes = (bytes: number | null): string => decimals(bytes === null ? null : bytes / 1e3, 1)

const budgetHeaders = [
  "run",
  "transfers",
  "CPU µs/transfer",
  "CPU % of a core",
  "journal records/transfer",
  "journal commits/transfer",
  "transfers/commit",
  "snapshot part writes/transfer",
  "heap MB (end)",
  "heap kB/1,000 payments",
  "RSS MB (end)",
  "RSS kB/1,000 payments",
]

/** Where each run's budget went on the node: CPU, journal, snapshots and memory per transfer. */
const budgetTable = (runs: ReadonlyArray<ReportRun>): string =>
  table(
    budgetHeaders,
    runs.flatMap((run) => {
      const budget = run.budget
      if (budget === undefined) return []
      const cells = [
        cell(run.label),
        cell(budget.transfers),
        cell(decimals(budget.cpuMicrosPerTransfer, 1)),
        cell(decimals(budget.cpuCores * 100, 0)),
        cell(decimals(budget.journalRecordsPerTransfer, 2)),
        cell(decimals(budget.journalCommitsPerTransfer, 3)),
        cell(decimals(budget.transfersPerCommit, 1)),
        cell(decimals(budget.snapshotPartWritesPerTransfer, 3)),
        cell(megabytes(budget.heapUsedBytesEnd)),
        cell(kilobytes(budget.heapGrowthBytesPer1000)),
        cell(megabytes(budget.residentBytesEnd)),
        cell(kilobytes(budget.residentGrowthBytesPer1000)),
      ]
      return [`<tr>${cells.join("")}</tr>`]
    }),
  )

const windowHeaders = [
  "window",
  "from s",
  "to s",
  "offered/s",
  "achieved/s",
  "completed",
  "p50 ms",
  "p99 ms",
  "p99.9 ms",
  "max ms",
  "errors",
  "heap MB (end)",
  "heap MB (settled)",
  "heap MB (retained)",
  "RSS MB (end)",
  "CPU µs/transfer",
  "CPU % of a core",
]

/** A soak's windows: the generator's figures and the node's at each window's end. */
const windowsTable = (run: ReportRun): string =>
  `<p>${escapeXml(run.label)}</p>` +
  table(
    windowHeaders,
    (run.windows ?? []).map((window) => {
      const cells = [
        cell(window.number),
        cell(String(window.startMs / 1000)),
        cell(String(window.endMs / 1000)),
        cell(window.offeredRate),
        cell(window.achievedRate),
        cell(window.completed),
        cell(milliseconds(window.latencyMs.p50)),
        cell(milliseconds(window.latencyMs.p99)),
        cell(milliseconds(window.latencyMs.p999)),
        cell(milliseconds(window.latencyMs.max)),
        cell(window.errors, window.errors > 0 ? "warn" : ""),
        cell(megabytes(window.heapUsedBytesEnd)),
        cell(megabytes(window.heapUsedBytesSettled)),
        cell(megabytes(window.heapRetainedBytes)),
        cell(megabytes(window.residentBytesEnd)),
        cell(decimals(window.cpuMicrosPerTransfer, 1)),
        cell(decimals(window.cpuCores * 100, 0)),
      ]
      return `<tr>${cells.join("")}</tr>`
    }),
  )

const sloTable = (slo: NonNullable<BenchReport["slo"]>): string =>
  table(
    ["SLO", "target", "actual", "result"],
    slo.map(
      (item) =>
        `<tr>${cell(item.name)}${cell(item.target)}${cell(item.actual)}${cell(item.pass ? "PASS" : "FAIL", item.pass ? "pass" : "fail")}</tr>`,
    ),
  )

/**
 * The product's figures the baselines are compared with: the sustainable rate from the sweep when
 * there is one (the highest offered rate that met the SLO), else the first run's.
 */
export const productFigures = (
  report: BenchReport,
): { readonly source: string; readonly rate: number; readonly p99Ms: number } | undefined => {
  const passing = (report.sweep ?? []).filter((step) => step.meetsSlo)
  const best = passing.reduce<(typeof passing)[number] | undefined>(
    (highest, step) => (highest === undefined || step.rate > highest.rate ? step : highest),
    undefined,
  )
  if (best !== undefined) {
    const source = `sustainable rate (sweep: highest offered rate meeting the SLO, ${formatNumber(best.rate)}/s)`
    return { source, rate: best.result.achievedRate, p99Ms: best.result.latencyMs.p99 }
  }
  const run = report.runs[0]
  return run === undefined
    ? undefined
    : { source: `run "${run.label}"`, rate: run.result.achievedRate, p99Ms: run.result.latencyMs.p99 }
}

const percentOf = (part: number, whole: number): string => (whole > 0 ? `${((part / whole) * 100).toFixed(1)}%` : "n/a")

interface BaselineFigures {
  readonly kind: string
  readonly rate: number
  readonly unit: string
  readonly latencyMs: { readonly p50: number; readonly p99: number; readonly p999: number }
}

const baselineFigures = (baseline: BenchReport["baselines"][number]): BaselineFigures =>
  isLoadBaseline(baseline)
    ? {
        kind: "load (same generator)",
        rate: baseline.result.achievedRate,
        unit: "requests/s",
        latencyMs: baseline.result.latencyMs,
      }
    : {
        kind: "journal append",
        rate: baseline.recordsPerSecond,
        unit: "records/s",
        latencyMs: baseline.appendLatencyMs,
      }

const baselinesTable = (report: BenchReport): string => {
  const product = productFigures(report)
  const rows = report.baselines.map((baseline) => {
    const figures = baselineFigures(baseline)
    const rateShare = product === undefined ? "n/a" : percentOf(product.rate, figures.rate)
    const p99Share = product === undefined ? "n/a" : percentOf(product.p99Ms, figures.latencyMs.p99)
    return (
      `<tr>${cell(baseline.name)}${cell(figures.kind)}${cell(`${formatNumber(figures.rate)} ${figures.unit}`)}` +
      `${cell(milliseconds(figures.latencyMs.p50))}${cell(milliseconds(figures.latencyMs.p99))}` +
      `${cell(milliseconds(figures.latencyMs.p999))}${cell(rateShare)}${cell(p99Share)}</tr>`
    )
  })
  const caption =
    product === undefined
      ? "<p>No product run to compare with.</p>"
      : `<p>Product: ${escapeXml(product.source)}: ${formatNumber(product.rate)}/s at p99 ${milliseconds(product.p99Ms)} ms.</p>`
  const headers = [
    "baseline",
    "kind",
    "rate",
    "p50 ms",
    "p99 ms",
    "p99.9 ms",
    "product rate / baseline",
    "product p99 / baseline p99",
  ]
  return caption + table(headers, rows)
}

const sweepTable = (sweep: NonNullable<BenchReport["sweep"]>): string =>
  table(
    ["offered rate", ...resultHeaders, "meets SLO"],
    sweep.map(
      (step) =>
        `<tr>${cell(step.rate)}${resultCells(step.result)}${cell(step.meetsSlo ? "yes" : "no", step.meetsSlo ? "pass" : "fail")}</tr>`,
    ),
  )

/** The cluster sizes side by side (the same cells as the console's table), and the takeover when it was timed. */
const clusterSection = (cluster: NonNullable<BenchReport["cluster"]>): string => {
  const rows = cluster.comparison.map(
    (row) =>
      `<tr>${comparisonCells(row)
        .map((text) => cell(text))
        .join("")}</tr>`,
  )
  const takeover = cluster.takeover
  const takeoverText =
    takeover === undefined
      ? ""
      : `<p>Takeover: ${escapeXml(takeover.killedNodeId)} (1 of ${takeover.nodeCount}) was killed with SIGKILL under load; ` +
        (takeover.takeoverMs === null
          ? "the survivors did not serve every shard again in time."
          : `the survivors served every shard again after ${(takeover.takeoverMs / 1000).toFixed(1)} s.`) +
        ` From the kill on: achieved ${formatNumber(takeover.result.achievedRate)}/s, p99 ${milliseconds(takeover.result.latencyMs.p99)} ms, ` +
        `errors ${escapeXml(formatErrors(takeover.result.errorsByCode))}.</p>`
  const scaleOut = cluster.scaleOut
  const scaleOutText =
    scaleOut === undefined
      ? ""
      : `<p>${escapeXml(formatScaleOut(scaleOut))}. From the add on: achieved ${formatNumber(scaleOut.result.achievedRate)}/s, ` +
        `p99 ${milliseconds(scaleOut.result.latencyMs.p99)} ms, errors ${escapeXml(formatErrors(scaleOut.result.errorsByCode))}.</p>`
  return table(comparisonHeaders, rows) + scaleOutText + takeoverText
}

const profileTable = (profile: NonNullable<BenchReport["profile"]>): string =>
  table(
    ["self %", "function", "where"],
    profile.topFrames.map(
      (frame) => `<tr>${cell(frame.selfPercent.toFixed(1))}${cell(frame.name)}${cell(frame.url)}</tr>`,
    ),
  )

const style = `body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:20px}h2{font-size:16px;margin-top:28px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0;font-size:13px}th,td{border:1px solid #ddd;padding:3px 8px;text-align:left}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
.pass{color:#0a6b2d;font-weight:bold}.fail{color:#b00020;font-weight:bold}.warn{color:#9a5b00}
dl{display:grid;grid-template-columns:max-content auto;gap:2px 12px;font-size:13px}dt{font-weight:bold}dd{margin:0}
.chart{display:block;margin:12px 0}`

export const renderReportHtml = (report: BenchReport): string => {
  const charts = reportCharts(report)
  const sections = [
    `<h1>Benchmark ${escapeXml(report.scenario)}: ${escapeXml(report.mode)} mode</h1>`,
    `<p>Started ${escapeXml(report.startedAt)}.</p>`,
    `<h2>Machine</h2>${definitionList(report.machine)}`,
    `<h2>Settings</h2>${definitionList(report.settings)}`,
    `<h2>Runs</h2>${runsTable(report)}`,
    report.runs.some((run) => run.budget !== undefined)
      ? `<h2>Node budget per transfer</h2>${budgetTable(report.runs)}`
      : "",
    ...report.runs.filter((run) => run.windows !== undefined).map((run) => `<h2>Per window</h2>${windowsTable(run)}`),
    report.slo === undefined ? "" : `<h2>SLOs</h2>${sloTable(report.slo)}`,
    report.baselines.length === 0 ? "" : `<h2>Baselines</h2>${baselinesTable(report)}`,
    report.sweep === undefined ? "" : `<h2>Rate sweep</h2>${sweepTable(report.sweep)}`,
    report.cluster === undefined ? "" : `<h2>Cluster sizes at one rate</h2>${clusterSection(report.cluster)}`,
    `<h2>Plots</h2>${charts.spectrum}${charts.throughput}${charts.p99}`,
    report.profile === undefined ? "" : `<h2>CPU profile: top frames by self time</h2>${profileTable(report.profile)}`,
  ]
  return (
    `<!doctype html>\n<html lang="en"><head><meta charset="utf-8">` +
    `<title>${escapeXml(`${report.scenario} ${report.mode} ${report.startedAt}`)}</title><style>${style}</style></head>\n` +
    `<body>\n${sections.filter((section) => section !== "").join("\n")}\n</body></html>\n`
  )
}
