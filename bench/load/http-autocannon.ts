/**
 * Closed-loop HTTP load with autocannon (the design card's tool): each connection sends its next
 * POST /v1/payments as soon as the previous answer arrives, bodies from the same transfer workload
 * with unique paymentIds. Closed loop measures service time, not queueing delay, so its figures
 * are reported beside the open-loop HTTP run, never instead of it. Runs in the caller's process.
 */
import autocannon from "autocannon"
import { assertLoopback } from "./channels.ts"
import type { LoadResult, Target, TransferWorkload } from "./plan.ts"
import { seededRandom, transferBody, transferFields, transferPickerOf } from "./workload.ts"

export interface AutocannonOptions {
  readonly target: Omit<Target, "protocol">
  readonly workload: TransferWorkload
  readonly connections: number
  readonly durationMs: number
  /** Bound by count as well as time. */
  readonly requestsMax: number
  /** Requests in flight per connection (HTTP pipelining); 1 is what partners do. */
  readonly pipelining?: number
}

export interface AutocannonSummary {
  readonly requestsPerSecond: number
  /** autocannon's latency histogram has millisecond resolution, and counts only 2xx answers. */
  readonly latencyMs: LoadResult["latencyMs"]
  readonly completed: number
  readonly non2xx: number
  readonly errors: number
  readonly timeouts: number
  readonly statusCounts: Readonly<Record<string, number>>
  readonly durationMs: number
  readonly connections: number
}

export const runAutocannon = async (options: AutocannonOptions): Promise<AutocannonSummary> => {
  assertLoopback(options.target.host)
  const runId = `ac${Date.now().toString(36)}`
  const picker = transferPickerOf(options.workload, seededRandom(0x5eed))
  let sequence = 0
  const nextBody = () => {
    const { from, to } = picker.next()
    return transferBody(transferFields(options.workload, `${runId}-${sequence++}`, from, to))
  }
  const result = await autocannon({
    url: `http://${options.target.host.includes(":") ? `[${options.target.host}]` : options.target.host}:${options.target.port}`,
    connections: options.connections,
    pipelining: options.pipelining ?? 1,
    duration: options.durationMs / 1000,
    // `amount` would override the duration; this caps the count while the duration still ends the run.
    maxOverallRequests: options.requestsMax,
    timeout: 10,
    headers: { authorization: `Bearer ${options.target.apiKey}`, "content-type": "application/json" },
    requests: [
      {
        method: "POST",
        path: "/v1/payments",
        // A fresh paymentId each time: a repeated one would be answered from the idempotency record.
        setupRequest: (request) => ({ ...request, body: nextBody() }),
      },
    ],
  })
  const statusCounts: Record<string, number> = {}
  for (const [status, stats] of Object.entries(result.statusCodeStats ?? {})) statusCounts[status] = stats.count ?? 0
  return {
    requestsPerSecond: Math.round(result["2xx"] / result.duration),
    latencyMs: {
      p50: result.latency.p50,
      p90: result.latency.p90,
      p99: result.latency.p99,
      p999: result.latency.p99_9,
      max: result.latency.max,
      mean: result.latency.mean,
    },
    completed: result["2xx"],
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    statusCounts,
    durationMs: Math.round(result.duration * 1000),
    connections: result.connections,
  }
}
