/**
 * Given/when/then specs of `decide` (with `evolve` building the "given" state): one per command and
 * per rejection code, the recorded decline, overdraft floors, idempotent repeats and conflicts, and
 * the regression cases the property tests found.
 */
import { describe, expect, it } from "vitest"
import type { Command } from "../../core/commands.ts"
import { type Accepted, type Decision, decide } from "../../core/decide.ts"
import { isRejection } from "../../core/errors.ts"
import type { Event } from "../../core/events.ts"
import { applyEvents } from "../../core/evolve.ts"
import type { AccountId, DepositId, PaymentId, TenantId } from "../../core/ids.ts"
import { Ledger } from "../../core/ledger.ts"
import type { Currency } from "../../core/money.ts"
import { pendingEffects } from "../../core/pending-effects.ts"
import type { LedgerPolicy } from "../../core/policy.ts"

const tenant = "tenant-a" as TenantId
const otherTenant = "tenant-b" as TenantId
const usd = "USD" as Currency
const jpy = "JPY" as Currency
const meta = { tenantId: tenant, correlationId: "corr-1", timestampMs: 1_700_000_000_000 }
const policy: LedgerPolicy = {
  idempotencyRetentionMs: 60_000,
  creditRedeliveryDelayMs: 100,
  creditRedeliveryDelayMsMax: 1_000,
}

const open = (accountId: string, floorMinor = 0n, currency = usd, tenantId = tenant): Command => ({
  _tag: "OpenAccount",
  ...meta,
  tenantId,
  accountId: accountId as AccountId,
  currency,
  floorMinor,
})
const deposit = (accountId: string, depositId: string, amountMinor: bigint, currency = usd): Command => ({
  _tag: "Deposit",
  ...meta,
  accountId: accountId as AccountId,
  depositId: depositId as DepositId,
  amountMinor,
  currency,
})
const transfer = (
  paymentId: string,
  from: string,
  to: string,
  amountMinor: bigint,
  options: { readonly creditorLocal?: boolean; readonly currency?: Currency } = {},
): Command => ({
  _tag: "Transfer",
  ...meta,
  paymentId: paymentId as PaymentId,
  from: from as AccountId,
  to: to as AccountId,
  amountMinor,
  currency: options.currency ?? usd,
  creditorLocal: options.creditorLocal ?? true,
})
const applyCredit = (paymentId: string, from: string, to: string, amountMinor: bigint, currency = usd): Command => ({
  _tag: "ApplyCredit",
  ...meta,
  paymentId: paymentId as PaymentId,
  from: from as AccountId,
  to: to as AccountId,
  amountMinor,
  currency,
  paymentCreatedAtMs: meta.timestampMs,
})
const settle = (paymentId: string, from: string): Command => ({
  _tag: "SettleTransfer",
  ...meta,
  paymentId: paymentId as PaymentId,
  from: from as AccountId,
})
const reverse = (paymentId: string, from: string): Command => ({
  _tag: "ReverseTransfer",
  ...meta,
  paymentId: paymentId as PaymentId,
  from: from as AccountId,
  reason: "UNKNOWN_ACCOUNT",
})

/** A ledger after the given commands, each of which must be accepted. */
const given = (...commands: ReadonlyArray<Command>): Ledger => {
  const ledger = new Ledger()
  for (const command of commands) {
    const decision = decide(ledger, command, policy)
    if (isRejection(decision)) throw new Error(`given ${command._tag} was rejected: ${decision.code}`)
    applyEvents(ledger, decision.events)
  }
  return ledger
}

/** Decides the command and, if accepted, applies its events, like a shard does. */
const when = (ledger: Ledger, command: Command): Decision => {
  const decision = decide(ledger, command, policy)
  if (!isRejection(decision)) applyEvents(ledger, decision.events)
  return decision
}

const tags = (decision: Decision): ReadonlyArray<string> | string =>
  isRejection(decision) ? decision.code : decision.events.map((event: Event) => event._tag)

