/**
 * The pure parts of the load generator: the open-loop schedule (burst included), the account
 * pickers' proportions, the cross-shard picker, reading answers, the bounded backlog, histogram
 * merging and the scenario files. No timing is asserted.
 */
import * as hdr from "hdr-histogram-js"
import { describe, expect, it } from "vitest"
import { assertLoopback, type Channel } from "../../bench/load/channels.ts"
import { IndexQueue, OpenLoopGenerator } from "../../bench/load/generator.ts"
import {
  encodeHistogram,
  latencySummaryOf,
  mergeHistograms,
  newLatencyHistogram,
  recordLatencyMs,
  spectrumOf,
} from "../../bench/load/histograms.ts"
import type { SecondReport } from "../../bench/load/messages.ts"
import type { LoadPlan, TransferWorkload } from "../../bench/load/plan.ts"
import { splitEvenly, validatePlan } from "../../bench/load/run-load.ts"
import { dueCountAt, dueTimeMs, requestCountOf } from "../../bench/load/schedule.ts"
import {
  accountIdOf,
  accountPickerOf,
  benchTenantId,
  echoTransfers,
  httpErrorCodeOf,
  readAnswer,
  seededRandom,
  transferBody,
  transferFields,
  transferFrame,
  transferPickerOf,
} from "../../bench/load/workload.ts"
import { loadScenario, parseScenario, planFromScenario, scenarioNames } from "../../bench/scenarios/scenarios.ts"
import { type AccountId, shardOf } from "../../core/ids.ts"

const workloadOf = (overrides: Partial<TransferWorkload> = {}): TransferWorkload => ({ ...echoTransfers, ...overrides })

describe("open-loop schedule", () => {
  it("makes request i due at i / rate without a burst", () => {
    const schedule = { ratePerSecond: 2000, burst: undefined }
    expect(dueTimeMs(schedule, 0)).toBe(0)
    expect(dueTimeMs(schedule, 1)).toBe(0.5)
    expect(dueTimeMs(schedule, 2000)).toBe(1000)
    expect(requestCountOf(schedule, 10_000, Number.MAX_SAFE_INTEGER)).toBe(20_000)
    expect(requestCountOf(schedule, 10_000, 123)).toBe(123)
  })

  it("offers rate x multiplier inside the burst window and the plain rate around it", () => {
    const schedule = { ratePerSecond: 1000, burst: { atMs: 2000, durationMs: 1000, multiplier: 10 } }
    expect(dueCountAt(schedule, 2000)).toBe(2000)
    expect(dueCountAt(schedule, 3000)).toBe(12_000)
    expect(dueCountAt(schedule, 5000)).toBe(14_000)
    // Due times invert the count: the 2000th request starts the burst, then 10 per ms, then 1 per ms.
    expect(dueTimeMs(schedule, 1999)).toBe(1999)
    expect(dueTimeMs(schedule, 2000)).toBe(2000)
    expect(dueTimeMs(schedule, 2010)).toBeCloseTo(2001, 9)
    expect(dueTimeMs(schedule, 12_000)).toBeCloseTo(3000, 9)
    expect(dueTimeMs(schedule, 12_001)).toBeCloseTo(3001, 9)
    let inside = 0
    let previous = -1
    for (let index = 0; index < 14_000; index++) {
      const due = dueTimeMs(schedule, index)
      expect(due).toBeGreaterThan(previous)
      previous = due
      if (due >= 2000 && due < 3000) inside++
    }
    expect(inside).toBe(10_000)
  })
})

