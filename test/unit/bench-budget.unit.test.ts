/**
 * The pure parts of the node budget and the soak: reading /proc/<pid>/stat, the per-transfer
 * arithmetic, the CPU and soak verdicts, the per-window histogram bookkeeping, the soak scenario
 * and the report's budget and window tables. No timing is asserted.
 */
import { existsSync, readFileSync } from "node:fs"
import { describe, expect, it } from "vitest"
import { newLatencyHistogram, recordLatencyMs } from "../../bench/load/histograms.ts"
import type { LoadResult } from "../../bench/load/plan.ts"
import { validatePlan } from "../../bench/load/run-load.ts"
import {
  validateWindowLayout,
  WindowAggregate,
  type WindowFigures,
  windowBoundsMs,
  windowCountOf,
  windowIndexOf,
} from "../../bench/load/windows.ts"
import { renderReportHtml } from "../../bench/report/html.ts"
import type { BenchReport } from "../../bench/report/report.ts"
import { answeredAfterWarmup, sampleOffsetsMs } from "../../bench/runner/measured-run.ts"
import {
  budgetBetween,
  clockTicksPerSecond,
  cpuSecondsOf,
  formatBudget,
  judgeCpuBudget,
  type NodeSample,
  nodeSampleOf,
  parseProcStat,
} from "../../bench/runner/node-budget.ts"
import {
  judgeSoak,
  retainedHeapOf,
  type SoakWindow,
  settledHeapOf,
  settledTailMs,
  soakWindowOf,
} from "../../bench/runner/soak.ts"
import { loadScenario, parseScenario, planFromScenario } from "../../bench/scenarios/scenarios.ts"

/** A stat line shaped like the kernel's: utime 1234 and stime 567 ticks, a command name with spaces and parentheses. */
const statLine = (command: string) =>
  `4242 (${command}) S 1 4242 4242 0 -1 4194560 9000 0 12 0 1234 567 0 0 20 0 11 0 228876 1400000000 60000 ` +
  "18446744073709551615 1 1 0 0 0 0 0 16781312 16386 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n"

describe("/proc/<pid>/stat", () => {
  it("reads utime and stime, counting fields from the end of the command name", () => {
    expect(parseProcStat(statLine("node"))).toEqual({ userTicks: 1234, systemTicks: 567 })
    // A name with spaces and a ")" would shift every field if split naively.
    expect(parseProcStat(statLine("node (main) 2"))).toEqual({ userTicks: 1234, systemTicks: 567 })
    expect(cpuSecondsOf({ userTicks: 1234, systemTicks: 567 }, 100)).toBeCloseTo(18.01, 10)
  })

  it("refuses what is not a stat line", () => {
    expect(() => parseProcStat("no parentheses here")).toThrow(/stat/)
    expect(() => parseProcStat("1 (node) S 1 2")).toThrow(/utime/)
  })

  it.runIf(existsSync("/proc/self/stat"))("reads this process's own CPU time, which only grows", () => {
    const first = parseProcStat(readFileSync("/proc/self/stat", "utf8"))
    let spin = 0
    for (let index = 0; index < 5_000_000; index++) spin += index % 7
    expect(spin).toBeGreaterThan(0)
    const second = parseProcStat(readFileSync("/proc/self/stat", "utf8"))
    expect(second.userTicks + second.systemTicks).toBeGreaterThanOrEqual(first.userTicks + first.systemTicks)
    expect(Number.isInteger(clockTicksPerSecond())).toBe(true)
    expect(clockTicksPerSecond()).toBeGreaterThan(0)
  })
})

const sampleOf = (overrides: Partial<NodeSample>): NodeSample => ({
  atMs: 1_000,
  cpuSeconds: 10,
  residentBytes: 200_000_000,
  heapUsedBytes: 100_000_000,
  journalCommits: 10,
  journalRecords: 100,
  snapshotPartWrites: 5,
  entriesInMemory: 0,
  snapshotUnsavedEntities: 0,
  ...overrides,
})