/** The side effects of an accepted decision, by kind and the command they carry. */
const effectsOf = (decision: Decision): ReadonlyArray<string> =>
  isRejection(decision)
    ? []
    : decision.effects.map((effect) =>
        effect._tag === "Deliver"
          ? `Deliver ${effect.command._tag}`
          : `Schedule ${effect.command._tag} +${effect.atMs - meta.timestampMs}ms`,
      )

const balanceOf = (ledger: Ledger, accountId: string, tenantId = tenant): bigint | undefined =>
  ledger.account(tenantId, accountId as AccountId)?.balanceMinor

const paymentOf = (ledger: Ledger, from: string, paymentId: string) =>
  ledger.payment(tenant, from as AccountId, paymentId as PaymentId)

describe("OpenAccount", () => {
  it("given no account, when opened, then the account exists with zero balance, its floor and sequence 1", () => {
    const ledger = given()
    expect(tags(when(ledger, open("a", -500n, jpy)))).toEqual(["AccountOpened"])
    expect(ledger.account(tenant, "a" as AccountId)).toEqual({
      tenantId: tenant,
      accountId: "a",
      currency: jpy,
      floorMinor: -500n,
      balanceMinor: 0n,
      heldMinor: 0n,
      status: "open",
      sequence: 1,
    })
  })

  it("given the account exists, when opened again, then ACCOUNT_EXISTS and nothing changes", () => {
    const ledger = given(open("a"), deposit("a", "d-1", 10n))
    expect(tags(when(ledger, open("a")))).toBe("ACCOUNT_EXISTS")
    expect(balanceOf(ledger, "a")).toBe(10n)
  })

  it("given the same id in another tenant, when opened, then it is a different account", () => {
    const ledger = given(open("a", 0n, usd, otherTenant))
    expect(tags(when(ledger, open("a")))).toEqual(["AccountOpened"])
  })
})

describe("Deposit", () => {
  it("given an open account, when a deposit is made, then the balance rises by exactly its amount", () => {
    const ledger = given(open("a"))
    const amountMinor = 2n ** 64n + 1n
    expect(tags(when(ledger, deposit("a", "d-1", amountMinor)))).toEqual(["FundsDeposited"])
    expect(balanceOf(ledger, "a")).toBe(amountMinor)
    expect(ledger.account(tenant, "a" as AccountId)?.sequence).toBe(2)
  })

  it("given no account, when a deposit is made, then UNKNOWN_ACCOUNT", () => {
    expect(tags(when(given(), deposit("a", "d-1", 10n)))).toBe("UNKNOWN_ACCOUNT")
  })

  it("given the account in another tenant only, when a deposit is made, then UNKNOWN_ACCOUNT", () => {
    expect(tags(when(given(open("a", 0n, usd, otherTenant)), deposit("a", "d-1", 10n)))).toBe("UNKNOWN_ACCOUNT")
  })

  it("given a USD account, when a JPY deposit is made, then CURRENCY_MISMATCH and nothing changes", () => {
    const ledger = given(open("a"))
    expect(tags(when(ledger, deposit("a", "d-1", 10n, jpy)))).toBe("CURRENCY_MISMATCH")
    expect(balanceOf(ledger, "a")).toBe(0n)
    expect(ledger.deposit(tenant, "a" as AccountId, "d-1" as DepositId)).toBeUndefined()
  })

  it("given a deposit was made, when it is repeated with the same fields, then no events and no second credit", () => {
    const ledger = given(open("a"), deposit("a", "d-1", 10n))
    expect(tags(when(ledger, deposit("a", "d-1", 10n)))).toEqual([])
    expect(balanceOf(ledger, "a")).toBe(10n)
  })

  it("given a deposit was made, when its key is reused with another amount, then IDEMPOTENCY_CONFLICT", () => {
    const ledger = given(open("a"), deposit("a", "d-1", 10n))
    expect(tags(when(ledger, deposit("a", "d-1", 11n)))).toBe("IDEMPOTENCY_CONFLICT")
    expect(balanceOf(ledger, "a")).toBe(10n)
  })

  it("given a deposit was made, when its key is reused with another currency, then IDEMPOTENCY_CONFLICT", () => {
    const ledger = given(open("a"), deposit("a", "d-1", 10n))
    expect(tags(when(ledger, deposit("a", "d-1", 10n, jpy)))).toBe("IDEMPOTENCY_CONFLICT")
  })

  it("given a deposit key used on one account, when used on another account, then it is a new deposit", () => {
    const ledger = given(open("a"), open("b"), deposit("a", "d-1", 10n))
    expect(tags(when(ledger, deposit("b", "d-1", 10n)))).toEqual(["FundsDeposited"])
  })
})