describe("account pickers", () => {
  const picks = 200_000

  it("gives the hot 1% of accounts about 50% of the picks", () => {
    const pick = accountPickerOf(10_000, { kind: "hotspot", hotFraction: 0.01, hotShare: 0.5 }, seededRandom(7))
    let hot = 0
    const seen = new Set<number>()
    for (let draw = 0; draw < picks; draw++) {
      const index = pick()
      expect(index).toBeGreaterThanOrEqual(0)
      expect(index).toBeLessThan(10_000)
      if (index < 100) hot++
      seen.add(index)
    }
    expect(hot / picks).toBeGreaterThan(0.49)
    expect(hot / picks).toBeLessThan(0.51)
    // The cold half is spread over the other accounts, not stuck on a few.
    expect(seen.size).toBeGreaterThan(9_900)
  })

  it("gives the same 1% of accounts about 1% of the picks when uniform", () => {
    const pick = accountPickerOf(10_000, { kind: "uniform" }, seededRandom(11))
    let hot = 0
    for (let draw = 0; draw < picks; draw++) if (pick() < 100) hot++
    expect(hot / picks).toBeGreaterThan(0.008)
    expect(hot / picks).toBeLessThan(0.012)
  })

  it("never pays an account to itself", () => {
    const picker = transferPickerOf(workloadOf({ accounts: 2 }), seededRandom(3))
    for (let draw = 0; draw < 1_000; draw++) {
      const { from, to } = picker.next()
      expect(from).not.toBe(to)
    }
  })

  it("picks the creditor on another shard when crossShardOnly, by the product's own shard function", () => {
    const workload = workloadOf({ accounts: 1_000, crossShardOnly: true, shardCount: 16 })
    const picker = transferPickerOf(workload, seededRandom(5))
    const shardOfIndex = (index: number) => shardOf(benchTenantId, accountIdOf(index) as AccountId, 16)
    for (let draw = 0; draw < 5_000; draw++) {
      const { from, to } = picker.next()
      expect(shardOfIndex(from)).not.toBe(shardOfIndex(to))
    }
  })

  it("refuses crossShardOnly with a single shard", () => {
    expect(() => transferPickerOf(workloadOf({ crossShardOnly: true, shardCount: 1 }), seededRandom(1))).toThrow(
      /2\.\.65535 shards/,
    )
  })

  it("repeats the same picks for the same seed", () => {
    const first = transferPickerOf(workloadOf(), seededRandom(42))
    const second = transferPickerOf(workloadOf(), seededRandom(42))
    for (let draw = 0; draw < 100; draw++) expect(first.next()).toEqual(second.next())
  })
})

describe("frames and answers", () => {
  it("builds valid JSON frames and bodies in the wire contract", () => {
    const fields = transferFields(workloadOf(), "run1-7", 3, 9)
    expect(JSON.parse(transferFrame(7, fields))).toEqual({
      op: "transfer",
      reqId: 7,
      paymentId: "run1-7",
      from: "acct-3",
      to: "acct-9",
      amount: "0.01",
      currency: "USD",
    })
    expect(JSON.parse(transferBody(fields)).paymentId).toBe("run1-7")
  })

  it("reads the product's ok answers without parsing, and errors and other encodings by parsing", () => {
    expect(readAnswer('{"reqId":42,"ok":true,"payment":{"paymentId":"p"}}')).toEqual({
      reqId: 42,
      errorCode: undefined,
    })
    expect(readAnswer('{"reqId":5,"ok":false,"error":{"code":"OVERLOADED","message":"m"}}')).toEqual({
      reqId: 5,
      errorCode: "OVERLOADED",
    })
    expect(readAnswer('{"ok":true,"reqId":"9"}')).toEqual({ reqId: 9, errorCode: undefined })
    expect(readAnswer('{"ok":false,"error":{"code":"INVALID_REQUEST"}}')).toBeUndefined()
    expect(readAnswer("not json")).toBeUndefined()
  })

  it("maps HTTP answers to the body's error code, else the status", () => {
    expect(httpErrorCodeOf(200, "{}")).toBeUndefined()
    expect(httpErrorCodeOf(429, '{"error":{"code":"OVERLOADED","message":"m"}}')).toBe("OVERLOADED")
    expect(httpErrorCodeOf(502, "<html>bad gateway</html>")).toBe("HTTP_502")
  })
})

describe("generator bounds and plan checks", () => {
  it("keeps the backlog first in, first out and refuses beyond its capacity", () => {
    const queue = new IndexQueue(3)
    expect([queue.push(1), queue.push(2), queue.push(3), queue.push(4)]).toEqual([true, true, true, false])
    expect(queue.shift()).toBe(1)
    expect(queue.push(5)).toBe(true)
    expect([queue.shift(), queue.shift(), queue.shift(), queue.shift()]).toEqual([2, 3, 5, undefined])
  })

  it("splits connections between workers as evenly as whole numbers allow", () => {
    expect(splitEvenly(8, 2)).toEqual([4, 4])
    expect(splitEvenly(7, 3)).toEqual([3, 2, 2])
  })

  it("refuses targets off this machine and plans without a bound", () => {
    expect(() => assertLoopback("10.0.0.5")).toThrow(/loopback/)
    expect(() => assertLoopback("example.com")).toThrow(/loopback/)
    for (const host of ["127.0.0.1", "::1", "localhost"]) expect(() => assertLoopback(host)).not.toThrow()
    const plan = planFromScenario(loadScenario("smoke"), { host: "127.0.0.1", port: 1, apiKey: "k" })
    expect(() => validatePlan(plan)).not.toThrow()
    expect(() => validatePlan({ ...plan, target: { ...plan.target, host: "192.168.1.1" } })).toThrow(/loopback/)
    expect(() => validatePlan({ ...plan, requestsMax: Number.POSITIVE_INFINITY })).toThrow(/requestsMax/)
    expect(() => validatePlan({ ...plan, warmupMs: plan.durationMs } satisfies LoadPlan)).toThrow(/warmupMs/)
  })
})

