/**
 * The open-loop schedule: when request i is due, at a fixed rate with an optional burst window.
 * Latency is measured from these due times, never from the moment a request actually left, so a
 * generator or connection that falls behind shows up as latency instead of hiding it.
 */
import type { Burst } from "./plan.ts"

export interface Schedule {
  readonly ratePerSecond: number
  readonly burst: Burst | undefined
}

/** Requests due in [0, timeMs) as a real number: the integral of the offered rate. */
export const dueCountAt = (schedule: Schedule, timeMs: number): number => {
  const perMs = schedule.ratePerSecond / 1000
  const burst = schedule.burst
  if (burst === undefined || timeMs <= burst.atMs) return perMs * timeMs
  const burstEndMs = burst.atMs + burst.durationMs
  const insideMs = Math.min(timeMs, burstEndMs) - burst.atMs
  const afterMs = Math.max(0, timeMs - burstEndMs)
  return perMs * (burst.atMs + insideMs * burst.multiplier + afterMs)
}

/** When request `index` (0-based) is due, in ms from the start: the inverse of `dueCountAt`. */
export const dueTimeMs = (schedule: Schedule, index: number): number => {
  const perMs = schedule.ratePerSecond / 1000
  const burst = schedule.burst
  if (burst === undefined) return index / perMs
  const beforeCount = perMs * burst.atMs
  if (index < beforeCount) return index / perMs
  const insideCount = perMs * burst.multiplier * burst.durationMs
  if (index < beforeCount + insideCount) return burst.atMs + (index - beforeCount) / (perMs * burst.multiplier)
  return burst.atMs + burst.durationMs + (index - beforeCount - insideCount) / perMs
}

/** Number of requests a run sends: those due before `durationMs`, at most `requestsMax`. */
export const requestCountOf = (schedule: Schedule, durationMs: number, requestsMax: number): number =>
  Math.min(requestsMax, Math.ceil(dueCountAt(schedule, durationMs)))
