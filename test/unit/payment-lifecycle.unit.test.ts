/**
 * Given/when/then specs of the authorization lifecycle: holds count against what an account may
 * spend, a capture moves all or part and releases the rest, a void or a lapsed hold releases it
 * all, every other edge is INVALID_STATE, and retries answer as the original did.
 */
import { describe, expect, it } from "vitest"
import type { Command } from "../../core/commands.ts"
import { type Decision, decide } from "../../core/decide.ts"
import { isRejection } from "../../core/errors.ts"
import { applyEvents } from "../../core/evolve.ts"
import type { AccountId, DepositId, PaymentId, TenantId } from "../../core/ids.ts"
import { availableOf, Ledger } from "../../core/ledger.ts"
import type { Currency } from "../../core/money.ts"
import { pendingEffects } from "../../core/pending-effects.ts"
import type { LedgerPolicy } from "../../core/policy.ts"

const tenant = "tenant-a" as TenantId
const eur = "EUR" as Currency
const nowMs = 1_700_000_000_000
const holdMs = 60_000
const policy: LedgerPolicy = {
  idempotencyRetentionMs: 24 * 3_600_000,
  creditRedeliveryDelayMs: 100,
  creditRedeliveryDelayMsMax: 1_000,
}
const meta = (timestampMs = nowMs) => ({ tenantId: tenant, correlationId: "c", timestampMs })

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
const authorize = (paymentId: string, amountMinor: bigint, timestampMs = nowMs): Command => ({
  _tag: "Authorize",
  ...meta(timestampMs),
  paymentId: paymentId as PaymentId,
  from: "alice" as AccountId,
  to: "bob" as AccountId,
  amountMinor,
  currency: eur,
  holdMs,
})
const capture = (paymentId: string, captureId: string, amount: string | null, creditorLocal = true): Command => ({
  _tag: "Capture",
  ...meta(nowMs + 1_000),
  paymentId: paymentId as PaymentId,
  from: "alice" as AccountId,
  captureId,
  amount,
  creditorLocal,
})
const voidOf = (paymentId: string): Command => ({
  _tag: "Void",
  ...meta(nowMs + 1_000),
  paymentId: paymentId as PaymentId,
  from: "alice" as AccountId,
})
const expire = (paymentId: string, timestampMs: number): Command => ({
  _tag: "ExpireHold",
  ...meta(timestampMs),
  paymentId: paymentId as PaymentId,
  from: "alice" as AccountId,
})
const transfer = (paymentId: string, amountMinor: bigint): Command => ({
  _tag: "Transfer",
  ...meta(),
  paymentId: paymentId as PaymentId,
  from: "alice" as AccountId,
  to: "bob" as AccountId,
  amountMinor,
  currency: eur,
  creditorLocal: true,
})

const when = (ledger: Ledger, command: Command): Decision => {
  const decision = decide(ledger, command, policy)
  if (!isRejection(decision)) applyEvents(ledger, decision.events)
  return decision
}
/** Alice with 100.00 EUR, Bob with nothing. */
const funded = (): Ledger => {
  const ledger = new Ledger()
  for (const command of [open("alice"), open("bob"), deposit("alice", 10_000n)]) when(ledger, command)
  return ledger
}
const outcome = (decision: Decision): ReadonlyArray<string> | string =>
  isRejection(decision) ? decision.code : decision.events.map((event) => event._tag)
const alice = (ledger: Ledger) => ledger.account(tenant, "alice" as AccountId)
const bob = (ledger: Ledger) => ledger.account(tenant, "bob" as AccountId)
const payment = (ledger: Ledger, paymentId: string) =>
  ledger.payment(tenant, "alice" as AccountId, paymentId as PaymentId)

