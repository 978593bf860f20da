/**
 * Properties of the fraud rules under generated rule lists and payment streams: a history rebuilt by
 * replaying the recorded payments equals the live one and gives the same verdicts (evaluation never
 * changes it); with bounds that evict nothing, verdicts match a model over the full, unpruned list
 * of payments; and whatever the bounds, a history never holds more than they allow.
 */
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import type { AccountId } from "../../core/ids.ts"
import type { Currency } from "../../core/money.ts"
import {
  emptyHistory,
  evaluate,
  type HistoryBounds,
  historyWindowMs,
  type RecordedPayment,
  type RiskCandidate,
  type RiskRule,
  type RiskVerdict,
  recordPayment,
} from "../../core/risk.ts"

const numRuns = 500
const currencies: ReadonlyArray<Currency> = ["USD", "EUR"].map((code) => code as Currency)
const payees: ReadonlyArray<AccountId> = ["a", "b", "c", "d", "e", "f"].map((id) => id as AccountId)

const currency = fc.constantFrom(...currencies)
const payee = fc.constantFrom(...payees)
const amountMinor = fc.bigInt({ min: 1n, max: 10_000n })
const outcome = fc.constantFrom("review" as const, "decline" as const)
const limits = fc
  .subarray([...currencies], { minLength: 1 })
  .chain((codes) =>
    fc.tuple(...codes.map((code) => fc.bigInt({ min: 0n, max: 20_000n }).map((limit) => [code, limit] as const))),
  )
  .map((entries) => new Map(entries))

const rule: fc.Arbitrary<Omit<RiskRule, "id">> = fc.oneof(
  fc.record({ kind: fc.constant("amount-limit" as const), outcome, amountMinorMax: limits }),
  fc.record({ kind: fc.constant("new-payee" as const), outcome, amountMinorMax: limits }),
  fc.record({
    kind: fc.constant("velocity" as const),
    outcome,
    windowMs: fc.integer({ min: 1, max: 5000 }),
    countMax: fc.option(fc.integer({ min: 1, max: 8 }), { nil: null }),
    sumMinorMax: fc.oneof(limits, fc.constant(new Map<Currency, bigint>())),
  }),
  fc.record({
    kind: fc.constant("blocked-counterparty" as const),
    outcome: fc.constant("decline" as const),
    blocked: fc.subarray([...payees]).map((ids) => new Set(ids)),
  }),
)
const rules = fc
  .array(rule, { maxLength: 6 })
  .map((list) => list.map((each, index) => ({ ...each, id: `rule-${index}` }) as RiskRule))

const candidate: fc.Arbitrary<RiskCandidate> = fc.record({ to: payee, amountMinor, currency })

/** Payments in time order (gaps of 0 to 2 s, so windows both hold and lose entries). */
const payments = fc
  .array(fc.record({ gapMs: fc.nat(2000), to: payee, amountMinor, currency, settled: fc.boolean() }), {
    maxLength: 40,
  })
  .map((steps) => {
    let createdAtMs = 1_000_000
    return steps.map(({ gapMs, settled, ...rest }): RecordedPayment => {
      createdAtMs += gapMs
      return { ...rest, createdAtMs, status: settled ? "settled" : "pending" }
    })
  })

const boundsOf = (ruleList: ReadonlyArray<RiskRule>, historyEntriesMax: number, knownPayeesMax: number) => ({
  historyWindowMs: historyWindowMs(ruleList),
  historyEntriesMax,
  knownPayeesMax,
  keepsVolume: false,
})

const lastTimeMs = (list: ReadonlyArray<RecordedPayment>): number => list.at(-1)?.createdAtMs ?? 1_000_000