describe("Transfer between accounts of one shard (creditorLocal)", () => {
  it("given funds, when transferred, then debit and credit are one record and the payment is settled", () => {
    const ledger = given(open("a"), open("b"), deposit("a", "d-1", 100n))
    expect(tags(when(ledger, transfer("p-1", "a", "b", 60n)))).toEqual(["TransferDebited", "TransferCredited"])
    expect(balanceOf(ledger, "a")).toBe(40n)
    expect(balanceOf(ledger, "b")).toBe(60n)
    expect(paymentOf(ledger, "a", "p-1")).toMatchObject({ status: "settled", reason: null, amountMinor: 60n })
  })

  it("given too little money, when transferred, then a TransferDeclined is recorded with INSUFFICIENT_FUNDS", () => {
    const ledger = given(open("a"), open("b"), deposit("a", "d-1", 100n))
    expect(tags(when(ledger, transfer("p-1", "a", "b", 101n)))).toEqual(["TransferDeclined"])
    expect(balanceOf(ledger, "a")).toBe(100n)
    expect(balanceOf(ledger, "b")).toBe(0n)
    expect(paymentOf(ledger, "a", "p-1")).toMatchObject({ status: "declined", reason: "INSUFFICIENT_FUNDS" })
  })

  it("given a declined payment, when retried after funds arrived, then the same decline and no debit", () => {
    const ledger = given(open("a"), open("b"), deposit("a", "d-1", 100n), transfer("p-1", "a", "b", 101n))
    when(ledger, deposit("a", "d-2", 1_000n))
    expect(tags(when(ledger, transfer("p-1", "a", "b", 101n)))).toEqual([])
    expect(paymentOf(ledger, "a", "p-1")).toMatchObject({ status: "declined", reason: "INSUFFICIENT_FUNDS" })
    expect(balanceOf(ledger, "a")).toBe(1_100n)
  })

  it("given an overdraft floor, when a transfer takes the balance exactly to the floor, then it is paid", () => {
    const ledger = given(open("a", -50n), open("b"))
    expect(tags(when(ledger, transfer("p-1", "a", "b", 50n)))).toEqual(["TransferDebited", "TransferCredited"])
    expect(balanceOf(ledger, "a")).toBe(-50n)
  })

  it("given an overdraft floor, when a transfer would go one minor unit below it, then it is declined", () => {
    const ledger = given(open("a", -50n), open("b"))
    expect(tags(when(ledger, transfer("p-1", "a", "b", 51n)))).toEqual(["TransferDeclined"])
    expect(balanceOf(ledger, "a")).toBe(0n)
  })

  it("given nothing, when an account is opened with a positive floor, then INVALID_REQUEST and no account", () => {
    const ledger = given()
    expect(tags(when(ledger, open("a", 500n)))).toBe("INVALID_REQUEST")
    expect(ledger.account(tenant, "a" as AccountId)).toBeUndefined()
  })

  it("given no debtor, when transferred, then UNKNOWN_ACCOUNT and nothing is recorded", () => {
    const ledger = given(open("b"))
    expect(tags(when(ledger, transfer("p-1", "a", "b", 1n)))).toBe("UNKNOWN_ACCOUNT")
  })

  it("given no creditor on this shard, when transferred, then UNKNOWN_ACCOUNT and no payment is recorded", () => {
    const ledger = given(open("a"), deposit("a", "d-1", 100n))
    expect(tags(when(ledger, transfer("p-1", "a", "b", 1n)))).toBe("UNKNOWN_ACCOUNT")
    expect(paymentOf(ledger, "a", "p-1")).toBeUndefined()
  })

  it("given a debtor in USD, when a JPY transfer is made, then CURRENCY_MISMATCH", () => {
    const ledger = given(open("a"), open("b"), deposit("a", "d-1", 100n))
    expect(tags(when(ledger, transfer("p-1", "a", "b", 1n, { currency: jpy })))).toBe("CURRENCY_MISMATCH")
  })

  it("given a creditor in JPY, when a USD transfer is made, then CURRENCY_MISMATCH and the debtor keeps its money", () => {
    const ledger = given(open("a"), open("b", 0n, jpy), deposit("a", "d-1", 100n))
    expect(tags(when(ledger, transfer("p-1", "a", "b", 1n)))).toBe("CURRENCY_MISMATCH")
    expect(balanceOf(ledger, "a")).toBe(100n)
  })

  it("given one account, when it pays itself, then INVALID_REQUEST", () => {
    const ledger = given(open("a"), deposit("a", "d-1", 100n))
    expect(tags(when(ledger, transfer("p-1", "a", "a", 1n)))).toBe("INVALID_REQUEST")
  })

  it("given a paid transfer, when repeated with the same fields, then no events and no second debit", () => {
    const ledger = given(open("a"), open("b"), deposit("a", "d-1", 100n), transfer("p-1", "a", "b", 60n))
    expect(tags(when(ledger, transfer("p-1", "a", "b", 60n)))).toEqual([])
    expect(balanceOf(ledger, "a")).toBe(40n)
    expect(balanceOf(ledger, "b")).toBe(60n)
  })

  it.each([
    ["amount", transfer("p-1", "a", "b", 61n)],
    ["creditor", transfer("p-1", "a", "c", 60n)],
    ["currency", transfer("p-1", "a", "b", 60n, { currency: jpy })],
    ["creditor (the debtor itself)", transfer("p-1", "a", "a", 60n)],
  ])("given a paid transfer, when its key is reused with another %s, then IDEMPOTENCY_CONFLICT", (_field, command) => {
    const ledger = given(open("a"), open("b"), open("c"), deposit("a", "d-1", 100n), transfer("p-1", "a", "b", 60n))
    expect(tags(when(ledger, command))).toBe("IDEMPOTENCY_CONFLICT")
    expect(balanceOf(ledger, "a")).toBe(40n)
  })

  it("given a payment key used by one debtor, when another debtor uses it, then it is a new payment", () => {
    const ledger = given(open("a"), open("b"), deposit("a", "d-1", 100n), deposit("b", "d-1", 100n))
    when(ledger, transfer("p-1", "a", "b", 10n))
    expect(tags(when(ledger, transfer("p-1", "b", "a", 10n)))).toEqual(["TransferDebited", "TransferCredited"])
  })
})

