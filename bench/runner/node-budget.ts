/**
 * Where the node's budget goes over a measured window: samples of the node process (CPU of all its
 * threads from /proc/<pid>/stat, resident memory from /proc, the counters and heap of its
 * `GET /metrics`) taken before and after the window, and what they come to per transfer answered
 * in it. The parsing and the arithmetic are pure, so the unit tests check them without a node.
 */
import { execFileSync } from "node:child_process"
import { availableParallelism } from "node:os"
import type { SloVerdict } from "./slo.ts"

/** One look at the node process. Counters are totals since the node started. */
export interface NodeSample {
  /** performance.now() of the sampling process when the sample was taken. */
  readonly atMs: number
  /** User + system CPU of the whole process (every thread). */
  readonly cpuSeconds: number
  readonly residentBytes: number
  readonly heapUsedBytes: number
  readonly journalCommits: number
  readonly journalRecords: number
  readonly snapshotPartWrites: number
  readonly entriesInMemory: number
  /** Entity versions the snapshot store does not have yet: saved entries are the ones that may leave memory. */
  readonly snapshotUnsavedEntities: number
}

/** What a window cost the node, per transfer answered ok in it; NaN (null in JSON) when there were none. */
export interface NodeBudget {
  readonly windowMs: number
  readonly transfers: number
  readonly cpuSeconds: number
  readonly cpuMicrosPerTransfer: number
  /** CPU seconds per wall-clock second: 1 is one core kept busy. */
  readonly cpuCores: number
  readonly journalRecordsPerTransfer: number
  readonly journalCommitsPerTransfer: number
  readonly transfersPerCommit: number
  /** Snapshot segment parts written (one store write in LMDB, two items in DynamoDB). */
  readonly snapshotPartWritesPerTransfer: number
  readonly heapUsedBytesEnd: number
  readonly residentBytesEnd: number
  readonly heapGrowthBytesPer1000: number
  readonly residentGrowthBytesPer1000: number
  readonly entriesInMemoryEnd: number
  readonly snapshotUnsavedEntitiesEnd: number
}

export interface ProcessCpuTicks {
  readonly userTicks: number
  readonly systemTicks: number
}

/**
 * utime and stime (fields 14 and 15, in clock ticks) of a /proc/<pid>/stat line. They cover every
 * thread of the process. The command name (field 2) is in parentheses and may itself hold spaces
 * and parentheses, so fields are counted from the last ")".
 */
export const parseProcStat = (text: string): ProcessCpuTicks => {
  const commandEnd = text.lastIndexOf(")")
  if (commandEnd < 0) throw new Error(`not a /proc/<pid>/stat line: ${text.slice(0, 80)}`)
  // fields[0] is field 3 (the state).
  const fields = text
    .slice(commandEnd + 1)
    .trim()
    .split(/\s+/)
  const userTicks = Number(fields[14 - 3])
  const systemTicks = Number(fields[15 - 3])
  if (!Number.isInteger(userTicks) || userTicks < 0) throw new Error(`bad utime in /proc/<pid>/stat: ${fields[11]}`)
  if (!Number.isInteger(systemTicks) || systemTicks < 0) throw new Error(`bad stime in /proc/<pid>/stat: ${fields[12]}`)
  return { userTicks, systemTicks }
}

let clockTicks: number | undefined

/** The kernel's clock tick (`getconf CLK_TCK`), in which /proc reports CPU time; 100 on Linux if getconf is missing. */
export const clockTicksPerSecond = (): number => {
  if (clockTicks !== undefined) return clockTicks
  let ticks = 100
  try {
    const reported = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim())
    if (Number.isInteger(reported) && reported > 0) ticks = reported
  } catch {
    // No getconf: every Linux the suite runs on uses USER_HZ = 100.
  }
  clockTicks = ticks
  return ticks
}

export const cpuSecondsOf = (ticks: ProcessCpuTicks, ticksPerSecond: number): number =>
  (ticks.userTicks + ticks.systemTicks) / ticksPerSecond

const metricOf = (metrics: Readonly<Record<string, number>>, name: string): number => metrics[name] ?? Number.NaN

/** A sample from what was read: CPU and RSS from /proc, the rest from the node's `/metrics`. */
export const nodeSampleOf = (
  atMs: number,
  cpuSeconds: number,
  residentBytes: number,
  metrics: Readonly<Record<string, number>>,
): NodeSample => ({
  atMs,
  cpuSeconds,
  residentBytes,
  heapUsedBytes: metricOf(metrics, "nodejs_heap_used_bytes"),
  journalCommits: metricOf(metrics, "payments_journal_commits_total"),
  journalRecords: metricOf(metrics, "payments_journal_records_total"),
  snapshotPartWrites: metricOf(metrics, "payments_snapshot_part_writes_total"),
  entriesInMemory: metricOf(metrics, "payments_entries_in_memory"),
  snapshotUnsavedEntities: metricOf(metrics, "payments_snapshot_unsaved_entities"),
})

