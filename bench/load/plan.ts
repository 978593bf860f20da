/**
 * The shape of a load run and of its result, shared by the generator, the scenarios, the runner
 * and the reports. Times are milliseconds from the synchronized start of the run.
 */
import type { WindowFigures } from "./windows.ts"

/** How debtors and creditors are picked among the seeded accounts. */
export type Distribution =
  | { readonly kind: "uniform" }
  | { readonly kind: "hotspot"; readonly hotFraction: number; readonly hotShare: number }

/**
 * Transfers between the accounts `accountIdOf(0 .. accounts - 1)` of tenant "bench". `shardCount`
 * must equal the node's SHARD_COUNT for `crossShardOnly` to really cross shards.
 */
export interface TransferWorkload {
  readonly kind: "transfers"
  readonly accounts: number
  readonly distribution: Distribution
  readonly crossShardOnly: boolean
  readonly shardCount: number
  readonly currency: string
  readonly amount: string
}

/** The same transfer frames, answered by the echo baseline. */
export interface EchoWorkload {
  readonly kind: "echo"
}

/** Offered rate × multiplier from `atMs` for `durationMs` (times from the start of the run). */
export interface Burst {
  readonly atMs: number
  readonly durationMs: number
  readonly multiplier: number
}

/**
 * An open-loop run: request i is due at start + i / ratePerSecond (faster inside the burst).
 * `durationMs` counts from the start, warm-up included; requests due before `warmupMs` are sent
 * but not recorded. The run stops sending at `durationMs` or after `requestsMax` requests.
 */
export interface LoadPlan {
  readonly target: {
    readonly host: string
    readonly port: number
    readonly apiKey: string
    readonly protocol: "ws" | "http"
  }
  readonly ratePerSecond: number
  readonly durationMs: number
  readonly warmupMs: number
  readonly connections: number
  readonly workers: number
  readonly inFlightMaxPerConnection: number
  readonly requestsMax: number
  readonly burst?: Burst
  readonly workload: TransferWorkload | EchoWorkload
  /** When set, the result also has figures per window of this length (a soak's minutes); whole seconds. */
  readonly windowMs?: number
}

/**
 * What a run measured, warm-up excluded. Latency counts from each request's due time, so time a
 * request waited for the generator or for a free connection is in it (coordinated omission
 * corrected); only answered requests with `ok: true` (HTTP 200) are in the histogram, the rest are
 * counted by code. `perSecond` is bucketed by the second of the run (warm-up included in the
 * numbering) in which answers arrived, from the end of warm-up on.
 */
export interface LoadResult {
  readonly offeredRate: number
  readonly achievedRate: number
  readonly sent: number
  readonly completed: number
  readonly errorsByCode: Readonly<Record<string, number>>
  readonly latencyMs: {
    readonly p50: number
    readonly p90: number
    readonly p99: number
    readonly p999: number
    readonly max: number
    readonly mean: number
  }
  /** HdrHistogram percentile distribution. */
  readonly spectrum: ReadonlyArray<{ readonly percentile: number; readonly latencyMs: number }>
  /** Merged, compressed (hdr encodeIntoCompressedBase64), microseconds. */
  readonly histogramBase64: string
  readonly perSecond: ReadonlyArray<{
    readonly second: number
    readonly completed: number
    readonly errors: number
    readonly p99Ms: number
  }>
  readonly durationMs: number
  /** Only when the plan has `windowMs`: windows tiling [warmupMs, durationMs), in order. */
  readonly perWindow?: ReadonlyArray<WindowFigures>
}

export type Target = LoadPlan["target"]
