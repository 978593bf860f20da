import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { basename, join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import type { LoadResult } from "../../bench/load/plan.ts"
import { latestCpuProfile, summarizeCpuProfile } from "../../bench/profile/summarize.ts"
import { type BenchReport, writeReport } from "../../bench/report/report.ts"

const directory = mkdtempSync(join(tmpdir(), "bench-report-test-"))
afterAll(() => rmSync(directory, { recursive: true, force: true }))

/** A run whose figures are round numbers, so ratios in the page can be checked by hand. */
const loadResult = (achievedRate: number, p99: number, errorsByCode: Record<string, number> = {}): LoadResult => ({
  offeredRate: achievedRate,
  achievedRate,
  sent: achievedRate * 10,
  completed: achievedRate * 10,
  errorsByCode,
  latencyMs: { p50: p99 / 4, p90: p99 / 2, p99, p999: p99 * 2, max: p99 * 4, mean: p99 / 3 },
  spectrum: [
    { percentile: 0, latencyMs: p99 / 10 },
    { percentile: 50, latencyMs: p99 / 4 },
    { percentile: 90, latencyMs: p99 / 2 },
    { percentile: 99, latencyMs: p99 },
    { percentile: 99.9, latencyMs: p99 * 2 },
    { percentile: 100, latencyMs: p99 * 4 },
  ],
  histogramBase64: "",
  perSecond: [1, 2, 3].map((second) => ({ second, completed: achievedRate, errors: 0, p99Ms: p99 })),
  durationMs: 10_000,
})

const report: BenchReport = {
  scenario: "uniform transfers",
  mode: "embedded",
  startedAt: "2025-03-04T05:06:07.000Z",
  machine: { cores: 2, node: "v20" },
  settings: { shardCount: 16 },
  runs: [{ label: "product-ws", result: loadResult(20_000, 4, { OVERLOADED: 3 }) }],
  baselines: [
    { name: "echo-baseline", result: loadResult(80_000, 1) },
    { name: "lmdb-journal", recordsPerSecond: 100_000, appendLatencyMs: { p50: 2, p99: 8, p999: 9 }, settings: {} },
  ],
  sweep: [
    { rate: 10_000, result: loadResult(10_000, 2), meetsSlo: true },
    { rate: 25_000, result: loadResult(25_000, 5), meetsSlo: true },
    { rate: 40_000, result: loadResult(38_000, 30), meetsSlo: false },
  ],
  slo: [
    { name: "p99 at the tested rate", target: "<= 5 ms", actual: "4 ms", pass: true },
    { name: "p99.9 at the tested rate", target: "<= 20 ms", actual: "21 ms", pass: false },
  ],
}

describe("writeReport", () => {
  it("writes the report as JSON and as a page named by date, scenario and mode", async () => {
    const { jsonPath, htmlPath } = await writeReport(report, directory)
    expect(basename(jsonPath)).toBe("2025-03-04-uniform-transfers-embedded.json")
    expect(basename(htmlPath)).toBe("2025-03-04-uniform-transfers-embedded.html")
    expect(JSON.parse(readFileSync(jsonPath, "utf8"))).toEqual(report)
  })

  it("puts the three plots in the page as inline SVG, with nothing fetched or run", async () => {
    const html = readFileSync((await writeReport(report, directory)).htmlPath, "utf8")
    expect(html.match(/<svg /g)).toHaveLength(3)
    expect(html).toContain("Latency by percentile")
    expect(html).toContain("Throughput over time")
    expect(html).toContain("p99 latency per second")
    for (const tick of [">50%<", ">90%<", ">99%<", ">99.9%<", ">99.99%<"]) expect(html).toContain(tick)
    // One polyline per run and baseline in the spectrum (3), per load result in the other two (2 each).
    expect(html.match(/<polyline /g)).toHaveLength(7)
    expect(html).not.toMatch(/<script|<link|src=/i)
  })

  it("tabulates runs, SLOs, the sweep and the product as a fraction of each baseline", async () => {
    const html = readFileSync((await writeReport(report, directory)).htmlPath, "utf8")
    expect(html).toContain("product-ws")
    expect(html).toContain("OVERLOADED 3")
    expect(html).toMatch(/p99 at the tested rate<\/td>.*PASS/)
    expect(html).toMatch(/p99\.9 at the tested rate<\/td>.*FAIL/)
    // The sustainable rate is the sweep's highest passing step: 25k/s at p99 5 ms.
    expect(html).toContain("25k/s at p99 5.00 ms")
    expect(html).toMatch(/echo-baseline<\/td>.*>31\.3%<\/td>.*>500\.0%<\/td>/)
    expect(html).toMatch(/lmdb-journal<\/td>.*>25\.0%<\/td>.*>62\.5%<\/td>/)
    expect(html.match(/<h2>Rate sweep<\/h2>/g)).toHaveLength(1)
  })
})

describe("summarizeCpuProfile", () => {
  const frame = (functionName: string, url: string, lineNumber: number) => ({
    functionName,
    scriptId: "1",
    url,
    lineNumber,
    columnNumber: 0,
  })
  // `hot` appears under two call paths (nodes 2 and 4) and must be merged into one frame.
  const nodes = [
    { id: 1, callFrame: frame("(root)", "", -1), hitCount: 0, children: [2, 3, 5] },
    { id: 2, callFrame: frame("hot", "file:///app/hot.ts", 9), hitCount: 0, children: [4] },
    { id: 3, callFrame: frame("cold", "file:///app/cold.ts", 0), hitCount: 0 },
    { id: 4, callFrame: frame("hot", "file:///app/hot.ts", 9), hitCount: 0 },
    { id: 5, callFrame: frame("(idle)", "", -1), hitCount: 0 },
  ]

  it("ranks merged frames by self time from samples and time deltas", () => {
    // Each sample lasts until the next one (1 ms apart); the last lasts until endTime.
    const samples = [2, 4, 2, 3, 5, 4, 2, 5]
    const profile = { nodes, startTime: 0, endTime: 9_000, samples, timeDeltas: samples.map(() => 1_000) }
    const path = join(directory, "synthetic.cpuprofile")
    writeFileSync(path, JSON.stringify(profile))
    const frames = summarizeCpuProfile(path, 2)
    expect(frames).toEqual([
      { name: "hot", url: "file:///app/hot.ts", line: 10, selfPercent: 62.5, selfMs: 5 },
      { name: "(idle)", url: "", line: 0, selfPercent: 25, selfMs: 2 },
    ])
  })

  it("falls back to hit counts when the profile has no samples", () => {
    const counted = nodes.map((node) => ({ ...node, hitCount: node.id === 3 ? 3 : node.id === 2 ? 1 : 0 }))
    const path = join(directory, "hits.cpuprofile")
    writeFileSync(path, JSON.stringify({ nodes: counted, startTime: 0, endTime: 4_000 }))
    const [first, second] = summarizeCpuProfile(path)
    expect(first).toEqual({ name: "cold", url: "file:///app/cold.ts", line: 1, selfPercent: 75, selfMs: 3 })
    expect(second?.name).toBe("hot")
  })

  it("picks the main thread's profile of a --cpu-prof-dir, not a worker thread's", () => {
    const profiles = join(directory, "profiles")
    mkdirSync(profiles)
    const main = "CPU.20250304.050607.4242.0.001.cpuprofile"
    writeFileSync(join(profiles, main), "{}")
    writeFileSync(join(profiles, "CPU.20250304.050608.4242.1.002.cpuprofile"), "{}")
    writeFileSync(join(profiles, "notes.txt"), "")
    expect(latestCpuProfile(profiles)).toBe(join(profiles, main))
  })
})
