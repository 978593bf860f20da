/**
 * Given/when/then specs of currency conversion in the payment path: a debtor or creditor holding
 * another currency than the payment's is debited or credited the converted amount at the tenant's
 * rate, rounded half-to-even at the half-way cases of exponents 0, 2 and 3; partial captures and
 * refunds convert at the booked rate so the parts add up exactly; a missing pair is
 * FX_RATE_UNAVAILABLE; events and snapshots carry the conversion.
 */
import { describe, expect, it } from "vitest"
import type { Command } from "../../core/commands.ts"
import { type Decision, decide } from "../../core/decide.ts"
import { decodeEntity, encodeEntity, encodeEntityBySchema } from "../../core/entity-codec.ts"
import { isRejection } from "../../core/errors.ts"
import { decodeJournalRecord, type Event, encodeJournalRecord, encodeJournalRecordBySchema } from "../../core/events.ts"
import { applyEvents } from "../../core/evolve.ts"
import { type FxRateTable, makeRateTable } from "../../core/fx.ts"
import type { AccountId, DepositId, PaymentId, TenantId } from "../../core/ids.ts"
import { Ledger } from "../../core/ledger.ts"
import type { Currency } from "../../core/money.ts"
import type { LedgerPolicy } from "../../core/policy.ts"
import { type TenantPolicy, tenantPolicyOf } from "../../core/tenant-policy.ts"
import { encodePayment, paymentJson } from "../../transport/wire-response.ts"

const tenant = "tenant-a" as TenantId
const nowMs = 1_700_000_000_000
const asOfMs = 1_699_999_000_000
const policy: LedgerPolicy = {
  idempotencyRetentionMs: 24 * 3_600_000,
  creditRedeliveryDelayMs: 100,
  creditRedeliveryDelayMsMax: 1_000,
}
const meta = { tenantId: tenant, correlationId: "c", timestampMs: nowMs }

const ratesOf = (entries: ReadonlyArray<readonly [string, string, string]>): FxRateTable => {
  const table = makeRateTable(entries.map(([base, quote, rate]) => ({ base, quote, rate, source: "ecb", asOfMs })))
  if ("reason" in table) throw new Error(table.reason)
  return table
}
const withRates = (rates: FxRateTable): TenantPolicy => tenantPolicyOf([], undefined, undefined, rates)
const standard = withRates(
  ratesOf([
    ["EUR", "USD", "1.25"],
    ["EUR", "JPY", "150"],
    ["JPY", "KWD", "0.0025"],
  ]),
)

const open = (accountId: string, currency: string): Command => ({
  _tag: "OpenAccount",
  ...meta,
  accountId: accountId as AccountId,
  currency: currency as Currency,
  floorMinor: 0n,
})
const deposit = (accountId: string, amountMinor: bigint, currency: string): Command => ({
  _tag: "Deposit",
  ...meta,
  accountId: accountId as AccountId,
  depositId: `dep-${accountId}` as DepositId,
  amountMinor,
  currency: currency as Currency,
})
const transfer = (
  paymentId: string,
  from: string,
  to: string,
  amountMinor: bigint,
  currency: string,
  tenantPolicy: TenantPolicy | undefined = standard,
): Command => ({
  _tag: "Transfer",
  ...meta,
  paymentId: paymentId as PaymentId,
  from: from as AccountId,
  to: to as AccountId,
  amountMinor,
  currency: currency as Currency,
  creditorLocal: true,
  tenantPolicy,
})

const when = (ledger: Ledger, command: Command, journal?: Array<Event>): Decision => {
  const decision = decide(ledger, command, policy)
  if (!isRejection(decision)) {
    applyEvents(ledger, decision.events)
    journal?.push(...decision.events)
  }
  return decision
}
/** usd-1 (USD), eur-1 (EUR), jpy-1 (JPY), kwd-1 (KWD), each funded. */
const funded = (journal?: Array<Event>): Ledger => {
  const ledger = new Ledger()
  for (const [accountId, currency, amountMinor] of [
    ["usd-1", "USD", 100_000n],
    ["eur-1", "EUR", 100_000n],
    ["jpy-1", "JPY", 1_000_000n],
    ["kwd-1", "KWD", 1_000_000n],
  ] as const) {
    when(ledger, open(accountId, currency), journal)
    when(ledger, deposit(accountId, amountMinor, currency), journal)
  }
  return ledger
}
const balanceOf = (ledger: Ledger, accountId: string) => ledger.account(tenant, accountId as AccountId)?.balanceMinor
const heldOf = (ledger: Ledger, accountId: string) => ledger.account(tenant, accountId as AccountId)?.heldMinor
const paymentOf = (ledger: Ledger, from: string, paymentId: string) =>
  ledger.payment(tenant, from as AccountId, paymentId as PaymentId)