describe("histograms", () => {
  it("merges the workers' compressed histograms into one holding every value", () => {
    const first = newLatencyHistogram()
    const second = newLatencyHistogram()
    for (let value = 1; value <= 1000; value++) recordLatencyMs(first, value / 100)
    for (let value = 1; value <= 1000; value++) recordLatencyMs(second, 10 + value / 100)
    const merged = mergeHistograms([encodeHistogram(first), encodeHistogram(second), ""])
    expect(merged.totalCount).toBe(2000)
    const summary = latencySummaryOf(merged)
    expect(summary.p50).toBeCloseTo(10, 1)
    expect(summary.max).toBeCloseTo(20, 1)
    expect(summary.p99).toBeGreaterThan(19.5)
    const roundTrip = hdr.decodeFromCompressedBase64(encodeHistogram(merged))
    expect(roundTrip.totalCount).toBe(2000)
  })

  it("gives a percentile spectrum rising to 100 on the 1/(1-p) ladder", () => {
    const histogram = newLatencyHistogram()
    for (let value = 1; value <= 100_000; value++) recordLatencyMs(histogram, value / 1000)
    const spectrum = spectrumOf(histogram)
    expect(spectrum[0]?.percentile).toBe(0)
    expect(spectrum.at(-1)?.percentile).toBe(100)
    expect(spectrum.at(-1)?.latencyMs).toBeGreaterThanOrEqual(latencySummaryOf(histogram).max)
    for (let index = 1; index < spectrum.length; index++) {
      const point = spectrum[index]
      const before = spectrum[index - 1]
      expect(point?.percentile).toBeGreaterThan(before?.percentile ?? 0)
      expect(point?.latencyMs).toBeGreaterThanOrEqual(before?.latencyMs ?? 0)
    }
    expect(spectrum.some((point) => point.percentile > 99.99)).toBe(true)
    expect(spectrumOf(newLatencyHistogram())).toEqual([])
  })
})

describe("scenario files", () => {
  it("all load, and the required ones are there", () => {
    const names = scenarioNames()
    for (const name of [
      "smoke",
      "uniform",
      "hot-accounts",
      "cross-shard",
      "burst",
      "http-uniform",
      "authorize-capture",
      "large-population",
    ]) {
      expect(names).toContain(name)
    }
    for (const name of names) expect(loadScenario(name).name).toBe(name)
    expect(loadScenario("authorize-capture").requires).toBeUndefined()
    expect(loadScenario("http-uniform").protocol).toBe("http")
    expect(loadScenario("large-population").workload).toMatchObject({ accounts: 1_000_000 })
  })

  it("bounds a scenario's plan by the count its schedule makes due", () => {
    const burst = loadScenario("burst")
    const plan = planFromScenario(burst, { host: "127.0.0.1", port: 1, apiKey: "k" })
    // 20 s at 2000/s plus 2 s of 9 x 2000/s extra.
    expect(plan.requestsMax).toBe(20 * 2000 + 2 * 9 * 2000)
    expect(planFromScenario(burst, { host: "::1", port: 1, apiKey: "k" }, { ratePerSecond: 10 }).requestsMax).toBe(
      20 * 10 + 2 * 9 * 10,
    )
  })

  it("takes the generator's in-flight bound from the scenario, else the default under the node's", () => {
    const target = { host: "127.0.0.1", port: 1, apiKey: "k" }
    expect(planFromScenario(loadScenario("burst"), target).inFlightMaxPerConnection).toBe(4096)
    expect(planFromScenario(loadScenario("uniform"), target).inFlightMaxPerConnection).toBe(512)
  })

  it("names the file and the field of a bad scenario", () => {
    const good = JSON.parse(JSON.stringify(loadScenario("uniform")))
    expect(() => parseScenario("uniform.json", JSON.stringify({ ...good, ratePerSecond: -1 }))).toThrow(
      /bench\/scenarios\/uniform\.json[\s\S]*ratePerSecond/,
    )
    expect(() => parseScenario("uniform.json", JSON.stringify({ ...good, rate: 5 }))).toThrow(/rate/)
    expect(() => parseScenario("other.json", JSON.stringify(good))).toThrow(/differs from the file name/)
    expect(() => loadScenario("no-such-scenario")).toThrow(/there are: .*uniform/)
  })
})

