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
 * Who pays whom and how much, among the accounts `accountIdOf(0 .. accounts - 1)` of tenant "bench":
 * what every payment workload shares. `shardCount` must equal the node's SHARD_COUNT for
 * `crossShardOnly` to really cross shards. `amount` is a decimal string in major units.
 */
export interface PaymentTraffic {
  readonly accounts: number
  readonly distribution: Distribution
  readonly crossShardOnly: boolean
  readonly shardCount: number
  readonly currency: string
  readonly amount: string
}

/** One `transfer` per scheduled request. */
export interface TransferWorkload extends PaymentTraffic {
  readonly kind: "transfers"
}

/**
 * One `authorize` per scheduled request; each authorization answered `authorized` is captured in
 * full `captureDelayMs` after its answer arrived, on the same connection. WebSocket only.
 */
export interface AuthorizeCaptureWorkload extends PaymentTraffic {
  readonly kind: "authorize-capture"
  readonly captureDelayMs: number
  /** Sent with every authorization when set; otherwise the tenant's default hold applies. */
  readonly holdSeconds?: number
}

export type PaymentWorkload = TransferWorkload | AuthorizeCaptureWorkload

/** Transfer frames, answered by the echo baseline. */
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
    /**
     * Every node of a cluster (`port` among them): each worker's connection j goes to
     * `ports[j % ports.length]` (see `connectionTargetOf`). Unset, every connection goes to `port`.
     */
    readonly ports?: ReadonlyArray<number>
  }
  readonly ratePerSecond: number
  readonly durationMs: number
  readonly warmupMs: number
  readonly connections: number
  readonly workers: number
  readonly inFlightMaxPerConnection: number
  readonly requestsMax: number
  readonly burst?: Burst
  readonly workload: PaymentWorkload | EchoWorkload
  /** When set, the result also has figures per window of this length (a soak's minutes); whole seconds. */
  readonly windowMs?: number
}

/** Latency percentiles of the answers a histogram holds, in milliseconds. */
export interface LatencySummary {
  readonly p50: number
  readonly p90: number
  readonly p99: number
  readonly p999: number
  readonly max: number
  readonly mean: number
}

/**
 * One operation of a workload that sends more than one (authorize, then capture), over the
 * payments measured after warm-up. `due` counts the requests the generator meant to send (a
 * capture becomes due when its authorization is answered `authorized`); its latency counts from
 * that intended time, like the payment's.
 */
export interface OperationResult {
  readonly operation: "authorize" | "capture"
  readonly due: number
  readonly sent: number
  readonly completed: number
  readonly offeredRate: number
  readonly achievedRate: number
  readonly errorsByCode: Readonly<Record<string, number>>
  readonly latencyMs: LatencySummary
  readonly spectrum: ReadonlyArray<{ readonly percentile: number; readonly latencyMs: number }>
  /** Merged, compressed (hdr encodeIntoCompressedBase64), microseconds. */
  readonly histogramBase64: string
}

/**
 * What a run measured, warm-up excluded. Latency counts from each request's due time, so time a
 * request waited for the generator or for a free connection is in it (coordinated omission
 * corrected); only answered requests with `ok: true` (HTTP 200) are in the histogram, the rest are
 * counted by code. `perSecond` is bucketed by the second of the run (warm-up included in the
 * numbering) in which answers arrived, from the end of warm-up on.
 *
 * For authorize-capture the unit is the payment: it completes when its capture is answered, its
 * latency runs from the authorization's due time to the capture's answer less the deliberate
 * `captureDelayMs`, and it fails once, with the code of the step that failed; `operations` has
 * each step on its own.
 */
export interface LoadResult {
  readonly offeredRate: number
  readonly achievedRate: number
  readonly sent: number
  readonly completed: number
  readonly errorsByCode: Readonly<Record<string, number>>
  readonly latencyMs: LatencySummary
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
  /** Only for a workload of more than one operation (authorize-capture): each on its own. */
  readonly operations?: ReadonlyArray<OperationResult>
}

export type Target = LoadPlan["target"]
