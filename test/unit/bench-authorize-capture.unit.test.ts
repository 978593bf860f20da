/**
 * The authorize-capture load: its frames and answers, the seed deposit, the scenario file, the
 * bounded capture queue, and the generator's flow against in-memory connections (every authorized
 * payment captured once, on its connection, never before its delay; declines and drops counted;
 * every payment ending exactly once). No timing is asserted beyond "not before it was due".
 */
import * as hdr from "hdr-histogram-js"
import { describe, expect, it } from "vitest"
import {
  CaptureQueue,
  captureQueueCapacityOf,
  captureQueueFullCode,
  captureRequestIdBase,
  isCaptureRequestId,
} from "../../bench/load/authorize-capture.ts"
import type { Channel } from "../../bench/load/channels.ts"
import { OpenLoopGenerator } from "../../bench/load/generator.ts"
import { encodeHistogram, newLatencyHistogram, recordLatencyMs } from "../../bench/load/histograms.ts"
import type { DoneReport, OperationReport } from "../../bench/load/messages.ts"
import type { AuthorizeCaptureWorkload, LoadPlan } from "../../bench/load/plan.ts"
import { mergeOperations } from "../../bench/load/run-load.ts"
import {
  authorizeFields,
  captureFields,
  echoTransfers,
  type PaymentOperation,
  paymentStatusOf,
  requestFrame,
  seedDepositOf,
  unexpectedStatusCodeOf,
} from "../../bench/load/workload.ts"
import { judgeLifecycleRun } from "../../bench/runner/slo.ts"
import { loadScenario, parseScenario, planFromScenario } from "../../bench/scenarios/scenarios.ts"

const workloadOf = (overrides: Partial<AuthorizeCaptureWorkload> = {}): AuthorizeCaptureWorkload => ({
  ...echoTransfers,
  kind: "authorize-capture",
  captureDelayMs: 5,
  ...overrides,
})

const paymentAnswer = (reqId: number, status: string, extra = ""): string =>
  `{"reqId":${reqId},"ok":true,"payment":{"paymentId":"p","from":"acct-1","to":"acct-2","amount":"0.01","currency":"USD","status":"${status}"${extra}}}`

describe("authorize and capture frames and answers", () => {
  it("builds authorize and capture frames in the wire contract", () => {
    expect(JSON.parse(requestFrame("authorize", 7, authorizeFields(workloadOf(), "run1-7", 3, 9)))).toEqual({
      op: "authorize",
      reqId: 7,
      paymentId: "run1-7",
      from: "acct-3",
      to: "acct-9",
      amount: "0.01",
      currency: "USD",
    })
    const held = JSON.parse(requestFrame("authorize", 7, authorizeFields(workloadOf({ holdSeconds: 60 }), "p", 3, 9)))
    expect(held.holdSeconds).toBe(60)
    const captureId = captureRequestIdBase + 7
    expect(JSON.parse(requestFrame("capture", captureId, captureFields("run1-7", 3)))).toEqual({
      op: "capture",
      reqId: captureId,
      from: "acct-3",
      paymentId: "run1-7",
      captureId: "run1-7-capture",
    })
    expect([isCaptureRequestId(captureId), isCaptureRequestId(7)]).toEqual([true, false])
  })

  it("reads the payment's status without parsing, and other encodings by parsing", () => {
    expect(paymentStatusOf(paymentAnswer(1, "authorized", ',"holdExpiresAt":"x"'))).toBe("authorized")
    expect(paymentStatusOf('{"ok":true,"reqId":1,"payment":{"status":"settled"}}')).toBe("settled")
    expect(paymentStatusOf('{"reqId":1,"ok":true,"account":{"status":"open"}}')).toBeUndefined()
    expect(paymentStatusOf("not json")).toBeUndefined()
  })

  it("names an unexpected status, and a decline by its reason", () => {
    const declined = paymentAnswer(1, "declined", ',"reason":"INSUFFICIENT_FUNDS"')
    expect(unexpectedStatusCodeOf("declined", declined)).toBe("DECLINED_INSUFFICIENT_FUNDS")
    expect(unexpectedStatusCodeOf("review", paymentAnswer(1, "review"))).toBe("UNEXPECTED_REVIEW")
    expect(unexpectedStatusCodeOf(undefined, undefined)).toBe("UNEXPECTED_NONE")
  })
})