const code = (decision: Decision) => (isRejection(decision) ? decision.code : "accepted")

describe("conversion at the tenant's rate", () => {
  it("given a USD debtor and an EUR creditor, when 10.00 EUR is paid, then 12.50 USD is debited and 10.00 EUR credited", () => {
    const ledger = funded()
    when(ledger, transfer("p-1", "usd-1", "eur-1", 1_000n, "EUR"))
    expect(balanceOf(ledger, "usd-1")).toBe(100_000n - 1_250n)
    expect(balanceOf(ledger, "eur-1")).toBe(100_000n + 1_000n)
    expect(paymentOf(ledger, "usd-1", "p-1")).toMatchObject({
      status: "settled",
      amountMinor: 1_000n,
      currency: "EUR",
      fx: { debit: { rate: "1.25", source: "ecb", asOfMs, currency: "USD", amountMinor: 1_250n, rounding: "exact" } },
    })
  })

  it("given a pair configured one way, when paid the other way, then the exact inverse rate applies", () => {
    const ledger = funded()
    // 10.00 USD into EUR at 1/1.25 = 4/5: 8.00 EUR leave the EUR debtor.
    when(ledger, transfer("p-1", "eur-1", "usd-1", 1_000n, "USD"))
    expect(balanceOf(ledger, "eur-1")).toBe(100_000n - 800n)
    expect(paymentOf(ledger, "eur-1", "p-1")?.fx?.debit).toMatchObject({ rate: "4/5", amountMinor: 800n })
  })

  it("given both sides in other currencies, when paid, then each is converted from the payment's currency", () => {
    const ledger = funded()
    when(ledger, transfer("p-1", "usd-1", "jpy-1", 200n, "EUR"))
    expect(balanceOf(ledger, "usd-1")).toBe(100_000n - 250n)
    expect(balanceOf(ledger, "jpy-1")).toBe(1_000_000n + 300n)
    expect(paymentOf(ledger, "usd-1", "p-1")?.fx).toMatchObject({
      debit: { currency: "USD", amountMinor: 250n },
      credit: { currency: "JPY", amountMinor: 300n },
    })
  })

  it("given a pair without a rate, then FX_RATE_UNAVAILABLE; given no rate table, then CURRENCY_MISMATCH; nothing changes", () => {
    const ledger = funded()
    expect(code(when(ledger, transfer("p-1", "usd-1", "kwd-1", 100n, "USD")))).toBe("FX_RATE_UNAVAILABLE")
    expect(code(when(ledger, transfer("p-2", "usd-1", "eur-1", 100n, "EUR", tenantPolicyOf([]))))).toBe(
      "CURRENCY_MISMATCH",
    )
    expect(balanceOf(ledger, "usd-1")).toBe(100_000n)
    expect(paymentOf(ledger, "usd-1", "p-1")).toBeUndefined()
  })
})

describe("half-to-even at the half-way cases", () => {
  // Exponent 0: EUR → JPY at 150: 0.01 EUR = 1.5 JPY → 2; 0.03 EUR = 4.5 JPY → 4.
  // Exponent 2: EUR → USD at 1.25 (the creditor side): 0.02 EUR = 0.025 USD → 0.02; 0.06 EUR = 0.075 USD → 0.08.
  // Exponent 3: JPY → KWD at 0.0025: 1 JPY = 0.0025 KWD → 0.002; 3 JPY = 0.0075 KWD → 0.008.
  it.each([
    ["eur-1", "jpy-1", 1n, "EUR", 2n],
    ["eur-1", "jpy-1", 3n, "EUR", 4n],
    ["eur-1", "usd-1", 2n, "EUR", 2n],
    ["eur-1", "usd-1", 6n, "EUR", 8n],
    ["jpy-1", "kwd-1", 1n, "JPY", 2n],
    ["jpy-1", "kwd-1", 3n, "JPY", 8n],
  ] as const)(
    "given %s paying %s %i minor units of %s, then the creditor gets %i",
    (from, to, amountMinor, currency, credited) => {
      const ledger = funded()
      const before = balanceOf(ledger, to) as bigint
      when(ledger, transfer("p-1", from, to, amountMinor, currency))
      expect((balanceOf(ledger, to) as bigint) - before).toBe(credited)
      expect(paymentOf(ledger, from, "p-1")?.fx?.credit?.rounding).toBe("rounded_half_even")
    },
  )

  it("given an amount that converts to less than a unit, then INVALID_REQUEST and nothing moves", () => {
    const ledger = funded()
    const tiny = withRates(ratesOf([["KWD", "JPY", "0.1"]]))
    expect(code(when(ledger, transfer("p-1", "kwd-1", "jpy-1", 1n, "KWD", tiny)))).toBe("INVALID_REQUEST")
  })
})