describe("authorize", () => {
  it("given funds, when authorized, then the amount is held, the balance unchanged, and its expiry scheduled", () => {
    const ledger = funded()
    const decision = when(ledger, authorize("a-1", 3_000n))
    expect(outcome(decision)).toEqual(["PaymentAuthorized"])
    expect(alice(ledger)).toMatchObject({ balanceMinor: 10_000n, heldMinor: 3_000n })
    expect(availableOf(alice(ledger) as never)).toBe(7_000n)
    expect(payment(ledger, "a-1")).toMatchObject({
      status: "authorized",
      capturedAmountMinor: 0n,
      holdExpiresAtMs: nowMs + holdMs,
    })
    expect(isRejection(decision) ? [] : decision.effects).toEqual([
      expect.objectContaining({
        _tag: "Schedule",
        atMs: nowMs + holdMs,
        command: expect.objectContaining({ _tag: "ExpireHold" }),
      }),
    ])
  })

  it("given a hold, when more than what is available is authorized or transferred, then it is declined", () => {
    const ledger = funded()
    when(ledger, authorize("a-1", 7_000n))
    expect(outcome(when(ledger, authorize("a-2", 3_001n)))).toEqual(["TransferDeclined"])
    expect(outcome(when(ledger, transfer("t-1", 3_001n)))).toEqual(["TransferDeclined"])
    expect(outcome(when(ledger, transfer("t-2", 3_000n)))).toEqual(["TransferDebited", "TransferCredited"])
    expect(alice(ledger)).toMatchObject({ balanceMinor: 7_000n, heldMinor: 7_000n })
  })

  it("given an authorization, when retried with the same fields, then nothing changes; with others, IDEMPOTENCY_CONFLICT", () => {
    const ledger = funded()
    when(ledger, authorize("a-1", 3_000n))
    expect(outcome(when(ledger, authorize("a-1", 3_000n)))).toEqual([])
    expect(outcome(when(ledger, authorize("a-1", 3_001n)))).toBe("IDEMPOTENCY_CONFLICT")
    expect(outcome(when(ledger, transfer("a-1", 1n)))).toBe("IDEMPOTENCY_CONFLICT")
    expect(alice(ledger)?.heldMinor).toBe(3_000n)
  })
})

describe("capture", () => {
  it("given an authorization, when captured in part, then that amount moves and the rest of the hold is released", () => {
    const ledger = funded()
    when(ledger, authorize("a-1", 3_000n))
    expect(outcome(when(ledger, capture("a-1", "cap-1", "12.34")))).toEqual(["PaymentCaptured", "TransferCredited"])
    expect(alice(ledger)).toMatchObject({ balanceMinor: 8_766n, heldMinor: 0n })
    expect(bob(ledger)?.balanceMinor).toBe(1_234n)
    expect(payment(ledger, "a-1")).toMatchObject({
      status: "settled",
      amountMinor: 3_000n,
      capturedAmountMinor: 1_234n,
    })
  })

  it("given a capture, when retried with its id, then the payment as it is; another amount conflicts; another id is INVALID_STATE", () => {
    const ledger = funded()
    when(ledger, authorize("a-1", 3_000n))
    when(ledger, capture("a-1", "cap-1", null))
    expect(outcome(when(ledger, capture("a-1", "cap-1", null)))).toEqual([])
    expect(outcome(when(ledger, capture("a-1", "cap-1", "30.00")))).toEqual([])
    expect(outcome(when(ledger, capture("a-1", "cap-1", "10.00")))).toBe("IDEMPOTENCY_CONFLICT")
    expect(outcome(when(ledger, capture("a-1", "cap-2", null)))).toBe("INVALID_STATE")
    expect(bob(ledger)?.balanceMinor).toBe(3_000n)
  })

  it("given an authorization, when captured beyond it or with too many decimals, then refused and its capture id stays unused", () => {
    const ledger = funded()
    when(ledger, authorize("a-1", 3_000n))
    expect(outcome(when(ledger, capture("a-1", "cap-1", "30.01")))).toBe("AMOUNT_EXCEEDS_REMAINING")
    expect(outcome(when(ledger, capture("a-1", "cap-1", "1.001")))).toBe("INVALID_REQUEST")
    expect(outcome(when(ledger, capture("a-1", "cap-1", "30.00")))).toEqual(["PaymentCaptured", "TransferCredited"])
  })

  it("given a creditor on another node, when captured, then the debit is pending and the captured amount is delivered", () => {
    const ledger = funded()
    when(ledger, authorize("a-1", 3_000n))
    const decision = when(ledger, capture("a-1", "cap-1", "5.00", false))
    expect(outcome(decision)).toEqual(["PaymentCaptured"])
    expect(payment(ledger, "a-1")).toMatchObject({ status: "pending", capturedAmountMinor: 500n })
    expect(alice(ledger)).toMatchObject({ balanceMinor: 9_500n, heldMinor: 0n })
    const delivered = isRejection(decision) ? undefined : decision.effects.find((effect) => effect._tag === "Deliver")
    expect(delivered?.command).toMatchObject({ _tag: "ApplyCredit", amountMinor: 500n })
  })

  it("given unknown payments or other states, when captured, then UNKNOWN_PAYMENT or INVALID_STATE", () => {
    const ledger = funded()
    expect(outcome(when(ledger, capture("nope", "cap-1", null)))).toBe("UNKNOWN_PAYMENT")
    when(ledger, transfer("t-1", 100n))
    expect(outcome(when(ledger, capture("t-1", "cap-1", null)))).toBe("INVALID_STATE")
    when(ledger, authorize("a-1", 100n))
    when(ledger, voidOf("a-1"))
    expect(outcome(when(ledger, capture("a-1", "cap-1", null)))).toBe("INVALID_STATE")
  })
})