type Behaviour = "ok" | "never" | "OVERLOADED" | "closed"

/** Runs the engine for 300 ms at 2000/s (100 ms of warm-up) against in-memory channels that answer as told. */
const runEngine = async (behaviour: Behaviour, options: { workerIndex?: number; workers?: number } = {}) => {
  const plan = {
    ...planFromScenario(loadScenario("smoke"), { host: "127.0.0.1", port: 1, apiKey: "k" }),
    ratePerSecond: 2000,
    durationMs: 300,
    warmupMs: 100,
    requestsMax: 1_000_000,
  }
  const seconds: Array<SecondReport> = []
  const sentIndexes: Array<number> = []
  const share = {
    plan,
    workerIndex: options.workerIndex ?? 0,
    workers: options.workers ?? 1,
    connections: 1,
    runId: "test",
    drainTimeoutMs: 20,
    // Answers come after a dispatch batch, so the backlog must hold a late timer's batch unless the test is about its bound.
    backlogMax: behaviour === "never" ? 10 : 1_000,
  }
  const generator = new OpenLoopGenerator(share, (report) => seconds.push(report))
  const outstanding = new Set<number>()
  const channel: Channel = {
    inFlightMax: 2,
    outstanding,
    isOpen: () => behaviour !== "closed",
    send: (index, fields) => {
      expect(JSON.parse(`{${fields}}`).paymentId).toBe(`test-${index}`)
      sentIndexes.push(index)
      outstanding.add(index)
      if (behaviour === "never") return
      queueMicrotask(() => {
        outstanding.delete(index)
        generator.onAnswer(channel, index, behaviour === "ok" ? undefined : behaviour)
      })
    },
    cork: () => {},
    uncork: () => {},
    close: () => {},
  }
  const done = await generator.run([channel], performance.now())
  const sum = (pick: (report: SecondReport) => number) => seconds.reduce((total, report) => total + pick(report), 0)
  return {
    done,
    sentIndexes,
    secondsDue: sum((report) => report.due),
    secondsCompleted: sum((report) => report.completed),
  }
}

describe("open-loop engine (in-memory channels)", () => {
  // 600 requests are due in 300 ms at 2000/s; the 400 due from 100 ms on are recorded.
  it("records every answered request after warm-up, and counts warm-up ones only per second", async () => {
    const { done, sentIndexes, secondsDue, secondsCompleted } = await runEngine("ok")
    expect(sentIndexes).toHaveLength(600)
    expect([done.due, done.sent, done.completed]).toEqual([400, 400, 400])
    expect(done.errorsByCode).toEqual({})
    expect(hdr.decodeFromCompressedBase64(done.histogramBase64).totalCount).toBe(400)
    expect([secondsDue, secondsCompleted]).toEqual([600, 600])
  })

  it("sends only its own share of the indexes", async () => {
    const { sentIndexes, done } = await runEngine("ok", { workerIndex: 1, workers: 2 })
    expect(sentIndexes).toHaveLength(300)
    expect(sentIndexes.every((index) => index % 2 === 1)).toBe(true)
    expect(done.completed).toBe(200)
  })

  it("bounds the backlog when nothing answers: the overflow is GENERATOR_BACKLOG, the rest TIMEOUT at the drain", async () => {
    const { done, sentIndexes } = await runEngine("never")
    // Two in flight and ten waiting, all due during warm-up, so only the drops after warm-up count.
    expect(sentIndexes).toEqual([0, 1])
    expect(done.errorsByCode).toEqual({ GENERATOR_BACKLOG: 400 })
    expect(done.completed).toBe(0)
  })

  it("counts refusals by their code and closed connections as SOCKET_CLOSED", async () => {
    expect((await runEngine("OVERLOADED")).done.errorsByCode).toEqual({ OVERLOADED: 400 })
    const closed = await runEngine("closed")
    expect(closed.sentIndexes).toEqual([])
    expect(closed.done.errorsByCode).toEqual({ SOCKET_CLOSED: 400 })
  })
})