/** NaN rather than Infinity when nothing was answered: "no figure", not "infinitely expensive". */
const per = (amount: number, count: number): number => (count > 0 ? amount / count : Number.NaN)

/** The budget of the window between two samples of the same node, `transfers` answered ok in it. */
export const budgetBetween = (before: NodeSample, after: NodeSample, transfers: number): NodeBudget => {
  if (!(after.atMs >= before.atMs)) throw new Error("budgetBetween: the samples are out of order")
  // A process's CPU time never goes back; if it does, the samples are of two processes.
  if (!(after.cpuSeconds >= before.cpuSeconds)) throw new Error("budgetBetween: CPU time went back")
  if (!(Number.isInteger(transfers) && transfers >= 0)) throw new Error(`budgetBetween: transfers ${transfers}`)
  const windowMs = after.atMs - before.atMs
  const cpuSeconds = after.cpuSeconds - before.cpuSeconds
  const commits = after.journalCommits - before.journalCommits
  return {
    windowMs: Math.round(windowMs),
    transfers,
    cpuSeconds,
    cpuMicrosPerTransfer: per(cpuSeconds * 1e6, transfers),
    cpuCores: per(cpuSeconds * 1000, windowMs),
    journalRecordsPerTransfer: per(after.journalRecords - before.journalRecords, transfers),
    journalCommitsPerTransfer: per(commits, transfers),
    transfersPerCommit: per(transfers, commits),
    snapshotPartWritesPerTransfer: per(after.snapshotPartWrites - before.snapshotPartWrites, transfers),
    heapUsedBytesEnd: after.heapUsedBytes,
    residentBytesEnd: after.residentBytes,
    heapGrowthBytesPer1000: per((after.heapUsedBytes - before.heapUsedBytes) * 1000, transfers),
    residentGrowthBytesPer1000: per((after.residentBytes - before.residentBytes) * 1000, transfers),
    entriesInMemoryEnd: after.entriesInMemory,
    snapshotUnsavedEntitiesEnd: after.snapshotUnsavedEntities,
  }
}

export const fixed = (value: number, digits: number): string => (Number.isFinite(value) ? value.toFixed(digits) : "n/a")

/** The CPU target: at most 50 µs of node CPU (all threads) per transfer at 10,000/s. */
export const cpuBudgetTarget = { cpuMicrosPerTransferMax: 50, atRatePerSecond: 10_000 }

/**
 * The CPU target's verdict for a run offered at least the target's rate; undefined below it, where
 * batching is thinner and each transfer is dearer, so the target does not apply.
 */
export const judgeCpuBudget = (
  budget: NodeBudget,
  offeredRate: number,
  target: typeof cpuBudgetTarget = cpuBudgetTarget,
): SloVerdict | undefined => {
  if (offeredRate < target.atRatePerSecond) return undefined
  return {
    name: `CPU per transfer at ${offeredRate}/s offered`,
    target: `<= ${target.cpuMicrosPerTransferMax} µs (node process, all threads) at ${target.atRatePerSecond}/s`,
    actual: `${fixed(budget.cpuMicrosPerTransfer, 1)} µs`,
    pass: budget.cpuMicrosPerTransfer <= target.cpuMicrosPerTransferMax,
  }
}

export const megabytes = (bytes: number): string => (Number.isFinite(bytes) ? `${(bytes / 1e6).toFixed(1)} MB` : "n/a")

const signedKilobytes = (bytes: number): string =>
  Number.isFinite(bytes) ? `${bytes >= 0 ? "+" : ""}${(bytes / 1e3).toFixed(1)} kB` : "n/a"

/** One summary line: CPU (also as a share of the machine's cores), journal, snapshots, memory. */
export const formatBudget = (budget: NodeBudget, machineCores: number = availableParallelism()): string =>
  `node: CPU ${fixed(budget.cpuMicrosPerTransfer, 1)} µs/transfer (${fixed(budget.cpuCores * 100, 0)}% of a core, ` +
  `${fixed((budget.cpuCores / machineCores) * 100, 0)}% of the machine's ${machineCores})  ` +
  `journal ${fixed(budget.journalRecordsPerTransfer, 2)} records and ${fixed(budget.journalCommitsPerTransfer, 3)} commits per transfer ` +
  `(${fixed(budget.transfersPerCommit, 1)} transfers/commit)  snapshot ${fixed(budget.snapshotPartWritesPerTransfer, 3)} part writes/transfer  ` +
  `heap ${megabytes(budget.heapUsedBytesEnd)} (${signedKilobytes(budget.heapGrowthBytesPer1000)}/1,000 payments)  ` +
  `RSS ${megabytes(budget.residentBytesEnd)} (${signedKilobytes(budget.residentGrowthBytesPer1000)}/1,000)  ` +
  `entries in memory ${budget.entriesInMemoryEnd} (${budget.snapshotUnsavedEntitiesEnd} unsaved)  ` +
  `over ${budget.transfers} transfers in ${fixed(budget.windowMs / 1000, 1)} s`
