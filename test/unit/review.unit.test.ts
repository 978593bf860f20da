/**
 * Given/when/then specs of fraud screening in the payment path and of review: limits refuse and
 * record nothing, a declining rule records a decline with its rule, a reviewing rule holds the
 * amount until a reviewer approves (an authorization; a transfer is captured whole) or declines it
 * or the hold lapses, and the history the rules read survives a snapshot and a replay.
 */
import { describe, expect, it } from "vitest"
import type { Command } from "../../core/commands.ts"
import { type Decision, decide } from "../../core/decide.ts"
import { decodeEntity, encodeEntity, encodeEntityBySchema } from "../../core/entity-codec.ts"
import { isRejection } from "../../core/errors.ts"
import { decodeJournalRecord, type Event, encodeJournalRecord, encodeJournalRecordBySchema } from "../../core/events.ts"
import { applyEvents } from "../../core/evolve.ts"
import type { AccountId, DepositId, PaymentId, TenantId } from "../../core/ids.ts"
import { availableOf, Ledger } from "../../core/ledger.ts"
import type { Currency } from "../../core/money.ts"
import { pendingEffects } from "../../core/pending-effects.ts"
import type { LedgerPolicy } from "../../core/policy.ts"
import { hourMs, isRiskConfigError, parseLimits, parseRules, type RiskRule } from "../../core/risk.ts"
import { type TenantPolicy, tenantPolicyOf } from "../../core/tenant-policy.ts"

const tenant = "tenant-a" as TenantId
const eur = "EUR" as Currency
const nowMs = 1_700_000_000_000
const policy: LedgerPolicy = {
  idempotencyRetentionMs: 24 * 3_600_000,
  creditRedeliveryDelayMs: 100,
  creditRedeliveryDelayMsMax: 1_000,
}
const reviewHoldMs = 3_600_000
const meta = (timestampMs = nowMs) => ({ tenantId: tenant, correlationId: "c", timestampMs })

const rulesOf = (config: unknown): ReadonlyArray<RiskRule> => {
  const rules = parseRules(config)
  if (isRiskConfigError(rules)) throw new Error(rules.message)
  return rules
}
const tenantPolicy = tenantPolicyOf(
  rulesOf([
    { id: "blocked", kind: "blocked-counterparty", accounts: ["mallory"] },
    { id: "big", kind: "amount-limit", outcome: "review", amountMax: { EUR: "50.00" } },
    { id: "burst", kind: "velocity", outcome: "decline", windowMs: 60_000, countMax: 3 },
  ]),
  (() => {
    const limits = parseLimits({ paymentMax: { EUR: "80.00" }, dailyVolumeMax: { EUR: "150.00" } })
    if (isRiskConfigError(limits)) throw new Error(limits.message)
    return limits
  })(),
  reviewHoldMs,
)

const open = (accountId: string): Command => ({
  _tag: "OpenAccount",
  ...meta(),
  accountId: accountId as AccountId,
  currency: eur,
  floorMinor: 0n,
})
const deposit = (accountId: string, amountMinor: bigint): Command => ({
  _tag: "Deposit",
  ...meta(),
  accountId: accountId as AccountId,
  depositId: `dep-${amountMinor}` as DepositId,
  amountMinor,
  currency: eur,
})
const transfer = (paymentId: string, amountMinor: bigint, to = "bob", timestampMs = nowMs): Command => ({
  _tag: "Transfer",
  ...meta(timestampMs),
  paymentId: paymentId as PaymentId,
  from: "alice" as AccountId,
  to: to as AccountId,
  amountMinor,
  currency: eur,
  creditorLocal: true,
  tenantPolicy,
})
const authorize = (paymentId: string, amountMinor: bigint, withPolicy: TenantPolicy = tenantPolicy): Command => ({
  _tag: "Authorize",
  ...meta(),
  paymentId: paymentId as PaymentId,
  from: "alice" as AccountId,
  to: "bob" as AccountId,
  amountMinor,
  currency: eur,
  holdMs: 60_000,
  tenantPolicy: withPolicy,
})
const review = (paymentId: string, decision: "approve" | "decline", timestampMs = nowMs + 1_000): Command => ({
  _tag: "ReviewPayment",
  ...meta(timestampMs),
  paymentId: paymentId as PaymentId,
  from: "alice" as AccountId,
  decision,
  creditorLocal: true,
})
const expire = (paymentId: string, timestampMs: number): Command => ({
  _tag: "ExpireHold",
  ...meta(timestampMs),
  paymentId: paymentId as PaymentId,
  from: "alice" as AccountId,
})

