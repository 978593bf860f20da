/**
 * A benchmark run's report: the JSON record of everything measured (exactly the BenchReport) and
 * a self-contained HTML page beside it, with tables and inline SVG plots (latency percentile
 * spectrum, completed per second, p99 per second), so a person can look rather than read.
 * Written to `bench/results/<YYYY-MM-DD>-<scenario>-<mode>.json` and `.html`.
 */
import { mkdir, writeFile } from "node:fs/promises"
import { join } from "node:path"
import type { CeilingResult } from "../baselines/ceiling.ts"
import type { LoadResult } from "../load/plan.ts"
import type { ClusterComparisonRow, ScaleOutFigures, TakeoverFigures } from "../runner/cluster-figures.ts"
import type { NodeBudget } from "../runner/node-budget.ts"
import type { SoakWindow } from "../runner/soak.ts"
import { renderReportHtml } from "./html.ts"

export type { CeilingResult } from "../baselines/ceiling.ts"
export type { NodeBudget } from "../runner/node-budget.ts"
export type { SoakWindow } from "../runner/soak.ts"

/** One load run against the product (or a step of a sweep), with what it cost the node when measured. */
export interface ReportRun {
  readonly label: string
  readonly result: LoadResult
  /** The node's CPU, journal, snapshot and memory figures per transfer over the measured window. */
  readonly budget?: NodeBudget
  /** Per window (a soak's minutes), when the run had windows. */
  readonly windows?: ReadonlyArray<SoakWindow>
}

export interface LoadBaseline {
  readonly name: string
  readonly result: LoadResult
}

export interface BenchReport {
  readonly scenario: string
  readonly mode: string
  readonly startedAt: string
  readonly machine: object
  readonly settings: object
  readonly runs: ReadonlyArray<ReportRun>
  readonly baselines: ReadonlyArray<CeilingResult | LoadBaseline>
  readonly sweep?: ReadonlyArray<{
    readonly rate: number
    readonly result: LoadResult
    readonly meetsSlo: boolean
    readonly budget?: NodeBudget
  }>
  readonly slo?: ReadonlyArray<{
    readonly name: string
    readonly target: string
    readonly actual: string
    readonly pass: boolean
  }>
  readonly profile?: {
    readonly topFrames: ReadonlyArray<{ readonly name: string; readonly url: string; readonly selfPercent: number }>
  }
  /** Only for a run against clusters (--nodes, --nodes-series): each size at the same rate, the scale-out and the takeover. */
  readonly cluster?: {
    readonly comparison: ReadonlyArray<ClusterComparisonRow>
    readonly takeover?: TakeoverFigures
    readonly scaleOut?: ScaleOutFigures
  }
}

/** `bench/results/2025-01-31-uniform-embedded` from the run's start date (UTC), the scenario and the mode. */
export const reportBasePath = (report: BenchReport, directory: string): string => {
  const date = Number.isNaN(Date.parse(report.startedAt))
    ? new Date().toISOString().slice(0, 10)
    : new Date(report.startedAt).toISOString().slice(0, 10)
  const scenario = report.scenario.replace(/[^A-Za-z0-9._-]+/g, "-") || "scenario"
  // The mode is in the name too, so the same scenario run in both modes on one day keeps both reports.
  const mode = report.mode.replace(/[^A-Za-z0-9._-]+/g, "-")
  return join(directory, `${date}-${scenario}-${mode}`)
}

export const writeReport = async (
  report: BenchReport,
  directory = "bench/results",
): Promise<{ jsonPath: string; htmlPath: string }> => {
  await mkdir(directory, { recursive: true })
  const basePath = reportBasePath(report, directory)
  const jsonPath = `${basePath}.json`
  const htmlPath = `${basePath}.html`
  await writeFile(jsonPath, `${JSON.stringify(report, null, 2)}\n`)
  await writeFile(htmlPath, renderReportHtml(report))
  return { jsonPath, htmlPath }
}