describe("authorizations, captures and refunds at the booked rate", () => {
  const authorize = (paymentId: string, amountMinor: bigint): Command => ({
    _tag: "Authorize",
    ...meta,
    paymentId: paymentId as PaymentId,
    from: "usd-1" as AccountId,
    to: "eur-1" as AccountId,
    amountMinor,
    currency: "JPY" as Currency,
    holdMs: 60_000,
    tenantPolicy: withRates(ratesOf([["JPY", "USD", "0.00667"]])),
  })
  const capture = (paymentId: string, amount: string): Command => ({
    _tag: "Capture",
    ...meta,
    paymentId: paymentId as PaymentId,
    from: "usd-1" as AccountId,
    captureId: "c-1",
    amount,
    creditorLocal: true,
    tenantPolicy: withRates(
      ratesOf([
        ["JPY", "USD", "0.00667"],
        ["JPY", "EUR", "0.00615"],
      ]),
    ),
  })
  const refund = (paymentId: string, refundId: string, amount: string | null): Command => ({
    _tag: "Refund",
    ...meta,
    paymentId: paymentId as PaymentId,
    from: "usd-1" as AccountId,
    refundId,
    amount,
    creditorLocal: true,
  })

  it("holds the converted amount, captures a part converted, releases the whole hold, and refunds add up exactly", () => {
    const journal: Array<Event> = []
    const ledger = funded(journal)
    // 1,001 JPY at 0.00667 = 6.67667 USD → 6.68 held.
    when(ledger, authorize("a-1", 1_001n), journal)
    expect(heldOf(ledger, "usd-1")).toBe(668n)
    // 777 JPY captured: 5.18259 USD → 5.18 debited; 777 × 0.00615 = 4.77855 EUR → 4.78 credited.
    when(ledger, capture("a-1", "777"), journal)
    expect(heldOf(ledger, "usd-1")).toBe(0n)
    expect(balanceOf(ledger, "usd-1")).toBe(100_000n - 518n)
    expect(balanceOf(ledger, "eur-1")).toBe(100_000n + 478n)
    // Refunds in parts whose conversions one by one would round differently from the total's. 1 JPY
    // more after the first is less than a unit of EUR on the creditor's side: refused, nothing moves.
    expect(code(when(ledger, refund("a-1", "r-1", "1"), journal))).toBe("accepted")
    expect(code(when(ledger, refund("a-1", "r-2", "1"), journal))).toBe("INVALID_REQUEST")
    expect(code(when(ledger, refund("a-1", "r-3", "3"), journal))).toBe("accepted")
    expect(code(when(ledger, refund("a-1", "r-4", null), journal))).toBe("accepted")
    expect(paymentOf(ledger, "usd-1", "a-1")).toMatchObject({ status: "refunded", refundedAmountMinor: 777n })
    expect(balanceOf(ledger, "usd-1")).toBe(100_000n)
    expect(balanceOf(ledger, "eur-1")).toBe(100_000n)

    // The journal as stored replays to the same state; the payment's snapshot round-trips.
    const record = { events: journal }
    expect(encodeJournalRecord(record)).toBe(encodeJournalRecordBySchema(record))
    const replayed = new Ledger()
    applyEvents(replayed, decodeJournalRecord(encodeJournalRecord(record)).events)
    expect([...replayed.entities()]).toEqual([...ledger.entities()])
    const entity = { kind: "payment" as const, value: paymentOf(ledger, "usd-1", "a-1") as never }
    expect(encodeEntity(entity)).toBe(encodeEntityBySchema(entity))
    expect(decodeEntity(encodeEntity(entity))).toEqual(entity)
  })

  it("shows the conversions on the wire payment, as the same bytes both encoders give", () => {
    const ledger = funded()
    when(ledger, transfer("p-1", "usd-1", "jpy-1", 200n, "EUR"))
    const payment = paymentOf(ledger, "usd-1", "p-1") as never
    expect(paymentJson(payment)).toBe(JSON.stringify(encodePayment(payment)))
    expect(encodePayment(payment).fx).toEqual({
      debit: {
        rate: "1.25",
        source: "ecb",
        asOf: new Date(asOfMs).toISOString(),
        fromAmount: "2.00",
        fromCurrency: "EUR",
        toAmount: "2.50",
        toCurrency: "USD",
        rounding: "exact",
      },
      credit: expect.objectContaining({ rate: "150", toAmount: "300", toCurrency: "JPY" }),
    })
  })
})
