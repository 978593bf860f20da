/**
 * Specs of the fraud rules at their edges (a limit and one minor unit above it, the exact end of a
 * velocity window, a count equal to its maximum and one above), of precedence when several rules
 * fire, of the bounded debtor history, and of configuration errors naming the offending field.
 */
import { describe, expect, it } from "vitest"
import type { AccountId } from "../../core/ids.ts"
import type { Payment } from "../../core/ledger.ts"
import type { Currency } from "../../core/money.ts"
import {
  type DebtorHistory,
  emptyHistory,
  evaluate,
  type HistoryBounds,
  historyWindowMs,
  isRecorded,
  isRiskConfigError,
  parseRules,
  type RecordedPayment,
  type RiskRule,
  recordPayment,
  riskRulesMax,
} from "../../core/risk.ts"

const usd = "USD" as Currency
const eur = "EUR" as Currency
const bob = "bob" as AccountId
const carol = "carol" as AccountId
const dave = "dave" as AccountId

const nowMs = 1_000_000
const windowMs = 60_000
const roomyBounds: HistoryBounds = {
  historyWindowMs: windowMs,
  historyEntriesMax: 100,
  knownPayeesMax: 100,
  keepsVolume: true,
}

const rulesOf = (config: unknown): ReadonlyArray<RiskRule> => {
  const rules = parseRules(config)
  if (isRiskConfigError(rules)) throw new Error(rules.message)
  return rules
}

const paid = (to: AccountId, amountMinor: bigint, createdAtMs: number, currency = usd): RecordedPayment => ({
  to,
  amountMinor,
  currency,
  createdAtMs,
  status: "settled",
})

const historyOf = (payments: ReadonlyArray<RecordedPayment>, bounds = roomyBounds): DebtorHistory => {
  let history = emptyHistory
  for (const payment of payments) history = recordPayment(history, payment, payment.createdAtMs, bounds)
  return history
}

const pay = (to: AccountId, amountMinor: bigint, currency = usd) => ({ to, amountMinor, currency })

describe("amount-limit", () => {
  const rules = rulesOf([{ id: "big-payment", kind: "amount-limit", outcome: "review", amountMax: { USD: "1000.00" } }])

  it("given a limit of 1000.00 USD, when paying exactly 1000.00, then it is approved", () => {
    expect(evaluate(rules, emptyHistory, pay(bob, 100_000n), nowMs)).toEqual({ outcome: "approve" })
  })

  it("given a limit of 1000.00 USD, when paying 1000.01, then it goes to review naming the rule", () => {
    expect(evaluate(rules, emptyHistory, pay(bob, 100_001n), nowMs)).toEqual({
      outcome: "review",
      rule: "big-payment",
    })
  })

  it("given a limit in USD only, when paying far more in EUR, then it is approved", () => {
    expect(evaluate(rules, emptyHistory, pay(bob, 10n ** 12n, eur), nowMs)).toEqual({ outcome: "approve" })
  })
})

describe("velocity by count", () => {
  const rules = rulesOf([{ id: "burst", kind: "velocity", outcome: "decline", windowMs, countMax: 3 }])

  it("given two payments in the window and countMax 3, when a third is evaluated, then it is approved", () => {
    const history = historyOf([paid(bob, 1n, nowMs - 10), paid(carol, 1n, nowMs - 5)])
    expect(evaluate(rules, history, pay(bob, 1n), nowMs).outcome).toBe("approve")
  })

  it("given three payments in the window and countMax 3, when a fourth is evaluated, then it is declined", () => {
    const history = historyOf([paid(bob, 1n, nowMs - 10), paid(carol, 1n, nowMs - 5), paid(bob, 1n, nowMs)])
    expect(evaluate(rules, history, pay(bob, 1n), nowMs)).toEqual({
      outcome: "decline",
      rule: "burst",
      reason: "RISK_DECLINED",
    })
  })

  it("given payments in another currency, when counting, then they count too", () => {
    const history = historyOf([paid(bob, 1n, nowMs, eur), paid(bob, 1n, nowMs, eur), paid(bob, 1n, nowMs, eur)])
    expect(evaluate(rules, history, pay(bob, 1n), nowMs).outcome).toBe("decline")
  })
})