describe("the node budget between two samples", () => {
  const before = sampleOf({})
  // 10 s, 2.5 CPU seconds, 20,000 transfers: 2 records each, a commit per 40, a part write per 10.
  const after = sampleOf({
    atMs: 11_000,
    cpuSeconds: 12.5,
    residentBytes: 205_000_000,
    heapUsedBytes: 110_000_000,
    journalCommits: 510,
    journalRecords: 40_100,
    snapshotPartWrites: 2_005,
    entriesInMemory: 20_000,
    snapshotUnsavedEntities: 700,
  })

  it("comes to CPU, journal, snapshot and memory figures per transfer", () => {
    const budget = budgetBetween(before, after, 20_000)
    expect(budget.windowMs).toBe(10_000)
    expect(budget.cpuSeconds).toBeCloseTo(2.5, 10)
    expect(budget.cpuMicrosPerTransfer).toBeCloseTo(125, 10)
    expect(budget.cpuCores).toBeCloseTo(0.25, 10)
    expect(budget.journalRecordsPerTransfer).toBe(2)
    expect(budget.journalCommitsPerTransfer).toBe(0.025)
    expect(budget.transfersPerCommit).toBe(40)
    expect(budget.snapshotPartWritesPerTransfer).toBe(0.1)
    expect(budget.heapUsedBytesEnd).toBe(110_000_000)
    expect(budget.residentBytesEnd).toBe(205_000_000)
    expect(budget.heapGrowthBytesPer1000).toBe(500_000)
    expect(budget.residentGrowthBytesPer1000).toBe(250_000)
    expect(budget.entriesInMemoryEnd).toBe(20_000)
    expect(budget.snapshotUnsavedEntitiesEnd).toBe(700)
  })

  it("prints CPU as a share of one core and of the machine, and n/a where there is no figure", () => {
    const line = formatBudget(budgetBetween(before, after, 20_000), 2)
    expect(line).toContain("CPU 125.0 µs/transfer (25% of a core, 13% of the machine's 2)")
    expect(line).toContain("journal 2.00 records and 0.025 commits per transfer (40.0 transfers/commit)")
    expect(line).toContain("heap 110.0 MB (+500.0 kB/1,000 payments)")
    expect(formatBudget(budgetBetween(before, after, 0), 2)).toContain("CPU n/a µs/transfer")
  })

  it("has no per-transfer figure when nothing was answered, rather than an infinite one", () => {
    const budget = budgetBetween(before, after, 0)
    expect(budget.cpuMicrosPerTransfer).toBeNaN()
    expect(budget.journalRecordsPerTransfer).toBeNaN()
    expect(budget.cpuCores).toBeCloseTo(0.25, 10)
    expect(budgetBetween(before, { ...after, journalCommits: before.journalCommits }, 10).transfersPerCommit).toBeNaN()
  })

  it("refuses samples out of order or of two processes", () => {
    expect(() => budgetBetween(after, before, 1)).toThrow(/order/)
    expect(() => budgetBetween(before, { ...after, cpuSeconds: 9 }, 1)).toThrow(/CPU/)
    expect(() => budgetBetween(before, after, 1.5)).toThrow(/transfers/)
  })

  it("takes the counters and the heap from /metrics by name; a missing one is no figure", () => {
    const sample = nodeSampleOf(5, 1.5, 300, {
      nodejs_heap_used_bytes: 42,
      payments_journal_commits_total: 7,
      payments_journal_records_total: 14,
      payments_snapshot_part_writes_total: 3,
    })
    expect(sample).toMatchObject({ atMs: 5, cpuSeconds: 1.5, residentBytes: 300, heapUsedBytes: 42 })
    expect([sample.journalCommits, sample.journalRecords, sample.snapshotPartWrites]).toEqual([7, 14, 3])
    expect(sample.entriesInMemory).toBeNaN()
  })

  it("judges the CPU target only at the rate it is set for", () => {
    const budget = (micros: number) =>
      budgetBetween(before, sampleOf({ atMs: 2_000, cpuSeconds: 10 + micros / 1e6 }), 1)
    expect(judgeCpuBudget(budget(10), 9_999)).toBeUndefined()
    expect(judgeCpuBudget(budget(50), 10_000)?.pass).toBe(true)
    expect(judgeCpuBudget(budget(51), 12_000)).toMatchObject({ pass: false, actual: "51.0 µs" })
    expect(judgeCpuBudget(budgetBetween(before, after, 0), 10_000)?.pass).toBe(false)
  })
})