const when = (ledger: Ledger, command: Command, journal?: Array<Event>): Decision => {
  const decision = decide(ledger, command, policy)
  if (!isRejection(decision)) {
    applyEvents(ledger, decision.events)
    journal?.push(...decision.events)
  }
  return decision
}
/** Alice with 500.00 EUR, Bob and Mallory with nothing. */
const funded = (journal?: Array<Event>): Ledger => {
  const ledger = new Ledger()
  for (const command of [open("alice"), open("bob"), open("mallory"), deposit("alice", 50_000n)])
    when(ledger, command, journal)
  return ledger
}
const outcome = (decision: Decision): ReadonlyArray<string> | string =>
  isRejection(decision) ? decision.code : decision.events.map((event) => event._tag)
const alice = (ledger: Ledger) => ledger.account(tenant, "alice" as AccountId)
const bob = (ledger: Ledger) => ledger.account(tenant, "bob" as AccountId)
const payment = (ledger: Ledger, paymentId: string) =>
  ledger.payment(tenant, "alice" as AccountId, paymentId as PaymentId)

describe("limits", () => {
  it("given a single-payment limit of 80.00, when 80.01 is paid, then LIMIT_EXCEEDED and nothing is recorded", () => {
    const ledger = funded()
    expect(outcome(when(ledger, transfer("t-1", 8_001n)))).toBe("LIMIT_EXCEEDED")
    expect(payment(ledger, "t-1")).toBeUndefined()
    expect(outcome(when(ledger, authorize("t-1", 8_001n)))).toBe("LIMIT_EXCEEDED")
    expect(alice(ledger)).toMatchObject({ balanceMinor: 50_000n, heldMinor: 0n, sequence: 2 })
  })

  it("given a daily volume of 150.00, when 40+40+40 are paid, then a fourth 40 is refused and 30 passes", () => {
    const ledger = funded()
    for (const [index, at] of [0, 70_000, 140_000].entries()) {
      expect(outcome(when(ledger, transfer(`t-${index}`, 4_000n, "bob", nowMs + at)))).toEqual([
        "TransferDebited",
        "TransferCredited",
      ])
    }
    expect(outcome(when(ledger, transfer("t-3", 4_000n, "bob", nowMs + 210_000)))).toBe("LIMIT_EXCEEDED")
    expect(outcome(when(ledger, transfer("t-4", 3_000n, "bob", nowMs + 210_000)))).toEqual([
      "TransferDebited",
      "TransferCredited",
    ])
    // A day and an hour later every bucket has aged out.
    expect(outcome(when(ledger, transfer("t-5", 4_500n, "bob", nowMs + 25 * hourMs)))).toEqual([
      "TransferDebited",
      "TransferCredited",
    ])
  })
})