describe("velocity window boundary", () => {
  const rules = rulesOf([{ id: "one-a-minute", kind: "velocity", outcome: "review", windowMs, countMax: 1 }])

  it("given a payment exactly windowMs before now, when evaluating, then it is outside the window", () => {
    const history = historyOf([paid(bob, 1n, nowMs - windowMs)], { ...roomyBounds, historyWindowMs: 10 * windowMs })
    expect(evaluate(rules, history, pay(bob, 1n), nowMs).outcome).toBe("approve")
  })

  it("given a payment windowMs - 1 before now, when evaluating, then it is inside the window", () => {
    const history = historyOf([paid(bob, 1n, nowMs - windowMs + 1)])
    expect(evaluate(rules, history, pay(bob, 1n), nowMs)).toEqual({ outcome: "review", rule: "one-a-minute" })
  })
})

describe("velocity by sum", () => {
  const rules = rulesOf([
    { id: "daily-sum", kind: "velocity", outcome: "decline", windowMs, sumMax: { USD: "100.00" } },
  ])
  const history = historyOf([paid(bob, 6_000n, nowMs - 1), paid(bob, 900_000n, nowMs - 1, eur)])

  it("given 60.00 USD in the window and a 100.00 USD limit, when paying 40.00, then the sum equals it and is approved", () => {
    expect(evaluate(rules, history, pay(carol, 4_000n), nowMs).outcome).toBe("approve")
  })

  it("given 60.00 USD in the window and a 100.00 USD limit, when paying 40.01, then it is declined", () => {
    expect(evaluate(rules, history, pay(carol, 4_001n), nowMs).outcome).toBe("decline")
  })

  it("given 9000.00 EUR in the window, when paying 50.00 USD, then only USD is summed and it is approved", () => {
    expect(evaluate(rules, historyOf([paid(bob, 900_000n, nowMs, eur)]), pay(carol, 5_000n), nowMs).outcome).toBe(
      "approve",
    )
  })
})

describe("blocked-counterparty", () => {
  const rules = rulesOf([{ id: "sanctions", kind: "blocked-counterparty", accounts: ["bob", "mallory"] }])

  it("given bob is blocked, when paying bob one minor unit, then it is declined", () => {
    expect(evaluate(rules, emptyHistory, pay(bob, 1n), nowMs)).toEqual({
      outcome: "decline",
      rule: "sanctions",
      reason: "RISK_DECLINED",
    })
  })

  it("given bob is blocked, when paying carol, then it is approved", () => {
    expect(evaluate(rules, emptyHistory, pay(carol, 10n ** 9n), nowMs).outcome).toBe("approve")
  })
})

describe("new-payee", () => {
  const rules = rulesOf([{ id: "first-time", kind: "new-payee", outcome: "review", amountMax: { USD: "50" } }])

  it("given a new payee and a 50.00 limit, when paying exactly 50.00, then it is approved", () => {
    expect(evaluate(rules, emptyHistory, pay(bob, 5_000n), nowMs).outcome).toBe("approve")
  })

  it("given a new payee and a 50.00 limit, when paying 50.01, then it goes to review", () => {
    expect(evaluate(rules, emptyHistory, pay(bob, 5_001n), nowMs)).toEqual({ outcome: "review", rule: "first-time" })
  })

  it("given bob was paid before, when paying bob 50.01, then it is approved", () => {
    expect(evaluate(rules, historyOf([paid(bob, 1n, 0)]), pay(bob, 5_001n), nowMs).outcome).toBe("approve")
  })

  it("given bob was paid long before the velocity window, when paying bob again, then bob is still known", () => {
    const history = historyOf([paid(bob, 1n, 0), paid(carol, 1n, nowMs)])
    expect(history.entries).toHaveLength(1)
    expect(evaluate(rules, history, pay(bob, 5_001n), nowMs).outcome).toBe("approve")
  })
})

