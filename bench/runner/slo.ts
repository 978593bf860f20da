/**
 * Service level objectives: the targets a run is judged against (bench/slo.json) and the verdict
 * per objective. Latency targets apply at the tested rate; the burst scenario may shed load only
 * with OVERLOADED, any other error code is a miss. The payment lifecycle's target is relative:
 * authorize and capture each within a multiple of the p99 of transfers measured on the same node
 * in the same run, a ratio that survives a noisy machine better than a figure in milliseconds.
 */
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import type { LoadResult } from "../load/plan.ts"

export interface LifecycleTargets {
  /** An authorize-capture scenario. */
  readonly scenario: string
  /** Each step's p99 at most this many times the p99 of transfers in the same run. */
  readonly p99RatioToTransfersMax: number
}

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
  /** Judged only when present (the smoke's targets leave it out). */
  readonly lifecycle?: LifecycleTargets
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

/**
 * The verdicts for an authorize-capture run beside a transfer run at the same rate on the same node:
 * each step's p99 within the ratio of the transfers' p99, and no errors.
 */
export const judgeLifecycleRun = (
  lifecycle: LoadResult,
  transfers: LoadResult,
  targets: Pick<LifecycleTargets, "p99RatioToTransfersMax">,
): ReadonlyArray<SloVerdict> => {
  const operations = lifecycle.operations
  if (operations === undefined) throw new Error("assertion: the lifecycle run has no figures per operation")
  const transfersP99Ms = transfers.latencyMs.p99
  const ratio = targets.p99RatioToTransfersMax
  const steps = operations.map((operation) => ({
    name: `${operation.operation} p99 against transfers in the same run`,
    target: `<= ${ratio} x transfers' p99 ${transfersP99Ms.toFixed(2)} ms`,
    actual: `${operation.latencyMs.p99.toFixed(2)} ms (${(operation.latencyMs.p99 / transfersP99Ms).toFixed(2)} x)`,
    pass: operation.latencyMs.p99 <= ratio * transfersP99Ms,
  }))
  const errors = errorsOtherThan(lifecycle, [])
  return [
    ...steps,
    {
      name: "authorize-capture errors",
      target: "none",
      actual: errors === 0 ? "none" : JSON.stringify(lifecycle.errorsByCode),
      pass: errors === 0,
    },
  ]
}