describe("seed deposit", () => {
  it("gives each account a hundred million payments of the amount, exactly", () => {
    expect(seedDepositOf(echoTransfers)).toBe("1000000.00")
    expect(seedDepositOf({ ...echoTransfers, amount: "12.34" })).toBe("1234000000.00")
    expect(seedDepositOf({ ...echoTransfers, currency: "JPY", amount: "5" })).toBe("500000000")
  })

  it("refuses what the product could not take", () => {
    expect(() => seedDepositOf({ ...echoTransfers, currency: "XYZ" })).toThrow(/XYZ/)
    expect(() => seedDepositOf({ ...echoTransfers, amount: "0.001" })).toThrow(/TOO_MANY_DECIMALS/)
    expect(() => seedDepositOf({ ...echoTransfers, amount: "99999999999" })).toThrow(/too large to seed/)
  })
})

describe("authorize-capture scenario file", () => {
  it("is runnable: no requires, WebSocket, a capture delay", () => {
    const scenario = loadScenario("authorize-capture")
    expect(scenario.requires).toBeUndefined()
    expect(scenario.protocol).toBe("ws")
    expect(scenario.workload).toMatchObject({ kind: "authorize-capture", captureDelayMs: 50, amount: "0.01" })
  })

  it("refuses HTTP, a negative delay and a hold beyond the product's bound", () => {
    const good = JSON.parse(JSON.stringify(loadScenario("authorize-capture")))
    const file = "authorize-capture.json"
    expect(() => parseScenario(file, JSON.stringify({ ...good, protocol: "http" }))).toThrow(/WebSocket only/)
    const withWorkload = (fields: object) => JSON.stringify({ ...good, workload: { ...good.workload, ...fields } })
    expect(() => parseScenario(file, withWorkload({ captureDelayMs: -1 }))).toThrow(/captureDelayMs/)
    expect(() => parseScenario(file, withWorkload({ holdSeconds: 31 * 24 * 3600 }))).toThrow(/holdSeconds/)
    expect(parseScenario(file, withWorkload({ holdSeconds: 600 })).workload).toMatchObject({ holdSeconds: 600 })
  })
})

describe("capture queue", () => {
  it("keeps captures first in, first out with their debtor and due time, and refuses beyond its capacity", () => {
    const queue = new CaptureQueue(2)
    expect(queue.headDueMs()).toBe(Number.POSITIVE_INFINITY)
    expect([queue.push(1, 10, 5), queue.push(2, 20, 6), queue.push(3, 30, 7)]).toEqual([true, true, false])
    expect(queue.headDueMs()).toBe(5)
    expect(queue.shift()).toEqual({ index: 1, from: 10, dueMs: 5 })
    expect(queue.push(3, 30, 7)).toBe(true)
    expect([queue.shift()?.index, queue.shift()?.index, queue.shift()]).toEqual([2, 3, undefined])
  })

  it("shares the worker's backlog bound among its connections", () => {
    expect(captureQueueCapacityOf(100_000, 4)).toBe(25_000)
    expect(captureQueueCapacityOf(3, 8)).toBe(1)
  })
})

interface Sent {
  readonly channel: number
  readonly operation: PaymentOperation
  readonly reqId: number
  readonly fields: Record<string, unknown>
  readonly atMs: number
}

interface EngineOptions {
  readonly captureDelayMs: number
  readonly backlogMax?: number
  readonly drainTimeoutMs?: number
  readonly channels?: number
  /** How the node answers an authorization (by schedule index); captures are always settled. */
  readonly authorizationStatus?: (index: number) => string
}

/**
 * Runs the engine for 300 ms at 2000/s (100 ms of warm-up) over in-memory connections that answer
 * on the next microtask, recording what was sent when, and when each authorization was answered.
 */