describe("per-window figures", () => {
  // Warm-up 2 s, run 10 s, windows of 3 s: [2, 5), [5, 8) and a short last one [8, 10).
  const layout = { warmupMs: 2_000, durationMs: 10_000, windowMs: 3_000 }

  it("tiles the measured part of the run, answers during the drain counting in the last window", () => {
    expect(windowCountOf(layout)).toBe(3)
    expect([0, 1].map((second) => windowIndexOf(layout, second))).toEqual([undefined, undefined])
    expect([2, 4, 5, 7, 8, 9, 10, 11].map((second) => windowIndexOf(layout, second))).toEqual([0, 0, 1, 1, 2, 2, 2, 2])
    expect(windowBoundsMs(layout, 2)).toEqual({ startMs: 8_000, endMs: 10_000 })
  })

  it("refuses windows that are not whole seconds, and too many of them", () => {
    expect(() => validateWindowLayout({ ...layout, windowMs: 1_500 })).toThrow(/whole number of seconds/)
    expect(() => validateWindowLayout({ warmupMs: 0, durationMs: 2_000_000, windowMs: 1_000 })).toThrow(/at most/)
    expect(() => validateWindowLayout({ ...layout, warmupMs: 2_500 })).toThrow(/warmupMs/)
    expect(() => validateWindowLayout(layout)).not.toThrow()
  })

  /** One second whose answers all took `latencyMs`. */
  const secondWith = (count: number, latencyMs: number) => {
    const histogram = newLatencyHistogram()
    for (let index = 0; index < count; index++) recordLatencyMs(histogram, latencyMs)
    return histogram
  }

  it("gives each window its own percentiles, rate and errors, holding one live histogram at most", () => {
    const windows = new WindowAggregate(layout)
    const latencyOfSecond = (second: number) => (second < 5 ? 1 : second < 8 ? 10 : 100)
    for (let second = 0; second <= 10; second++) {
      const histogram = secondWith(100, latencyOfSecond(second))
      windows.add(second, { due: 100, completed: 100, errors: second === 6 ? 3 : 0 }, histogram)
      histogram.destroy()
      expect(windows.hasLiveHistogram()).toBe(second >= 2)
    }
    const figures = windows.finish()
    expect(windows.hasLiveHistogram()).toBe(false)
    expect(figures.map((window) => window.completed)).toEqual([300, 300, 300])
    expect(figures.map((window) => window.errors)).toEqual([0, 3, 0])
    // The last window is 2 s long and also holds second 10's answers (the drain).
    expect(figures.map((window) => window.achievedRate)).toEqual([100, 100, 150])
    expect(figures.map((window) => Math.round(window.latencyMs.p99))).toEqual([1, 10, 100])
    expect(figures.map((window) => window.startMs)).toEqual([2_000, 5_000, 8_000])
  })

  it("takes a second that arrives late into the window it belongs to", () => {
    const windows = new WindowAggregate(layout)
    const slow = secondWith(20, 50)
    const fast = secondWith(980, 1)
    windows.add(2, { due: 980, completed: 980, errors: 0 }, fast)
    windows.add(5, { due: 0, completed: 0, errors: 0 }, newLatencyHistogram())
    windows.add(5, { due: 1, completed: 1, errors: 0 }, secondWith(1, 2))
    // Second 3 reaches the parent after second 5: window 0 is reopened, not lost.
    windows.add(3, { due: 20, completed: 20, errors: 0 }, slow)
    const [first, second] = windows.finish() as ReadonlyArray<WindowFigures>
    expect(first?.completed).toBe(1_000)
    expect(Math.round(first?.latencyMs.p99 ?? 0)).toBe(50)
    expect(second?.completed).toBe(1)
  })

  it("samples the node when warm-up ends (on a second, as perSecond counts), or at every window's start", () => {
    const plan = planFromScenario(loadScenario("uniform"), { host: "127.0.0.1", port: 1, apiKey: "k" })
    expect(sampleOffsetsMs(plan)).toEqual([plan.warmupMs])
    expect(sampleOffsetsMs({ ...plan, warmupMs: 2_400 })).toEqual([3_000])
    expect(sampleOffsetsMs({ ...plan, warmupMs: 2_000, durationMs: 10_000, windowMs: 3_000 })).toEqual([
      2_000, 5_000, 8_000,
    ])
  })
})