/** The rules restated over every payment ever made, with no window pruning and no caps. */
const modelVerdict = (
  ruleList: ReadonlyArray<RiskRule>,
  history: ReadonlyArray<RecordedPayment>,
  paying: RiskCandidate,
  nowMs: number,
): RiskVerdict => {
  const fired = ruleList.filter((each) => {
    const limit = (map: ReadonlyMap<Currency, bigint>) =>
      (map.get(paying.currency) ?? paying.amountMinor) < paying.amountMinor
    switch (each.kind) {
      case "amount-limit":
        return limit(each.amountMinorMax)
      case "new-payee":
        return !history.some((payment) => payment.to === paying.to) && limit(each.amountMinorMax)
      case "blocked-counterparty":
        return each.blocked.has(paying.to)
      case "velocity": {
        const inWindow = history.filter((payment) => nowMs - payment.createdAtMs < each.windowMs)
        const sumMinor = inWindow
          .filter((payment) => payment.currency === paying.currency)
          .reduce((sum, payment) => sum + payment.amountMinor, paying.amountMinor)
        const sumMax = each.sumMinorMax.get(paying.currency)
        return (
          (each.countMax !== null && inWindow.length + 1 > each.countMax) || (sumMax !== undefined && sumMinor > sumMax)
        )
      }
      default: {
        const _exhaustive: never = each
        return _exhaustive
      }
    }
  })
  const decline = fired.find((each) => each.outcome === "decline")
  if (decline !== undefined) return { outcome: "decline", rule: decline.id, reason: "RISK_DECLINED" }
  return fired[0] === undefined ? { outcome: "approve" } : { outcome: "review", rule: fired[0].id }
}

describe("risk properties", () => {
  it("given a live history, when its payments are replayed into a fresh one, then both and their verdicts are equal", () => {
    fc.assert(
      fc.property(rules, payments, candidate, fc.integer({ min: 0, max: 12 }), (ruleList, list, paying, capMax) => {
        const bounds = boundsOf(ruleList, capMax, Math.max(1, capMax - 4))
        let live = emptyHistory
        for (const payment of list) {
          // The live actor evaluates each payment before its debit is durable; evaluating must not change the history.
          const before = live
          evaluate(ruleList, live, payment, payment.createdAtMs)
          expect(live).toBe(before)
          live = recordPayment(live, payment, payment.createdAtMs, bounds)
        }
        let rebuilt = emptyHistory
        for (const payment of list) rebuilt = recordPayment(rebuilt, payment, payment.createdAtMs, bounds)
        expect(rebuilt).toEqual(live)
        const nowMs = lastTimeMs(list) + 1
        expect(evaluate(ruleList, rebuilt, paying, nowMs)).toEqual(evaluate(ruleList, live, paying, nowMs))
      }),
      { numRuns },
    )
  })

  it("given bounds that evict nothing, when evaluating, then the verdict is the model's over the full payment list", () => {
    fc.assert(
      fc.property(rules, payments, candidate, fc.nat(6000), (ruleList, list, paying, laterMs) => {
        let history = emptyHistory
        for (const payment of list)
          history = recordPayment(history, payment, payment.createdAtMs, boundsOf(ruleList, 40, 6))
        const nowMs = lastTimeMs(list) + laterMs
        expect(evaluate(ruleList, history, paying, nowMs)).toEqual(modelVerdict(ruleList, list, paying, nowMs))
      }),
      { numRuns },
    )
  })

  it("given any bounds, when payments are recorded, then the history never exceeds them and keeps the latest payee", () => {
    fc.assert(
      fc.property(rules, payments, fc.nat(10), fc.nat(4), (ruleList, list, historyEntriesMax, knownPayeesMax) => {
        const bounds: HistoryBounds = boundsOf(ruleList, historyEntriesMax, knownPayeesMax)
        let history = emptyHistory
        for (const payment of list) {
          history = recordPayment(history, payment, payment.createdAtMs, bounds)
          expect(history.entries.length).toBeLessThanOrEqual(historyEntriesMax)
          expect(history.knownPayees.length).toBeLessThanOrEqual(knownPayeesMax)
          if (knownPayeesMax > 0) expect(history.knownPayees.at(-1)).toBe(payment.to)
          for (const entry of history.entries)
            expect(entry.createdAtMs).toBeGreaterThan(payment.createdAtMs - bounds.historyWindowMs)
        }
      }),
      { numRuns },
    )
  })
})