const runLifecycle = async (options: EngineOptions) => {
  const plan: LoadPlan = {
    ...planFromScenario(loadScenario("authorize-capture"), { host: "127.0.0.1", port: 1, apiKey: "k" }),
    workload: workloadOf({ captureDelayMs: options.captureDelayMs }),
    ratePerSecond: 2000,
    durationMs: 300,
    warmupMs: 100,
    requestsMax: 1_000_000,
  }
  const share = {
    plan,
    workerIndex: 0,
    workers: 1,
    connections: options.channels ?? 2,
    runId: "test",
    drainTimeoutMs: options.drainTimeoutMs ?? 1_000,
    backlogMax: options.backlogMax ?? 10_000,
  }
  const generator = new OpenLoopGenerator(share, () => {})
  const sent: Array<Sent> = []
  const authorizationAnsweredAtMs = new Map<number, number>()
  const statusOf = options.authorizationStatus ?? (() => "authorized")
  const channelOf = (channelIndex: number): Channel => {
    const outstanding = new Set<number>()
    const channel: Channel = {
      inFlightMax: 64,
      outstanding,
      isOpen: () => true,
      send: (reqId, fields, operation) => {
        sent.push({
          channel: channelIndex,
          operation,
          reqId,
          fields: JSON.parse(`{${fields}}`),
          atMs: performance.now(),
        })
        outstanding.add(reqId)
        queueMicrotask(() => {
          outstanding.delete(reqId)
          const status = operation === "capture" ? "settled" : statusOf(reqId)
          if (operation === "authorize") authorizationAnsweredAtMs.set(reqId, performance.now())
          generator.onAnswer(channel, reqId, undefined, paymentAnswer(reqId, status, ',"reason":"INSUFFICIENT_FUNDS"'))
        })
      },
      cork: () => {},
      uncork: () => {},
      close: () => {},
    }
    return channel
  }
  const channels = Array.from({ length: share.connections }, (_, index) => channelOf(index))
  const done = await generator.run(channels, performance.now())
  return { done, sent, authorizationAnsweredAtMs }
}

const operationOf = (done: DoneReport, name: OperationReport["operation"]): OperationReport => {
  const report = done.operations?.find((operation) => operation.operation === name)
  if (report === undefined) throw new Error(`no ${name} figures`)
  return report
}

const errorCount = (errorsByCode: Readonly<Record<string, number>>): number =>
  Object.values(errorsByCode).reduce((sum, count) => sum + count, 0)

describe("authorize-capture engine (in-memory connections)", () => {
  // 600 authorizations are due in 300 ms at 2000/s; the 400 due from 100 ms on are recorded.
  it("captures every authorized payment once, on its connection, not before its delay", async () => {
    const { done, sent, authorizationAnsweredAtMs } = await runLifecycle({ captureDelayMs: 5 })
    const authorizations = sent.filter((request) => request.operation === "authorize")
    const captures = sent.filter((request) => request.operation === "capture")
    expect(authorizations).toHaveLength(600)
    expect(captures).toHaveLength(600)
    expect(sent.some((request) => request.operation === "transfer")).toBe(false)
    const authorizationsById = new Map(authorizations.map((request) => [request.reqId, request]))
    for (const capture of captures) {
      const index = capture.reqId - captureRequestIdBase
      const authorization = authorizationsById.get(index)
      expect(authorization).toBeDefined()
      expect(capture.channel).toBe(authorization?.channel)
      expect(capture.fields).toEqual({
        from: authorization?.fields.from,
        paymentId: authorization?.fields.paymentId,
        captureId: `${authorization?.fields.paymentId}-capture`,
      })
      expect(capture.atMs).toBeGreaterThanOrEqual((authorizationAnsweredAtMs.get(index) ?? Number.NaN) + 5)
    }
    expect(new Set(captures.map((capture) => capture.reqId)).size).toBe(600)
    expect([done.due, done.sent, done.completed]).toEqual([400, 400, 400])
    expect(done.errorsByCode).toEqual({})
    expect(hdr.decodeFromCompressedBase64(done.histogramBase64).totalCount).toBe(400)
    const authorize = operationOf(done, "authorize")
    const capture = operationOf(done, "capture")
    expect([authorize.due, authorize.sent, authorize.completed]).toEqual([400, 400, 400])
    expect([capture.due, capture.sent, capture.completed]).toEqual([400, 400, 400])
    expect(hdr.decodeFromCompressedBase64(capture.histogramBase64).totalCount).toBe(400)
  })

  it("captures nothing it was not told was authorized, and counts a decline by its reason", async () => {
    const { done, sent } = await runLifecycle({
      captureDelayMs: 0,
      authorizationStatus: (index) => (index % 4 === 0 ? "declined" : "authorized"),
    })
    const captured = sent.filter((request) => request.operation === "capture")
    expect(captured.every((capture) => (capture.reqId - captureRequestIdBase) % 4 !== 0)).toBe(true)
    expect(captured).toHaveLength(450)
    expect(done.errorsByCode).toEqual({ DECLINED_INSUFFICIENT_FUNDS: 100 })
    expect(done.completed).toBe(300)
    expect(operationOf(done, "authorize").errorsByCode).toEqual({ DECLINED_INSUFFICIENT_FUNDS: 100 })
    expect(operationOf(done, "capture").due).toBe(300)
  })

  it("bounds the captures waiting for their time: the overflow is a generator-side drop", async () => {
    // One connection, room for two waiting captures, each waiting 200 ms: almost every capture is dropped.
    const { done, sent } = await runLifecycle({ captureDelayMs: 200, backlogMax: 2, channels: 1 })
    const capture = operationOf(done, "capture")
    expect(capture.errorsByCode[captureQueueFullCode]).toBeGreaterThan(300)
    expect(done.errorsByCode[captureQueueFullCode]).toBe(capture.errorsByCode[captureQueueFullCode])
    expect(sent.filter((request) => request.operation === "capture").length).toBeLessThan(100)
    // Every payment ends once: captured, or failed with one code.
    expect(done.completed + errorCount(done.errorsByCode)).toBe(done.due)
    expect(capture.completed + errorCount(capture.errorsByCode)).toBe(capture.due)
  })

  it("fails the captures still waiting at the drain deadline as TIMEOUT", async () => {
    const { done } = await runLifecycle({ captureDelayMs: 500, drainTimeoutMs: 50 })
    expect(done.completed).toBe(0)
    expect(done.errorsByCode).toEqual({ TIMEOUT: 400 })
    expect(operationOf(done, "authorize").completed).toBe(400)
    expect(operationOf(done, "capture").errorsByCode).toEqual({ TIMEOUT: 400 })
  })
})