describe("Transfer across shards (saga)", () => {
  const funded = () => given(open("a"), open("b"), deposit("a", "d-1", 100n))

  it("given funds, when transferred to another node's shard, then the debit is recorded, pending, and the credit delivered after commit", () => {
    const ledger = funded()
    const decision = when(ledger, transfer("p-1", "a", "b", 30n, { creditorLocal: false }))
    expect(tags(decision)).toEqual(["TransferDebited"])
    expect(effectsOf(decision)).toEqual(["Deliver ApplyCredit", "Schedule RedeliverCredit +100ms"])
    expect(balanceOf(ledger, "a")).toBe(70n)
    expect(balanceOf(ledger, "b")).toBe(0n)
    expect(paymentOf(ledger, "a", "p-1")?.status).toBe("pending")
  })

  it("given an unknown creditor elsewhere, when transferred, then the debtor cannot know and records a pending debit", () => {
    const ledger = given(open("a"), deposit("a", "d-1", 100n))
    expect(tags(when(ledger, transfer("p-1", "a", "z", 30n, { creditorLocal: false })))).toEqual(["TransferDebited"])
  })

  it("given a pending payment, when the credit is applied twice, then the creditor is credited once", () => {
    const ledger = funded()
    when(ledger, transfer("p-1", "a", "b", 30n, { creditorLocal: false }))
    const first = when(ledger, applyCredit("p-1", "a", "b", 30n))
    expect(tags(first)).toEqual(["TransferCredited"])
    expect(effectsOf(first)).toEqual(["Deliver SettleTransfer"])
    // The redelivery changes nothing and answers the debtor the same way again.
    const again = when(ledger, applyCredit("p-1", "a", "b", 30n))
    expect(tags(again)).toEqual([])
    expect(effectsOf(again)).toEqual(["Deliver SettleTransfer"])
    expect(balanceOf(ledger, "b")).toBe(30n)
  })

  it("given no creditor account, when the credit is delivered, then the refusal is recorded and the debtor told to reverse", () => {
    const ledger = given()
    const refused = when(ledger, applyCredit("p-1", "a", "b", 30n))
    expect(tags(refused)).toEqual(["CreditRefused"])
    expect(effectsOf(refused)).toEqual(["Deliver ReverseTransfer"])
    expect(ledger.credit(tenant, "b" as AccountId, "a" as AccountId, "p-1" as PaymentId)).toMatchObject({
      outcome: "refused",
      reason: "UNKNOWN_ACCOUNT",
    })
    // Opening the account later does not make a redelivery apply: the refusal stands.
    when(ledger, open("b"))
    const redelivered = when(ledger, applyCredit("p-1", "a", "b", 30n))
    expect(tags(redelivered)).toEqual([])
    expect(effectsOf(redelivered)).toEqual(["Deliver ReverseTransfer"])
    expect(balanceOf(ledger, "b")).toBe(0n)
  })

  it("given a creditor in JPY, when a USD credit is delivered, then it is refused with CURRENCY_MISMATCH", () => {
    const ledger = given(open("b", 0n, jpy))
    expect(tags(when(ledger, applyCredit("p-1", "a", "b", 30n)))).toEqual(["CreditRefused"])
    expect(ledger.credit(tenant, "b" as AccountId, "a" as AccountId, "p-1" as PaymentId)?.reason).toBe(
      "CURRENCY_MISMATCH",
    )
    expect(balanceOf(ledger, "b")).toBe(0n)
  })

  it("given a payment older than the window and no record of its credit, when delivered, then it is refused EXPIRED", () => {
    const ledger = given(open("b"))
    const late = {
      ...applyCredit("p-1", "a", "b", 30n),
      timestampMs: meta.timestampMs + policy.idempotencyRetentionMs,
    } as Command
    expect(tags(when(ledger, late))).toEqual(["CreditRefused"])
    expect(balanceOf(ledger, "b")).toBe(0n)
  })

  it("given an applied credit, when it is redelivered after the payment's window, then it is still not applied twice", () => {
    const ledger = given(open("b"), applyCredit("p-1", "a", "b", 30n))
    const late = {
      ...applyCredit("p-1", "a", "b", 30n),
      timestampMs: meta.timestampMs + policy.idempotencyRetentionMs + 1,
    } as Command
    const decision = when(ledger, late)
    expect(tags(decision)).toEqual([])
    expect(effectsOf(decision)).toEqual(["Deliver SettleTransfer"])
    expect(balanceOf(ledger, "b")).toBe(30n)
  })

  it("given a pending payment, when its redelivery timer fires, then the credit is delivered again and the next timer doubles", () => {
    const ledger = funded()
    when(ledger, transfer("p-1", "a", "b", 30n, { creditorLocal: false }))
    const redeliver = (attempt: number, atMs: number): Command => ({
      _tag: "RedeliverCredit",
      ...meta,
      timestampMs: atMs,
      paymentId: "p-1" as PaymentId,
      from: "a" as AccountId,
      attempt,
    })
    const decision = when(ledger, redeliver(1, meta.timestampMs))
    expect(tags(decision)).toEqual([])
    expect(effectsOf(decision)).toEqual(["Deliver ApplyCredit", "Schedule RedeliverCredit +200ms"])
    // Past the horizon the payment stays pending (in doubt) and nothing more is sent.
    expect(effectsOf(when(ledger, redeliver(9, meta.timestampMs + 2 * policy.idempotencyRetentionMs)))).toEqual([])
    when(ledger, settle("p-1", "a"))
    expect(effectsOf(when(ledger, redeliver(2, meta.timestampMs)))).toEqual([])
  })

  it("given a credited payment, when settled twice, then settled once and the balances stand", () => {
    const ledger = funded()
    when(ledger, transfer("p-1", "a", "b", 30n, { creditorLocal: false }))
    when(ledger, applyCredit("p-1", "a", "b", 30n))
    expect(tags(when(ledger, settle("p-1", "a")))).toEqual(["TransferSettled"])
    expect(tags(when(ledger, settle("p-1", "a")))).toEqual([])
    expect(paymentOf(ledger, "a", "p-1")?.status).toBe("settled")
    expect(balanceOf(ledger, "a")).toBe(70n)
  })

  it("given a refused credit, when reversed twice, then the debtor gets its money back once and the payment is declined", () => {
    const ledger = given(open("a"), deposit("a", "d-1", 100n))
    when(ledger, transfer("p-1", "a", "z", 30n, { creditorLocal: false }))
    expect(tags(when(ledger, reverse("p-1", "a")))).toEqual(["TransferReversed"])
    expect(tags(when(ledger, reverse("p-1", "a")))).toEqual([])
    expect(balanceOf(ledger, "a")).toBe(100n)
    expect(paymentOf(ledger, "a", "p-1")).toMatchObject({ status: "declined", reason: "UNKNOWN_ACCOUNT" })
  })

  it("given a settled payment, when a reversal arrives late, then nothing changes (settled is final)", () => {
    const ledger = funded()
    when(ledger, transfer("p-1", "a", "b", 30n, { creditorLocal: false }))
    when(ledger, applyCredit("p-1", "a", "b", 30n))
    when(ledger, settle("p-1", "a"))
    expect(tags(when(ledger, reverse("p-1", "a")))).toEqual([])
    expect(paymentOf(ledger, "a", "p-1")?.status).toBe("settled")
    expect(balanceOf(ledger, "a")).toBe(70n)
  })

  it("given a reversed payment, when a settlement arrives late, then nothing changes (declined is final)", () => {
    const ledger = given(open("a"), deposit("a", "d-1", 100n))
    when(ledger, transfer("p-1", "a", "z", 30n, { creditorLocal: false }))
    when(ledger, reverse("p-1", "a"))
    expect(tags(when(ledger, settle("p-1", "a")))).toEqual([])
    expect(paymentOf(ledger, "a", "p-1")?.status).toBe("declined")
  })

  it("given no such payment, when settled or reversed, then UNKNOWN_PAYMENT", () => {
    const ledger = given(open("a"))
    expect(tags(when(ledger, settle("p-1", "a")))).toBe("UNKNOWN_PAYMENT")
    expect(tags(when(ledger, reverse("p-1", "a")))).toBe("UNKNOWN_PAYMENT")
  })
})