describe("transfers answered in the measured window", () => {
  it("counts answers by the second they arrived, warm-up requests answered late included", () => {
    // perSecond starts at warm-up's end; its counts are by arrival, unlike `completed` (by due time).
    const perSecond = [
      { second: 2, completed: 1_500, errors: 0, p99Ms: 900 },
      { second: 3, completed: 1_200, errors: 4, p99Ms: 800 },
      { second: 4, completed: 10, errors: 0, p99Ms: 10 },
    ]
    expect(answeredAfterWarmup({ perSecond })).toBe(2_710)
    expect(answeredAfterWarmup({ perSecond: [] })).toBe(0)
  })
})

describe("the soak scenario", () => {
  const target = { host: "127.0.0.1", port: 1, apiKey: "k" }

  it("is ten minutes at 5,000/s in windows of a minute, shortened by the runner's overrides", () => {
    const soak = loadScenario("soak")
    expect(soak).toMatchObject({ ratePerSecond: 5_000, durationMs: 600_000, windowMs: 60_000, connections: 8 })
    expect(soak.workload).toMatchObject({ kind: "transfers", accounts: 10_000, distribution: { kind: "uniform" } })
    const plan = planFromScenario(soak, target)
    expect(sampleOffsetsMs(plan)).toHaveLength(10)
    const rehearsal = planFromScenario(soak, target, { durationMs: 60_000, windowMs: 15_000 })
    expect(sampleOffsetsMs(rehearsal)).toEqual([0, 15_000, 30_000, 45_000])
    expect(sampleOffsetsMs(planFromScenario(soak, target, { durationMs: 120_000 }))).toEqual([0, 60_000])
    expect(() => validatePlan({ ...rehearsal, windowMs: 15_500 })).toThrow(/windowMs/)
  })

  it("refuses a scenario file whose windows are not whole seconds", () => {
    const text = readFileSync(new URL("../../bench/scenarios/soak.json", import.meta.url), "utf8")
    expect(() => parseScenario("soak.json", text.replace('"windowMs": 60000', '"windowMs": 60500'))).toThrow(/windowMs/)
  })
})

const windowOf = (
  number: number,
  heapMb: number,
  residentMb: number,
  p99: number,
  completed = 300_000,
  heapEndMb = heapMb,
  heapSettledMb = heapMb,
): SoakWindow => ({
  number,
  startMs: (number - 1) * 60_000,
  endMs: number * 60_000,
  offeredRate: 5_000,
  achievedRate: completed / 60,
  completed,
  errors: 0,
  latencyMs: { p50: p99 / 4, p99, p999: p99 * 2, max: p99 * 3 },
  heapUsedBytesEnd: heapEndMb * 1e6,
  heapUsedBytesSettled: heapSettledMb * 1e6,
  heapRetainedBytes: heapMb * 1e6,
  residentBytesEnd: residentMb * 1e6,
  cpuMicrosPerTransfer: 40,
  cpuCores: 0.2,
})