describe("merging and judging the steps", () => {
  const histogramOf = (latenciesMs: ReadonlyArray<number>) => {
    const histogram = newLatencyHistogram()
    for (const latencyMs of latenciesMs) recordLatencyMs(histogram, latencyMs)
    return encodeHistogram(histogram)
  }
  const report = (operation: OperationReport["operation"], latencyMs: number, errors = {}): OperationReport => ({
    operation,
    due: 100,
    sent: 100,
    completed: 100,
    errorsByCode: errors,
    histogramBase64: histogramOf(Array.from({ length: 100 }, () => latencyMs)),
  })

  it("merges each step over the workers, with rates over the payment's windows", () => {
    const merged = mergeOperations(
      [
        [report("authorize", 2), report("capture", 3, { OVERLOADED: 1 })],
        [report("authorize", 4), report("capture", 3, { OVERLOADED: 2 })],
      ],
      { offeredMs: 2_000, achievedMs: 4_000 },
    )
    expect(merged.map((operation) => operation.operation)).toEqual(["authorize", "capture"])
    const [authorize, capture] = merged
    expect([authorize?.due, authorize?.completed, authorize?.offeredRate, authorize?.achievedRate]).toEqual([
      200, 200, 100, 50,
    ])
    expect(authorize?.latencyMs.max).toBeCloseTo(4, 1)
    expect(capture?.errorsByCode).toEqual({ OVERLOADED: 3 })
  })

  it("judges each step's p99 against the transfers' in the same run, and any error", () => {
    const [authorize, capture] = mergeOperations([[report("authorize", 3), report("capture", 5)]], {
      offeredMs: 1_000,
      achievedMs: 1_000,
    })
    const summary = (p99: number) => ({ p50: p99, p90: p99, p99, p999: p99, max: p99, mean: p99 })
    const lifecycle = {
      offeredRate: 100,
      achievedRate: 100,
      sent: 100,
      completed: 100,
      errorsByCode: {},
      latencyMs: summary(9),
      spectrum: [],
      histogramBase64: "",
      perSecond: [],
      durationMs: 1_000,
      operations: [authorize, capture].filter((operation) => operation !== undefined),
    }
    const transfers = { ...lifecycle, latencyMs: summary(2) }
    const verdicts = judgeLifecycleRun(lifecycle, transfers, { p99RatioToTransfersMax: 2 })
    expect(verdicts.map((verdict) => [verdict.name.split(" ")[0], verdict.pass])).toEqual([
      ["authorize", true],
      ["capture", false],
      ["authorize-capture", true],
    ])
    const failing = judgeLifecycleRun({ ...lifecycle, errorsByCode: { TIMEOUT: 1 } }, transfers, {
      p99RatioToTransfersMax: 2,
    })
    expect(failing.at(-1)?.pass).toBe(false)
  })
})