describe("events carry the envelope", () => {
  it("given an account, when commands are accepted, then its events are numbered 1, 2, 3 without gaps", () => {
    const ledger = given(open("a"), open("b"))
    const events = [
      ...(when(ledger, deposit("a", "d-1", 100n)) as Accepted).events,
      ...(when(ledger, transfer("p-1", "a", "b", 1n)) as Accepted).events,
    ]
    expect(events.map((event) => [event.accountId, event.sequence])).toEqual([
      ["a", 2],
      ["a", 3],
      ["b", 2],
    ])
    for (const event of events) {
      expect(event).toMatchObject({ schemaVersion: 1, tenantId: tenant, correlationId: "corr-1" })
    }
  })
})

/**
 * Regression: entry keys joined tenant, account and entry id with NUL, which ids may contain
 * (the contract allows any 1 to 128 characters), so account `x` with payment `p-1\0p-2` and account
 * `x\0p-1` with payment `p-2` shared one key. Found by the ledger property test.
 */
describe("regression: ids that contain the key separator", () => {
  const collidingAccount = "x\u0000p-1"
  const collidingPayment = "p-1\u0000p-2"

  it("given a payment of account x\\0p-1, when account x makes payment p-1\\0p-2, then it is a new payment", () => {
    const ledger = given(open("x"), open(collidingAccount), open("b"), deposit("x", "d-1", 100n))
    when(ledger, transfer("p-2", collidingAccount, "b", 5n))
    expect(tags(when(ledger, transfer(collidingPayment, "x", "b", 5n)))).toEqual([
      "TransferDebited",
      "TransferCredited",
    ])
    expect(balanceOf(ledger, "x")).toBe(95n)
    expect(paymentOf(ledger, collidingAccount, "p-2")?.status).toBe("declined")
    expect(paymentOf(ledger, "x", collidingPayment)?.status).toBe("settled")
  })

  it("given a credit from x\\0p-1, when a credit from x for p-1\\0p-2 arrives, then it is applied too (no money lost)", () => {
    const ledger = given(open("b"))
    when(ledger, applyCredit("p-2", collidingAccount, "b", 5n))
    expect(tags(when(ledger, applyCredit(collidingPayment, "x", "b", 7n)))).toEqual(["TransferCredited"])
    expect(balanceOf(ledger, "b")).toBe(12n)
  })

  it("given deposits on two accounts whose ids differ only around NUL, then both are kept apart", () => {
    const ledger = given(open("x"), open(collidingAccount))
    when(ledger, deposit(collidingAccount, "d-1", 3n))
    expect(tags(when(ledger, deposit("x", "p-1\u0000d-1", 4n)))).toEqual(["FundsDeposited"])
    expect([...ledger.entries.values()].filter((entry) => entry.kind === "deposit")).toHaveLength(2)
  })
})