describe("the settled and the retained heap at a window's end", () => {
  const readings = [
    { offsetMs: 40_000, heapUsedBytes: 10, heapRetainedBytes: Number.NaN },
    { offsetMs: 51_000, heapUsedBytes: 90, heapRetainedBytes: 30 },
    { offsetMs: 55_000, heapUsedBytes: 70, heapRetainedBytes: 30 },
    { offsetMs: 59_500, heapUsedBytes: 120, heapRetainedBytes: 32 },
    { offsetMs: 60_600, heapUsedBytes: 80, heapRetainedBytes: 31 },
    { offsetMs: 62_000, heapUsedBytes: 60, heapRetainedBytes: 35 },
    { offsetMs: 75_000, heapUsedBytes: Number.NaN, heapRetainedBytes: Number.NaN },
  ]

  it("takes the latest retained reading by the window's end, up to one poll after it", () => {
    expect(retainedHeapOf(readings, 60_000, false)).toBe(31)
    expect(retainedHeapOf(readings, 60_000, true)).toBe(35)
    expect(retainedHeapOf(readings, 45_000, false)).toBeNaN()
  })

  it("is the lowest reading of the window's last 10 s, up to one poll after its end", () => {
    expect(settledHeapOf(readings, 60_000, settledTailMs(60_000), false)).toBe(70)
    // The 40 s reading is outside the tail; 62 s is past the poll's slack, unless the window is the last.
    expect(settledHeapOf(readings, 60_000, settledTailMs(60_000), true)).toBe(60)
    // A 15 s window looks at its last 7.5 s.
    expect(settledTailMs(15_000)).toBe(7_500)
    expect(settledHeapOf(readings, 60_000, settledTailMs(15_000), false)).toBe(70)
    expect(settledHeapOf(readings, 30_000, 10_000, false)).toBeNaN()
  })
})

describe("soak verdicts", () => {
  const verdictsOf = (windows: ReadonlyArray<SoakWindow>) => judgeSoak(windows).map((verdict) => verdict.pass)

  it("passes a flat heap, bounded RSS growth and a last p99 no worse than the first", () => {
    const windows = [windowOf(1, 100, 400, 5), windowOf(2, 109, 450, 4), windowOf(3, 91, 500, 5)]
    expect(verdictsOf(windows)).toEqual([true, true, true])
  })

  it("judges the heap against window 1's end, in every later window, both ways", () => {
    expect(verdictsOf([windowOf(1, 100, 400, 5), windowOf(2, 111, 400, 5), windowOf(3, 100, 400, 5)])[0]).toBe(false)
    expect(verdictsOf([windowOf(1, 100, 400, 5), windowOf(2, 100, 400, 5), windowOf(3, 89, 400, 5)])[0]).toBe(false)
    const [heap] = judgeSoak([windowOf(1, 100, 400, 5), windowOf(2, 104, 400, 5), windowOf(3, 93, 400, 5)])
    expect(heap?.actual).toBe(
      "worst -7.0% (window 3: 93.0 MB); settled readings: worst -7.0% (window 3); " +
        "single readings at the ends: worst -7.0% (window 3)",
    )
  })

  it("judges the retained heap, not the readings of the heap in use, and shows all three", () => {
    // Retained flat at 100 MB; the readings in use caught promoted garbage in window 2.
    const windows = [windowOf(1, 100, 400, 5), windowOf(2, 100, 400, 5, 300_000, 140, 160), windowOf(3, 101, 400, 5)]
    const [heap] = judgeSoak(windows)
    expect(heap?.pass).toBe(true)
    expect(heap?.actual).toBe(
      "worst +1.0% (window 3: 101.0 MB); settled readings: worst +60.0% (window 2); " +
        "single readings at the ends: worst +40.0% (window 2)",
    )
    expect(judgeSoak([windowOf(1, 100, 400, 5), windowOf(2, 120, 400, 5, 300_000, 100, 100)])[0]?.pass).toBe(false)
  })

  it("measures RSS growth from the end of window 1 to the end, at most 100 MB", () => {
    // Window 1 itself may grow (seeding, JIT): only what comes after counts.
    expect(verdictsOf([windowOf(1, 100, 400, 5), windowOf(2, 100, 500, 5)])[1]).toBe(true)
    expect(verdictsOf([windowOf(1, 100, 400, 5), windowOf(2, 100, 500.000001, 5)])[1]).toBe(false)
    expect(judgeSoak([windowOf(1, 100, 400, 5), windowOf(2, 100, 420, 5)])[1]?.actual).toBe(
      "+20.0 MB (400.0 MB -> 420.0 MB)",
    )
  })

  it("fails a last window slower than the first, or one that answered nothing", () => {
    expect(verdictsOf([windowOf(1, 100, 400, 5), windowOf(2, 100, 400, 5.01)])[2]).toBe(false)
    expect(verdictsOf([windowOf(1, 100, 400, 5), windowOf(2, 100, 400, 0, 0)])[2]).toBe(false)
  })

  it("fails every verdict, saying why, with fewer than two windows", () => {
    const verdicts = judgeSoak([windowOf(1, 100, 400, 5)])
    expect(verdicts).toHaveLength(3)
    expect(verdicts.every((verdict) => !verdict.pass && /at least 2/.test(verdict.actual))).toBe(true)
  })

  it("fails on a heap the node did not report", () => {
    expect(verdictsOf([windowOf(1, 100, 400, 5), windowOf(2, Number.NaN, 400, 5)])[0]).toBe(false)
  })
})

