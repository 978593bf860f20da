/**
 * Properties of the ledger with currency conversion in the mix: generated transfers,
 * authorizations, captures (whole or part), voids and refunds (whole or part) between accounts in
 * EUR, USD and JPY, paid in any of those currencies at generated rates, through decide → evolve.
 * After every step, per currency: the balances equal the deposits less what every payment took from
 * its debtors plus what it gave its creditors, each at the conversion booked on the payment; what
 * an account holds is the sum of its live holds in its own currency; no account is below its floor;
 * and a replay of the journal rebuilds the state exactly.
 */
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import type { Command } from "../../core/commands.ts"
import { decide } from "../../core/decide.ts"
import { isRejection } from "../../core/errors.ts"
import type { Event } from "../../core/events.ts"
import { applyEvents } from "../../core/evolve.ts"
import { makeRateTable } from "../../core/fx.ts"
import type { AccountId, DepositId, PaymentId, TenantId } from "../../core/ids.ts"
import { heldBy, Ledger, type Payment } from "../../core/ledger.ts"
import type { Currency } from "../../core/money.ts"
import { atBookedRate } from "../../core/payment-fx.ts"
import type { LedgerPolicy } from "../../core/policy.ts"
import { type TenantPolicy, tenantPolicyOf } from "../../core/tenant-policy.ts"

const tenant = "t" as TenantId
const accounts = [
  ["eur", "EUR"],
  ["usd", "USD"],
  ["jpy", "JPY"],
] as const
const currencies = ["EUR", "USD", "JPY"] as const
const startMs = 1_700_000_000_000
const policy: LedgerPolicy = {
  idempotencyRetentionMs: 24 * 3_600_000,
  creditRedeliveryDelayMs: 100,
  creditRedeliveryDelayMsMax: 1_000,
}

/** A rate as a decimal string of up to 4 fraction digits, from 0.0001 to 200. */
const rate = fc.integer({ min: 1, max: 2_000_000 }).map((ten000ths) => {
  const text = `${Math.floor(ten000ths / 10_000)}.${String(ten000ths % 10_000).padStart(4, "0")}`
  return text
})
const tenantPolicyArbitrary: fc.Arbitrary<TenantPolicy> = fc
  .record({ eurUsd: rate, eurJpy: rate, usdJpy: rate })
  .map(({ eurUsd, eurJpy, usdJpy }) => {
    const table = makeRateTable([
      { base: "EUR", quote: "USD", rate: eurUsd, source: "test", asOfMs: startMs },
      { base: "EUR", quote: "JPY", rate: eurJpy, source: "test", asOfMs: startMs },
      // One pair only one way: the other direction is its exact inverse.
      { base: "USD", quote: "JPY", rate: usdJpy, source: "test", asOfMs: startMs },
    ])
    if ("reason" in table) throw new Error(table.reason)
    return tenantPolicyOf([], undefined, undefined, table)
  })

type Step =
  | {
      readonly kind: "transfer" | "authorize"
      readonly from: number
      readonly to: number
      readonly currency: number
      readonly amountMinor: bigint
    }
  | { readonly kind: "capture"; readonly payment: number; readonly fraction: number | null }
  | { readonly kind: "void"; readonly payment: number }
  | { readonly kind: "refund"; readonly payment: number; readonly fraction: number | null }

const index3 = fc.integer({ min: 0, max: 2 })
const fraction = fc.option(fc.integer({ min: 1, max: 100 }), { nil: null })
const stepArbitrary: fc.Arbitrary<Step> = fc.oneof(
  fc.record({
    kind: fc.constantFrom("transfer" as const, "authorize" as const),
    from: index3,
    to: fc.integer({ min: 1, max: 2 }),
    currency: index3,
    amountMinor: fc.bigInt({ min: 1n, max: 50_000n }),
  }),
  fc.record({ kind: fc.constant("capture" as const), payment: fc.nat(30), fraction }),
  fc.record({ kind: fc.constant("void" as const), payment: fc.nat(30) }),
  fc.record({ kind: fc.constant("refund" as const), payment: fc.nat(30), fraction }),
)

const accountAt = (index: number) => (accounts[index % accounts.length] as (typeof accounts)[number])[0] as AccountId
/** A decimal string of `fraction` percent of `amountMinor` in `currency`, at least one minor unit. */
const partOf = (amountMinor: bigint, percent: number, currency: Currency): string => {
  const minor = (amountMinor * BigInt(percent)) / 100n || 1n
  if (currency === "JPY") return `${minor}`
  return `${minor / 100n}.${String(minor % 100n).padStart(2, "0")}`
}

/** What the payment has taken from its debtor and given its creditor so far, at its booked conversions. */
const netFlows = (payment: Payment) => {
  const kept = payment.capturedAmountMinor
  const back = payment.refundedAmountMinor
  const debit = payment.fx?.debit
  const credit = payment.fx?.credit
  return {
    debitCurrency: debit?.currency ?? payment.currency,
    debitedMinor: atBookedRate(debit, kept, payment.currency) - atBookedRate(debit, back, payment.currency),
    creditCurrency: credit?.currency ?? payment.currency,
    creditedMinor: atBookedRate(credit, kept, payment.currency) - atBookedRate(credit, back, payment.currency),
  }
}

