/**
 * Service level objectives: the targets a run is judged against (bench/slo.json) and the verdict
 * per objective. Latency targets apply at the tested rate; the burst scenario may shed load only
 * with OVERLOADED, any other error code is a miss.
 */
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import type { LoadResult } from "../load/plan.ts"

export interface SloTargets {
  readonly scenario: string
  readonly ratePerSecond: number
  readonly p99MsMax: number
  readonly p999MsMax: number
  readonly burstScenario: string
  /** Error codes a run may answer with and still pass (load shedding under the burst). */
  readonly burstErrorCodesAllowed: ReadonlyArray<string>
  /** A run whose achieved rate falls below this fraction of the offered one did not keep up. */
  readonly achievedFractionMin: number
}

export interface SloVerdict {
  readonly name: string
  readonly target: string
  readonly actual: string
  readonly pass: boolean
}

export const loadSloTargets = (path?: string): SloTargets =>
  JSON.parse(readFileSync(path ?? fileURLToPath(new URL("../slo.json", import.meta.url)), "utf8")) as SloTargets

const errorsOtherThan = (result: LoadResult, allowed: ReadonlyArray<string>): number =>
  Object.entries(result.errorsByCode)
    .filter(([code]) => !allowed.includes(code))
    .reduce((sum, [, count]) => sum + count, 0)

/** A verdict as printed: `PASS  name: actual (target ...)`. */
export const formatVerdict = (verdict: SloVerdict): string =>
  `${verdict.pass ? "PASS" : "FAIL"}  ${verdict.name}: ${verdict.actual} (target ${verdict.target})`

/** The verdicts for a steady run at the tested rate. */
export const judgeSteadyRun = (result: LoadResult, targets: SloTargets): ReadonlyArray<SloVerdict> => [
  {
    name: `p99 at ${targets.ratePerSecond}/s`,
    target: `<= ${targets.p99MsMax} ms`,
    actual: `${result.latencyMs.p99.toFixed(2)} ms`,
    pass: result.latencyMs.p99 <= targets.p99MsMax,
  },
  {
    name: `p99.9 at ${targets.ratePerSecond}/s`,
    target: `<= ${targets.p999MsMax} ms`,
    actual: `${result.latencyMs.p999.toFixed(2)} ms`,
    pass: result.latencyMs.p999 <= targets.p999MsMax,
  },
  {
    name: "achieved rate",
    target: `>= ${Math.round(targets.achievedFractionMin * 100)}% of offered`,
    actual: `${Math.round(result.achievedRate)}/s of ${Math.round(result.offeredRate)}/s`,
    pass: result.achievedRate >= targets.achievedFractionMin * result.offeredRate,
  },
  {
    name: "errors",
    target: "none",
    actual: `${errorsOtherThan(result, [])}`,
    pass: errorsOtherThan(result, []) === 0,
  },
]

/** The verdict for the burst: shedding with the allowed codes only. */
export const judgeBurstRun = (result: LoadResult, targets: SloTargets): SloVerdict => {
  const others = errorsOtherThan(result, targets.burstErrorCodesAllowed)
  return {
    name: `burst (${targets.burstScenario})`,
    target: `no errors other than ${targets.burstErrorCodesAllowed.join(", ")}`,
    actual: others === 0 ? "none" : JSON.stringify(result.errorsByCode),
    pass: others === 0,
  }
}

/** Whether one step of a rate sweep still meets the latency objectives (used to find the sustainable rate). */
export const meetsLatencySlo = (result: LoadResult, targets: Pick<SloTargets, "p99MsMax" | "achievedFractionMin">) =>
  result.latencyMs.p99 <= targets.p99MsMax &&
  result.achievedRate >= targets.achievedFractionMin * result.offeredRate &&
  errorsOtherThan(result, []) === 0