describe("the idempotency window with long holds", () => {
  it("given a hold longer than the window, when captured after the window, then it is still captured and a retry answers it", () => {
    const ledger = funded()
    const day = 24 * 3_600_000
    when(ledger, { ...authorize("a-1", 3_000n), holdMs: 10 * day } as Command)
    const late = (command: Command, atMs: number) => ({ ...command, timestampMs: atMs }) as Command
    expect(outcome(when(ledger, late(authorize("a-1", 3_000n), nowMs + 2 * day)))).toEqual([])
    expect(outcome(when(ledger, late(capture("a-1", "cap-1", null), nowMs + 2 * day)))).toEqual([
      "PaymentCaptured",
      "TransferCredited",
    ])
    expect(outcome(when(ledger, late(capture("a-1", "cap-1", null), nowMs + 2 * day + 1_000)))).toEqual([])
    expect(outcome(when(ledger, late(authorize("a-1", 5n), nowMs + 2 * day + 1_000)))).toBe("IDEMPOTENCY_CONFLICT")
    // A window after the capture, the key is free again.
    expect(outcome(when(ledger, late(authorize("a-1", 5n), nowMs + 3 * day)))).toEqual(["PaymentAuthorized"])
  })
})

describe("void and expiry", () => {
  it("given an authorization, when voided, then the hold is released; a second void answers the voided payment", () => {
    const ledger = funded()
    when(ledger, authorize("a-1", 3_000n))
    expect(outcome(when(ledger, voidOf("a-1")))).toEqual(["AuthorizationVoided"])
    expect(alice(ledger)).toMatchObject({ balanceMinor: 10_000n, heldMinor: 0n })
    expect(outcome(when(ledger, voidOf("a-1")))).toEqual([])
    expect(payment(ledger, "a-1")?.status).toBe("voided")
    when(ledger, transfer("t-1", 100n))
    expect(outcome(when(ledger, voidOf("t-1")))).toBe("INVALID_STATE")
    expect(outcome(when(ledger, voidOf("nope")))).toBe("UNKNOWN_PAYMENT")
  })

  it("given a hold, when its timer fires early, nothing; when due, released once; on a captured payment, nothing", () => {
    const ledger = funded()
    when(ledger, authorize("a-1", 3_000n))
    expect(outcome(when(ledger, expire("a-1", nowMs + holdMs - 1)))).toEqual([])
    expect(outcome(when(ledger, expire("a-1", nowMs + holdMs)))).toEqual(["AuthorizationExpired"])
    expect(outcome(when(ledger, expire("a-1", nowMs + holdMs + 5)))).toEqual([])
    expect(alice(ledger)).toMatchObject({ balanceMinor: 10_000n, heldMinor: 0n })
    expect(outcome(when(ledger, capture("a-1", "cap-1", null)))).toBe("INVALID_STATE")
    when(ledger, authorize("a-2", 1_000n))
    when(ledger, capture("a-2", "cap-2", null))
    expect(outcome(when(ledger, expire("a-2", nowMs + holdMs)))).toEqual([])
  })

  it("given live authorizations after a recovery, when resumed, then each hold's expiry is scheduled at its time", () => {
    const ledger = funded()
    when(ledger, authorize("a-1", 3_000n))
    const resumed = pendingEffects([payment(ledger, "a-1") as never], nowMs + holdMs * 2, policy)
    expect(resumed).toEqual([expect.objectContaining({ _tag: "Schedule", atMs: nowMs + holdMs })])
  })
})

const refund = (paymentId: string, refundId: string, amount: string | null, creditorLocal = true): Command => ({
  _tag: "Refund",
  ...meta(nowMs + 2_000),
  paymentId: paymentId as PaymentId,
  from: "alice" as AccountId,
  refundId,
  amount,
  creditorLocal,
})