describe("fraud rules", () => {
  it("given a blocked counterparty, when paid, then declined RISK_DECLINED with the rule, and a retry answers the same", () => {
    const ledger = funded()
    expect(outcome(when(ledger, transfer("t-1", 100n, "mallory")))).toEqual(["TransferDeclined"])
    expect(payment(ledger, "t-1")).toMatchObject({
      status: "declined",
      reason: "RISK_DECLINED",
      risk: { outcome: "decline", rule: "blocked" },
    })
    expect(when(ledger, transfer("t-1", 100n, "mallory"))).toMatchObject({ events: [] })
    expect(alice(ledger)?.balanceMinor).toBe(50_000n)
  })

  it("given a velocity of 3 a minute, when a fourth payment comes within the minute, then it is declined", () => {
    const ledger = funded()
    for (const index of [0, 1, 2]) when(ledger, transfer(`t-${index}`, 100n, "bob", nowMs + index))
    expect(outcome(when(ledger, transfer("t-3", 100n, "bob", nowMs + 10)))).toEqual(["TransferDeclined"])
    expect(payment(ledger, "t-3")?.risk).toEqual({ outcome: "decline", rule: "burst" })
    expect(outcome(when(ledger, transfer("t-4", 100n, "bob", nowMs + 60_000)))).toEqual([
      "TransferDebited",
      "TransferCredited",
    ])
  })

  it("given a tenant without rules, when its account pays, then no history is kept on the account", () => {
    const ledger = funded()
    const plain: Command = {
      ...(transfer("t-1", 100n) as Extract<Command, { _tag: "Transfer" }>),
      tenantPolicy: undefined,
    }
    when(ledger, plain)
    expect(alice(ledger)?.recent).toBeUndefined()
  })
})

describe("review", () => {
  it("given a transfer above the review amount, when made, then its amount is held in review with an expiry", () => {
    const ledger = funded()
    const decision = when(ledger, transfer("t-1", 6_000n))
    expect(outcome(decision)).toEqual(["PaymentHeldForReview"])
    expect(payment(ledger, "t-1")).toMatchObject({
      status: "review",
      risk: { outcome: "review", rule: "big" },
      holdExpiresAtMs: nowMs + reviewHoldMs,
      captureOnApproval: true,
    })
    expect(alice(ledger)).toMatchObject({ balanceMinor: 50_000n, heldMinor: 6_000n })
    expect(isRejection(decision) ? [] : decision.effects).toEqual([
      expect.objectContaining({ _tag: "Schedule", atMs: nowMs + reviewHoldMs }),
    ])
  })

  it("given a transfer in review, when approved, then it is captured whole and settles, and a second approve answers it", () => {
    const ledger = funded()
    when(ledger, transfer("t-1", 6_000n))
    expect(outcome(when(ledger, review("t-1", "approve")))).toEqual([
      "PaymentReviewed",
      "PaymentCaptured",
      "TransferCredited",
    ])
    expect(payment(ledger, "t-1")).toMatchObject({ status: "settled", capturedAmountMinor: 6_000n, captureId: "t-1" })
    expect(alice(ledger)).toMatchObject({ balanceMinor: 44_000n, heldMinor: 0n })
    expect(bob(ledger)?.balanceMinor).toBe(6_000n)
    expect(when(ledger, review("t-1", "approve"))).toMatchObject({ events: [] })
    expect(outcome(when(ledger, review("t-1", "decline")))).toBe("INVALID_STATE")
  })

  it("given an authorization in review, when approved, then it is authorized with its hold, to be captured later", () => {
    const ledger = funded()
    when(ledger, authorize("a-1", 6_000n))
    expect(outcome(when(ledger, review("a-1", "approve")))).toEqual(["PaymentReviewed"])
    expect(payment(ledger, "a-1")).toMatchObject({ status: "authorized", risk: { outcome: "review", rule: "big" } })
    expect(alice(ledger)).toMatchObject({ heldMinor: 6_000n })
  })

  it("given a payment in review, when declined, then the hold is released and it is declined RISK_DECLINED", () => {
    const ledger = funded()
    when(ledger, transfer("t-1", 6_000n))
    expect(outcome(when(ledger, review("t-1", "decline")))).toEqual(["PaymentReviewed"])
    expect(payment(ledger, "t-1")).toMatchObject({ status: "declined", reason: "RISK_DECLINED" })
    expect(alice(ledger)).toMatchObject({ balanceMinor: 50_000n, heldMinor: 0n })
    expect(availableOf(alice(ledger) as never)).toBe(50_000n)
    expect(when(ledger, review("t-1", "decline"))).toMatchObject({ events: [] })
    expect(outcome(when(ledger, review("t-1", "approve")))).toBe("INVALID_STATE")
  })

  it("given a payment in review, when nobody reviews it before its hold lapses, then it expires and review is refused", () => {
    const ledger = funded()
    when(ledger, transfer("t-1", 6_000n))
    expect(pendingEffects([payment(ledger, "t-1") as never], nowMs, policy)).toHaveLength(1)
    expect(outcome(when(ledger, expire("t-1", nowMs + reviewHoldMs - 1)))).toEqual([])
    expect(outcome(when(ledger, expire("t-1", nowMs + reviewHoldMs)))).toEqual(["AuthorizationExpired"])
    expect(payment(ledger, "t-1")?.status).toBe("expired")
    expect(alice(ledger)).toMatchObject({ heldMinor: 0n })
    expect(outcome(when(ledger, review("t-1", "approve", nowMs + reviewHoldMs + 1)))).toBe("INVALID_STATE")
  })

  it("given a settled transfer or an unknown payment, when reviewed, then INVALID_STATE and UNKNOWN_PAYMENT", () => {
    const ledger = funded()
    when(ledger, transfer("t-1", 100n))
    expect(outcome(when(ledger, review("t-1", "approve")))).toBe("INVALID_STATE")
    expect(outcome(when(ledger, review("nope", "approve")))).toBe("UNKNOWN_PAYMENT")
  })

  it("given a review whose hold the funds cannot cover, when made, then it is declined INSUFFICIENT_FUNDS", () => {
    const ledger = funded()
    when(ledger, authorize("a-0", 45_000n, tenantPolicyOf([])))
    expect(outcome(when(ledger, transfer("t-1", 6_000n)))).toEqual(["TransferDeclined"])
    expect(payment(ledger, "t-1")).toMatchObject({ reason: "INSUFFICIENT_FUNDS" })
  })
})

