/**
 * Benchmark scenarios: one JSON file each in this folder, checked against a schema when loaded so
 * a mistyped file stops the run with the file and the field named. Rates and durations in the
 * files are defaults; the runner may override them.
 */
import { readdirSync, readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { Schema } from "effect"
import { holdSecondsMax } from "../../core/tenant-policy.ts"
import type { Burst, EchoWorkload, LoadPlan, PaymentWorkload, Target } from "../load/plan.ts"
import { requestCountOf } from "../load/schedule.ts"
import { seedDepositOf } from "../load/workload.ts"

export interface Scenario {
  readonly name: string
  readonly description: string
  readonly workload: PaymentWorkload | EchoWorkload
  readonly ratePerSecond: number
  readonly durationMs: number
  readonly warmupMs: number
  readonly connections: number
  readonly workers: number
  readonly burst?: Burst
  readonly protocol: "ws" | "http"
  /**
   * Requests in flight per WebSocket connection before the generator queues (default 512, under the
   * node's WS_IN_FLIGHT_MAX of 1024). Above the node's bound, the node's own refusal (OVERLOADED) is
   * what gets exercised instead of the generator's queue.
   */
  readonly inFlightMaxPerConnection?: number
  /**
   * Report per window of this length (whole seconds) as well as for the whole run: a soak's
   * minutes, each with its own latency percentiles, rate, errors, memory and CPU.
   */
  readonly windowMs?: number
  /** A product capability the scenario needs and the product does not have yet: the runner reports it as not runnable. */
  readonly requires?: string
}

const scenariosDirectory = fileURLToPath(new URL(".", import.meta.url))

const positiveInteger = Schema.Number.check(Schema.isInt(), Schema.isGreaterThan(0))
const nonNegativeInteger = Schema.Number.check(Schema.isInt(), Schema.isGreaterThanOrEqualTo(0))
const fraction = Schema.Number.check(Schema.isGreaterThan(0), Schema.isLessThan(1))

const distributionSchema = Schema.Union([
  Schema.Struct({ kind: Schema.Literal("uniform") }),
  Schema.Struct({ kind: Schema.Literal("hotspot"), hotFraction: fraction, hotShare: fraction }),
])

const trafficFields = {
  accounts: positiveInteger.check(Schema.isGreaterThanOrEqualTo(2)),
  distribution: distributionSchema,
  crossShardOnly: Schema.Boolean,
  shardCount: positiveInteger,
  currency: Schema.String.check(Schema.isPattern(/^[A-Z]{3}$/)),
  amount: Schema.String.check(Schema.isPattern(/^\d{1,18}(\.\d{1,3})?$/)),
}

const transferWorkloadSchema = Schema.Struct({ kind: Schema.Literal("transfers"), ...trafficFields })

const authorizeCaptureWorkloadSchema = Schema.Struct({
  kind: Schema.Literal("authorize-capture"),
  ...trafficFields,
  captureDelayMs: nonNegativeInteger,
  holdSeconds: Schema.optionalKey(positiveInteger.check(Schema.isLessThanOrEqualTo(holdSecondsMax))),
})

const scenarioSchema = Schema.Struct({
  name: Schema.String.check(Schema.isPattern(/^[a-z0-9-]+$/)),
  description: Schema.String,
  workload: Schema.Union([
    transferWorkloadSchema,
    authorizeCaptureWorkloadSchema,
    Schema.Struct({ kind: Schema.Literal("echo") }),
  ]),
  ratePerSecond: Schema.Number.check(Schema.isGreaterThan(0)),
  durationMs: positiveInteger,
  warmupMs: nonNegativeInteger,
  connections: positiveInteger,
  workers: positiveInteger,
  burst: Schema.optionalKey(
    Schema.Struct({
      atMs: nonNegativeInteger,
      durationMs: positiveInteger,
      multiplier: Schema.Number.check(Schema.isGreaterThan(0)),
    }),
  ),
  protocol: Schema.Literals(["ws", "http"]),
  inFlightMaxPerConnection: Schema.optionalKey(positiveInteger),
  windowMs: Schema.optionalKey(positiveInteger.check(Schema.isMultipleOf(1000))),
  requires: Schema.optionalKey(Schema.String),
})

const decodeScenario = Schema.decodeUnknownSync(scenarioSchema, { onExcessProperty: "error", errors: "all" })

/** Checks what a schema cannot: relations between fields. */
const checkConsistency = (scenario: Scenario): void => {
  if (scenario.warmupMs >= scenario.durationMs) throw new Error("warmupMs must be shorter than durationMs")
  if (scenario.workers > scenario.connections) throw new Error("every worker needs a connection: workers > connections")
  const burst = scenario.burst
  if (burst !== undefined && burst.atMs + burst.durationMs > scenario.durationMs) {
    throw new Error("the burst must end before durationMs")
  }
  const workload = scenario.workload
  if (workload.kind === "echo") return
  if (workload.crossShardOnly && workload.shardCount < 2) throw new Error("crossShardOnly needs shardCount >= 2")
  // Throws, naming the field, for a currency or amount the product would refuse or could not seed.
  seedDepositOf(workload)
  if (workload.kind === "authorize-capture" && scenario.protocol !== "ws") {
    throw new Error(
      "authorize-capture runs over WebSocket only: a capture must follow its authorization on its connection",
    )
  }
}

/** Parses and checks a scenario file's text; the error names the file and what is wrong. */
export const parseScenario = (fileName: string, text: string): Scenario => {
  try {
    const scenario: Scenario = decodeScenario(JSON.parse(text))
    checkConsistency(scenario)
    const expectedName = fileName.replace(/\.json$/, "")
    if (scenario.name !== expectedName) throw new Error(`name "${scenario.name}" differs from the file name`)
    return scenario
  } catch (error) {
    throw new Error(`bad scenario file bench/scenarios/${fileName}: ${error instanceof Error ? error.message : error}`)
  }
}

export const scenarioNames = (): Array<string> =>
  readdirSync(scenariosDirectory)
    .filter((file) => file.endsWith(".json"))
    .map((file) => file.replace(/\.json$/, ""))
    .sort()

export const loadScenario = (name: string): Scenario => {
  if (!scenarioNames().includes(name)) {
    throw new Error(`no scenario "${name}"; there are: ${scenarioNames().join(", ")}`)
  }
  const fileName = `${name}.json`
  return parseScenario(fileName, readFileSync(`${scenariosDirectory}${fileName}`, "utf8"))
}

/** In-flight bound per WebSocket connection: half the node's default WS_IN_FLIGHT_MAX, so the generator queues before the node refuses. */
export const inFlightMaxPerConnectionDefault = 512

/** The load plan of a scenario against a target, with the runner's overrides (a rate sweep, a shorter CI run). */
export const planFromScenario = (
  scenario: Scenario,
  target: Omit<Target, "protocol">,
  overrides: Partial<Omit<LoadPlan, "target" | "workload">> = {},
): LoadPlan => {
  const plan: LoadPlan = {
    target: { ...target, protocol: scenario.protocol },
    ratePerSecond: scenario.ratePerSecond,
    durationMs: scenario.durationMs,
    warmupMs: scenario.warmupMs,
    connections: scenario.connections,
    workers: scenario.workers,
    inFlightMaxPerConnection: scenario.inFlightMaxPerConnection ?? inFlightMaxPerConnectionDefault,
    requestsMax: 0,
    workload: scenario.workload,
    ...(scenario.burst === undefined ? {} : { burst: scenario.burst }),
    ...(scenario.windowMs === undefined ? {} : { windowMs: scenario.windowMs }),
    ...overrides,
  }
  // Bounded by count as well as time: exactly what the schedule makes due.
  const requestsMax =
    overrides.requestsMax ??
    requestCountOf({ ratePerSecond: plan.ratePerSecond, burst: plan.burst }, plan.durationMs, Number.MAX_SAFE_INTEGER)
  return { ...plan, requestsMax }
}