describe("currency conversion properties", () => {
  it("conserves every currency at the booked rates, keeps holds and floors, and replays exactly", () => {
    const seen = new Map<string, number>()
    fc.assert(
      fc.property(tenantPolicyArbitrary, fc.array(stepArbitrary, { maxLength: 40 }), (tenantPolicy, steps) => {
        const ledger = new Ledger()
        const journal: Array<Event> = []
        const deposited = new Map<string, bigint>()
        const payments: Array<{ from: AccountId; paymentId: PaymentId }> = []
        const nowMs = startMs
        const run = (command: Command) => {
          const decision = decide(ledger, command, policy)
          if (isRejection(decision)) {
            seen.set(decision.code, (seen.get(decision.code) ?? 0) + 1)
            return
          }
          applyEvents(ledger, decision.events)
          journal.push(...decision.events)
          for (const event of decision.events) seen.set(event._tag, (seen.get(event._tag) ?? 0) + 1)
        }
        const meta = { tenantId: tenant, correlationId: "c", timestampMs: nowMs }
        for (const [accountId, currency] of accounts) {
          run({
            _tag: "OpenAccount",
            ...meta,
            accountId: accountId as AccountId,
            currency: currency as Currency,
            floorMinor: 0n,
          })
          const amountMinor = currency === "JPY" ? 10_000_000n : 1_000_000n
          run({
            _tag: "Deposit",
            ...meta,
            accountId: accountId as AccountId,
            depositId: "funding" as DepositId,
            amountMinor,
            currency: currency as Currency,
          })
          deposited.set(currency, amountMinor)
        }
        for (const [serial, step] of steps.entries()) {
          const target = payments[("payment" in step ? step.payment : 0) % Math.max(1, payments.length)]
          const existing = target === undefined ? undefined : ledger.payment(tenant, target.from, target.paymentId)
          switch (step.kind) {
            case "transfer":
            case "authorize": {
              const from = accountAt(step.from)
              const paymentId = `p-${serial}` as PaymentId
              payments.push({ from, paymentId })
              const payment = {
                ...meta,
                paymentId,
                from,
                to: accountAt(step.from + step.to),
                amountMinor: step.amountMinor,
                currency: currencies[step.currency] as Currency,
                tenantPolicy,
              }
              run(
                step.kind === "transfer"
                  ? { _tag: "Transfer", ...payment, creditorLocal: true }
                  : { _tag: "Authorize", ...payment, holdMs: 60_000 },
              )
              break
            }
            case "capture":
              if (target === undefined || existing === undefined) break
              run({
                _tag: "Capture",
                ...meta,
                ...target,
                captureId: "c",
                amount: step.fraction === null ? null : partOf(existing.amountMinor, step.fraction, existing.currency),
                creditorLocal: true,
                tenantPolicy,
              })
              break
            case "void":
              if (target !== undefined) run({ _tag: "Void", ...meta, ...target })
              break
            case "refund":
              if (target === undefined || existing === undefined) break
              run({
                _tag: "Refund",
                ...meta,
                ...target,
                refundId: `r-${serial}`,
                amount:
                  step.fraction === null
                    ? null
                    : partOf(existing.capturedAmountMinor || 1n, step.fraction, existing.currency),
                creditorLocal: true,
              })
              break
          }
          const expected = new Map(deposited)
          const held = new Map<string, bigint>()
          for (const { from, paymentId } of payments) {
            const payment = ledger.payment(tenant, from, paymentId)
            if (payment === undefined) continue
            const flows = netFlows(payment)
            expected.set(flows.debitCurrency, (expected.get(flows.debitCurrency) ?? 0n) - flows.debitedMinor)
            expected.set(flows.creditCurrency, (expected.get(flows.creditCurrency) ?? 0n) + flows.creditedMinor)
            held.set(from, (held.get(from) ?? 0n) + heldBy(payment))
          }
          for (const [accountId, currency] of accounts) {
            const account = ledger.account(tenant, accountId as AccountId)
            expect(account?.balanceMinor).toBe(expected.get(currency))
            expect(account?.heldMinor).toBe(held.get(accountId) ?? 0n)
            expect((account?.balanceMinor ?? 0n) - (account?.heldMinor ?? 0n)).toBeGreaterThanOrEqual(0n)
          }
        }
        const replayed = new Ledger()
        applyEvents(replayed, journal)
        expect([...replayed.entities()]).toEqual([...ledger.entities()])
      }),
      { numRuns: 400 },
    )
    for (const path of ["TransferDebited", "PaymentAuthorized", "PaymentCaptured", "PaymentRefunded", "RefundDebited"])
      expect([path, seen.get(path) ?? 0]).toEqual([path, expect.toSatisfy((count: number) => count > 0)])
  })
})