describe("debtor history bounds", () => {
  it("given historyEntriesMax 3, when five payments are recorded, then the two oldest are evicted", () => {
    const history = historyOf(
      [1, 2, 3, 4, 5].map((index) => paid(bob, BigInt(index), nowMs + index)),
      { ...roomyBounds, historyEntriesMax: 3 },
    )
    expect(history.entries.map((entry) => entry.amountMinor)).toEqual([3n, 4n, 5n])
  })

  it("given a 1000 ms history window, when a payment is recorded 1000 ms after one, then the older is dropped", () => {
    const bounds = { ...roomyBounds, historyWindowMs: 1000 }
    expect(historyOf([paid(bob, 1n, 0), paid(bob, 2n, 1000)], bounds).entries).toHaveLength(1)
    expect(historyOf([paid(bob, 1n, 0), paid(bob, 2n, 999)], bounds).entries).toHaveLength(2)
  })

  it("given knownPayeesMax 2, when paying bob, carol, bob, dave, then carol is evicted as least recently paid", () => {
    const history = historyOf([paid(bob, 1n, 1), paid(carol, 1n, 2), paid(bob, 1n, 3), paid(dave, 1n, 4)], {
      ...roomyBounds,
      knownPayeesMax: 2,
    })
    expect([...history.knownPayees]).toEqual([bob, dave])
  })

  it("given no velocity rule, when payments are recorded with a zero window, then no entries are kept", () => {
    const history = historyOf([paid(bob, 1n, 1)], { ...roomyBounds, historyWindowMs: 0 })
    expect(history.entries).toEqual([])
    expect(history.knownPayees.includes(bob)).toBe(true)
  })

  it("given a declined payment, then it is not recorded: isRecorded says no and recordPayment asserts", () => {
    const declined = { ...paid(bob, 1n, 1), status: "declined" } as unknown as RecordedPayment
    expect(isRecorded({ status: "declined" } as Payment)).toBe(false)
    expect(isRecorded({ status: "pending" } as Payment)).toBe(true)
    expect(() => recordPayment(emptyHistory, declined, 1, roomyBounds)).toThrow(/assertion/)
  })
})

describe("precedence", () => {
  const rules = rulesOf([
    { id: "review-big", kind: "amount-limit", outcome: "review", amountMax: { USD: "10" } },
    { id: "review-new", kind: "new-payee", outcome: "review", amountMax: { USD: "10" } },
    { id: "decline-bigger", kind: "amount-limit", outcome: "decline", amountMax: { USD: "100" } },
    { id: "decline-blocked", kind: "blocked-counterparty", accounts: ["bob"] },
  ])

  it("given two review rules fire, when evaluating, then the first configured names the review", () => {
    expect(evaluate(rules, emptyHistory, pay(carol, 1_001n), nowMs)).toEqual({
      outcome: "review",
      rule: "review-big",
    })
  })

  it("given reviews configured before a decline all fire, when evaluating, then the decline wins", () => {
    expect(evaluate(rules, emptyHistory, pay(carol, 10_001n), nowMs)).toMatchObject({
      outcome: "decline",
      rule: "decline-bigger",
    })
  })

  it("given two declines fire, when evaluating, then the first configured names the decline", () => {
    expect(evaluate(rules, emptyHistory, pay(bob, 10_001n), nowMs)).toMatchObject({ rule: "decline-bigger" })
    expect(evaluate(rules, emptyHistory, pay(bob, 1n), nowMs)).toMatchObject({ rule: "decline-blocked" })
  })

  it("given no rules, when evaluating, then it is approved", () => {
    expect(evaluate([], emptyHistory, pay(bob, 10n ** 15n), nowMs)).toEqual({ outcome: "approve" })
  })
})