describe("the report's budget and window tables", () => {
  const result: LoadResult = {
    offeredRate: 5_000,
    achievedRate: 5_000,
    sent: 50_000,
    completed: 50_000,
    errorsByCode: {},
    latencyMs: { p50: 1, p90: 2, p99: 4, p999: 8, max: 16, mean: 1.2 },
    spectrum: [],
    histogramBase64: "",
    perSecond: [],
    durationMs: 10_000,
  }
  const budget = budgetBetween(
    sampleOf({}),
    sampleOf({
      atMs: 11_000,
      cpuSeconds: 12.5,
      journalRecords: 100_100,
      journalCommits: 1_260,
      snapshotPartWrites: 40_005,
    }),
    50_000,
  )
  const window = soakWindowOf(
    {
      index: 0,
      startMs: 0,
      endMs: 15_000,
      due: 75_000,
      completed: 75_000,
      errors: 2,
      offeredRate: 5_000,
      achievedRate: 5_000,
      latencyMs: { p50: 1, p99: 3.25, p999: 9, max: 20 },
      histogramBase64: "",
    },
    budget,
    { settledBytes: 90_000_000, retainedBytes: 60_000_000 },
  )
  const report: BenchReport = {
    scenario: "soak",
    mode: "embedded",
    startedAt: "2025-03-04T05:06:07.000Z",
    machine: {},
    settings: {},
    runs: [{ label: "embedded ws @ 5000/s", result, budget, windows: [window] }],
    baselines: [],
  }

  it("shows the budget per transfer and each window's row", () => {
    const html = renderReportHtml(report)
    expect(html).toContain("<h2>Node budget per transfer</h2>")
    // 2.5 CPU seconds over 50,000 transfers; 2 records and 0.025 commits each; 0.8 part writes each.
    expect(html).toMatch(
      /embedded ws @ 5000\/s<\/td><td class="num">50k<\/td><td class="num">50\.0<\/td><td class="num">25<\/td><td class="num">2\.00<\/td><td class="num">0\.025<\/td><td class="num">40\.0<\/td><td class="num">0\.800<\/td>/,
    )
    expect(html).toContain("<h2>Per window</h2>")
    expect(html).toMatch(/<td class="num">3\.25<\/td>/)
    expect(html).toMatch(/<td class="num warn">2<\/td>/)
  })

  it("reads n/a for figures that JSON turned from NaN into null", () => {
    const none = budgetBetween(sampleOf({}), sampleOf({ atMs: 2_000 }), 0)
    const readBack = JSON.parse(JSON.stringify({ ...report, runs: [{ label: "idle", result, budget: none }] }))
    expect(renderReportHtml(readBack)).toMatch(/idle<\/td><td class="num">0<\/td><td>n\/a<\/td>/)
    expect(renderReportHtml({ ...report, runs: [{ label: "plain", result }] })).not.toContain("Node budget")
  })
})