describe("idempotency window", () => {
  const later = (command: Command, ms: number): Command =>
    ({ ...command, timestampMs: meta.timestampMs + ms }) as Command

  it("given a deposit older than the window, when its key is used again, then it is a new deposit", () => {
    const ledger = given(open("a"), deposit("a", "d-1", 10n))
    expect(tags(when(ledger, later(deposit("a", "d-1", 99n), policy.idempotencyRetentionMs - 1)))).toBe(
      "IDEMPOTENCY_CONFLICT",
    )
    expect(tags(when(ledger, later(deposit("a", "d-1", 99n), policy.idempotencyRetentionMs)))).toEqual([
      "FundsDeposited",
    ])
    expect(balanceOf(ledger, "a")).toBe(109n)
  })

  it("given a settled payment older than the window, when its key is used again, then it is a new payment", () => {
    const ledger = given(open("a"), open("b"), deposit("a", "d-1", 100n), transfer("p-1", "a", "b", 10n))
    expect(tags(when(ledger, later(transfer("p-1", "a", "b", 20n), policy.idempotencyRetentionMs)))).toEqual([
      "TransferDebited",
      "TransferCredited",
    ])
    expect(balanceOf(ledger, "a")).toBe(70n)
  })

  it("given a pending payment, however old, then its key is still held (a saga needs it)", () => {
    const ledger = given(open("a"), deposit("a", "d-1", 100n), transfer("p-1", "a", "z", 10n, { creditorLocal: false }))
    const command = later(transfer("p-1", "a", "z", 10n, { creditorLocal: false }), 10 * policy.idempotencyRetentionMs)
    expect(tags(when(ledger, command))).toEqual([])
    expect(balanceOf(ledger, "a")).toBe(90n)
  })
})

describe("pendingEffects (resuming sagas after a recovery)", () => {
  it("given pending payments, then each gets its credit delivered again with a redelivery scheduled", () => {
    const ledger = given(open("a"), deposit("a", "d-1", 100n), transfer("p-1", "a", "z", 10n, { creditorLocal: false }))
    const pending = [...ledger.entries.values()].flatMap((entry) => (entry.kind === "payment" ? [entry.value] : []))
    const effects = pendingEffects(pending, meta.timestampMs, policy)
    expect(effects.map((effect) => `${effect._tag} ${effect.command._tag}`)).toEqual([
      "Deliver ApplyCredit",
      "Schedule RedeliverCredit",
    ])
    expect(pendingEffects([], meta.timestampMs, policy)).toEqual([])
  })
})
