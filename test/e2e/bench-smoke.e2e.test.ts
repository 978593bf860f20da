/**
 * A seconds-long smoke of the benchmark commands, so they keep working: the scenario runner with
 * its baselines and the SLO check, each against a real node, writing their JSON and HTML reports.
 * It asserts that they ran and reported, never how fast: the SLO file it uses has targets no run
 * can miss except by failing.
 */
import { spawn } from "node:child_process"
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, describe, expect, it } from "vitest"
import type { BenchReport } from "../../bench/report/report.ts"
import { nodeEnvironment } from "../support/node-process.ts"

const root = fileURLToPath(new URL("../..", import.meta.url))
const reportDirectory = mkdtempSync(join(tmpdir(), "bench-smoke-"))
afterAll(() => rmSync(reportDirectory, { recursive: true, force: true }))

const run = (script: string, args: ReadonlyArray<string>): Promise<{ code: number | null; output: string }> =>
  new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", script, ...args], {
      cwd: root,
      env: nodeEnvironment(),
      stdio: ["ignore", "pipe", "pipe"],
    })
    let output = ""
    const keep = (chunk: Buffer) => {
      output += chunk.toString()
    }
    child.stdout.on("data", keep)
    child.stderr.on("data", keep)
    child.once("exit", (code) => resolve({ code, output }))
  })

const reportOf = (prefix: string): BenchReport => {
  const name = readdirSync(reportDirectory).find((file) => file.includes(prefix) && file.endsWith(".json"))
  if (name === undefined) throw new Error(`no ${prefix} report in ${readdirSync(reportDirectory).join(", ")}`)
  expect(existsSync(join(reportDirectory, name.replace(/\.json$/, ".html")))).toBe(true)
  return JSON.parse(readFileSync(join(reportDirectory, name), "utf8")) as BenchReport
}

describe("benchmark commands (smoke)", () => {
  it("runs a scenario with its baselines against a node and writes the reports", async () => {
    const { code, output } = await run("bench/run.ts", [
      "--scenario",
      "smoke",
      "--ceiling-ms",
      "1500",
      "--report-dir",
      reportDirectory,
    ])
    expect(code, output).toBe(0)
    const report = reportOf("smoke")
    expect(report.runs[0]?.result.completed).toBeGreaterThan(0)
    expect(report.runs[0]?.result.errorsByCode).toEqual({})
    expect(report.baselines.map((baseline) => baseline.name).join(" ")).toMatch(/echo.*lmdb/i)
    expect(readFileSync(join(reportDirectory, readdirSync(reportDirectory)[0] ?? ""), "utf8").length).toBeGreaterThan(0)
  }, 180_000)

  it("checks SLOs, prints a verdict per objective and reports them", async () => {
    const { code, output } = await run("bench/slo.ts", [
      "--targets",
      "bench/slo-smoke.json",
      "--report-dir",
      reportDirectory,
    ])
    expect(code, output).toBe(0)
    expect(output).toMatch(/PASS {2}p99 at 200\/s/)
    const report = reportOf("slo-embedded")
    expect(report.slo?.every((verdict) => verdict.pass)).toBe(true)
  }, 180_000)
})