describe("parseRules", () => {
  it("given limits as decimal strings, when parsed, then they are exact minor units of each currency", () => {
    const [rule] = rulesOf([
      { id: "big", kind: "amount-limit", outcome: "decline", amountMax: { USD: "1000.5", JPY: "1000", BHD: "1.5" } },
    ])
    expect(rule?.kind === "amount-limit" && [...rule.amountMinorMax]).toEqual([
      ["USD", 100_050n],
      ["JPY", 1000n],
      ["BHD", 1500n],
    ])
  })

  it("given velocity rules, when asking for the history window, then it is the longest (0 without any)", () => {
    const rules = rulesOf([
      { id: "a", kind: "velocity", outcome: "review", windowMs: 5000, countMax: 1 },
      { id: "b", kind: "new-payee", outcome: "review", amountMax: { USD: "1" } },
      { id: "c", kind: "velocity", outcome: "review", windowMs: 9000, sumMax: { USD: "1" } },
    ])
    expect(historyWindowMs(rules)).toBe(9000)
    expect(historyWindowMs(rules.slice(1, 2))).toBe(0)
  })

  const velocity = { id: "v", kind: "velocity", outcome: "review", windowMs: 1000, countMax: 2 }
  const limit = { id: "l", kind: "amount-limit", outcome: "review", amountMax: { USD: "1" } }
  it.each<[string, unknown, string]>([
    ["not a list", { rules: [] }, "rules: must be a list"],
    [
      "too many rules",
      Array.from({ length: riskRulesMax + 1 }, (_, index) => ({ ...limit, id: `r${index}` })),
      "rules: must have at most 64 rules",
    ],
    ["a rule that is not an object", [limit, "x"], "rules[1]: must be an object"],
    [
      "an unknown kind",
      [{ ...limit, kind: "geo" }],
      "rules[0].kind: must be one of amount-limit, velocity, blocked-counterparty, new-payee",
    ],
    [
      "a misspelt field",
      [velocity, { ...velocity, id: "w", maxCount: 3 }],
      "rules[1].maxCount: is not a field of kind velocity",
    ],
    ["an empty id", [{ ...limit, id: "" }], "rules[0].id: must be a string of 1 to 128 characters"],
    ["a repeated id", [limit, velocity, { ...velocity, id: "l" }], "rules[2].id: repeats the id of rules[0]"],
    ["an unknown outcome", [{ ...limit, outcome: "block" }], 'rules[0].outcome: must be "review" or "decline"'],
    [
      "a count of zero",
      [limit, velocity, { ...velocity, id: "w", countMax: 0 }],
      "rules[2].countMax: must be a positive integer",
    ],
    ["a fractional count", [{ ...velocity, countMax: 1.5 }], "rules[0].countMax: must be a positive integer"],
    ["a count as a string", [{ ...velocity, countMax: "3" }], "rules[0].countMax: must be a positive integer"],
    ["a missing window", [{ ...velocity, windowMs: undefined }], "rules[0].windowMs: must be a positive integer"],
    [
      "a velocity without limits",
      [{ id: "v", kind: "velocity", outcome: "review", windowMs: 1 }],
      "rules[0]: a velocity rule needs countMax or sumMax",
    ],
    [
      "too many decimals",
      [{ ...limit, amountMax: { USD: "1.001" } }],
      "rules[0].amountMax.USD: must be a non-negative decimal string (TOO_MANY_DECIMALS)",
    ],
    [
      "a negative amount",
      [{ ...velocity, sumMax: { EUR: "-1" } }],
      "rules[0].sumMax.EUR: must be a non-negative decimal string (MALFORMED)",
    ],
    [
      "an amount as a number",
      [{ ...limit, amountMax: { USD: 1 } }],
      "rules[0].amountMax.USD: must be a non-negative decimal string (MALFORMED)",
    ],
    [
      "an unknown currency",
      [{ ...limit, amountMax: { XXX: "1" } }],
      "rules[0].amountMax.XXX: is not an ISO 4217 currency",
    ],
    ["no currency", [{ ...limit, amountMax: {} }], "rules[0].amountMax: must name at least one currency"],
    [
      "a reviewed blocked list",
      [{ id: "b", kind: "blocked-counterparty", outcome: "review", accounts: [] }],
      "rules[0].outcome: must be decline: a blocked counterparty is never paid",
    ],
    [
      "a blocked id that is not text",
      [{ id: "b", kind: "blocked-counterparty", accounts: ["bob", 7] }],
      "rules[0].accounts[1]: must be an account id of 1 to 128 characters",
    ],
  ])("given %s, when parsed, then the error names the field", (_, config, message) => {
    const result = parseRules(config)
    expect(isRiskConfigError(result) && result.message).toBe(message)
  })
})