describe("refund", () => {
  const captured = () => {
    const ledger = funded()
    when(ledger, authorize("a-1", 3_000n))
    when(ledger, capture("a-1", "cap-1", "20.00"))
    return ledger
  }

  it("given a capture, when refunded in parts, then money goes back and the status follows, never beyond the capture", () => {
    const ledger = captured()
    expect(outcome(when(ledger, refund("a-1", "r-1", "5.00")))).toEqual(["RefundDebited", "PaymentRefunded"])
    expect(payment(ledger, "a-1")).toMatchObject({ status: "partially_refunded", refundedAmountMinor: 500n })
    expect(alice(ledger)?.balanceMinor).toBe(8_500n)
    expect(bob(ledger)?.balanceMinor).toBe(1_500n)
    expect(outcome(when(ledger, refund("a-1", "r-2", "15.01")))).toBe("AMOUNT_EXCEEDS_REMAINING")
    expect(outcome(when(ledger, refund("a-1", "r-2", null)))).toEqual(["RefundDebited", "PaymentRefunded"])
    expect(payment(ledger, "a-1")).toMatchObject({ status: "refunded", refundedAmountMinor: 2_000n })
    expect(outcome(when(ledger, refund("a-1", "r-3", "0.01")))).toBe("INVALID_STATE")
    expect(alice(ledger)?.balanceMinor).toBe(10_000n)
    expect(bob(ledger)?.balanceMinor).toBe(0n)
  })

  it("given a refund, when retried with its id, then nothing moves; another amount conflicts", () => {
    const ledger = captured()
    when(ledger, refund("a-1", "r-1", "5.00"))
    expect(outcome(when(ledger, refund("a-1", "r-1", "5.00")))).toEqual([])
    expect(outcome(when(ledger, refund("a-1", "r-1", null)))).toEqual([])
    expect(outcome(when(ledger, refund("a-1", "r-1", "4.00")))).toBe("IDEMPOTENCY_CONFLICT")
    expect(payment(ledger, "a-1")?.refundedAmountMinor).toBe(500n)
  })

  it("given a creditor that spent the money, when refunded, then INSUFFICIENT_FUNDS and nothing changes", () => {
    const ledger = captured()
    const spend = { ...transfer("t-9", 1_999n), from: "bob", to: "alice" } as Command
    expect(outcome(when(ledger, spend))).toEqual(["TransferDebited", "TransferCredited"])
    expect(outcome(when(ledger, refund("a-1", "r-1", "0.02")))).toBe("INSUFFICIENT_FUNDS")
    expect(outcome(when(ledger, refund("a-1", "r-1", "0.01")))).toEqual(["RefundDebited", "PaymentRefunded"])
  })

  it("given a refund's events, when replayed without the payment in memory (as recovery may), then the same payment results", () => {
    const ledger = captured()
    when(ledger, refund("a-1", "r-1", "1.00"))
    const decision = decide(ledger, refund("a-1", "r-2", "2.00"), policy)
    if (isRejection(decision)) throw new Error(decision.code)
    const evicted = new Ledger()
    for (const account of ledger.accounts.values()) evicted.put({ kind: "account", value: account })
    applyEvents(evicted, decision.events)
    applyEvents(ledger, decision.events)
    expect(payment(evicted, "a-1")).toEqual(payment(ledger, "a-1"))
    expect(payment(evicted, "a-1")).toMatchObject({ status: "partially_refunded", refundedAmountMinor: 300n })
  })

  it("given payments that cannot be refunded, then UNKNOWN_PAYMENT, INVALID_STATE, or UNAVAILABLE across nodes", () => {
    const ledger = captured()
    expect(outcome(when(ledger, refund("nope", "r-1", null)))).toBe("UNKNOWN_PAYMENT")
    when(ledger, authorize("a-2", 100n))
    expect(outcome(when(ledger, refund("a-2", "r-1", null)))).toBe("INVALID_STATE")
    expect(outcome(when(ledger, refund("a-1", "r-1", "1.001")))).toBe("INVALID_REQUEST")
    expect(outcome(when(ledger, refund("a-1", "r-1", null, false)))).toBe("UNAVAILABLE")
    when(ledger, transfer("t-1", 300n))
    expect(outcome(when(ledger, refund("t-1", "r-1", null)))).toEqual(["RefundDebited", "PaymentRefunded"])
  })
})