describe("history across a restart", () => {
  it("given an account with history, when its snapshot is decoded and the journal replayed, then the same verdicts follow", () => {
    const journal: Array<Event> = []
    const ledger = funded(journal)
    for (const index of [0, 1]) when(ledger, transfer(`t-${index}`, 100n, "bob", nowMs + index), journal)
    const saved = encodeEntity({ kind: "account", value: alice(ledger) as never })
    expect(saved).toBe(encodeEntityBySchema({ kind: "account", value: alice(ledger) as never }))
    const restored = new Ledger()
    restored.put(decodeEntity(saved))
    restored.put({ kind: "account", value: bob(ledger) as never })
    // The third payment lands after the snapshot: replay rebuilds it into the history.
    const tail: Array<Event> = []
    when(ledger, transfer("t-2", 100n, "bob", nowMs + 2), tail)
    const record = encodeJournalRecord({ events: tail })
    expect(record).toBe(encodeJournalRecordBySchema({ events: tail }))
    applyEvents(restored, decodeJournalRecord(record).events)
    expect(alice(restored)?.recent).toEqual(alice(ledger)?.recent)
    expect(outcome(when(restored, transfer("t-3", 100n, "bob", nowMs + 10)))).toEqual(["TransferDeclined"])
  })

  it("given payments in review and declined by a rule, when their entities are encoded, then they decode equal", () => {
    const ledger = funded()
    when(ledger, transfer("t-1", 6_000n))
    when(ledger, transfer("t-2", 100n, "mallory"))
    for (const paymentId of ["t-1", "t-2"]) {
      const entity = { kind: "payment" as const, value: payment(ledger, paymentId) as never }
      expect(encodeEntity(entity)).toBe(encodeEntityBySchema(entity))
      expect(decodeEntity(encodeEntity(entity))).toEqual(entity)
    }
  })
})
