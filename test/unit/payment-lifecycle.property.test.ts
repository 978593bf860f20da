/**
 * Properties of the ledger with authorizations in the mix: generated sequences of deposits,
 * transfers, authorizations, captures (whole or part), refunds, voids, reviews of payments a fraud
 * rule held, and hold timers firing at random times, through decide → evolve, under a tenant
 * policy with a review rule, a velocity rule and a limit. After every step: what an account holds is the sum of its live
 * holds (authorizations and payments in review), no account spends below its floor, money is conserved (balances equal deposits),
 * every payment moved only along an allowed edge, and a replay of the events rebuilds the state.
 */
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import type { Command } from "../../core/commands.ts"
import { decide } from "../../core/decide.ts"
import { isRejection } from "../../core/errors.ts"
import type { Event } from "../../core/events.ts"
import { applyEvents } from "../../core/evolve.ts"
import type { AccountId, DepositId, PaymentId, TenantId } from "../../core/ids.ts"
import { isHolding, Ledger, type PaymentStatus } from "../../core/ledger.ts"
import type { Currency } from "../../core/money.ts"
import type { LedgerPolicy } from "../../core/policy.ts"
import { isRiskConfigError, parseLimits, parseRules, type RiskRule } from "../../core/risk.ts"
import { tenantPolicyOf } from "../../core/tenant-policy.ts"

const tenant = "t" as TenantId
const eur = "EUR" as Currency
const accounts = ["a", "b", "c"] as const
const startMs = 1_700_000_000_000
const policy: LedgerPolicy = {
  // Short, so that ids come free again within a run and later steps make new payments with them.
  idempotencyRetentionMs: 30_000,
  creditRedeliveryDelayMs: 100,
  creditRedeliveryDelayMsMax: 1_000,
}

const rules = parseRules([
  { id: "large", kind: "amount-limit", outcome: "review", amountMax: { EUR: "60.00" } },
  { id: "burst", kind: "velocity", outcome: "decline", windowMs: 60_000, countMax: 4 },
])
const limits = parseLimits({ paymentMax: { EUR: "79.00" } })
if (isRiskConfigError(rules) || isRiskConfigError(limits)) throw new Error("the test's tenant policy is invalid")
const tenantPolicy = tenantPolicyOf(rules as ReadonlyArray<RiskRule>, limits, 45_000)

/** The edges the contract allows; a payment first appears in one of the entry states. */
const entryStates: ReadonlySet<PaymentStatus> = new Set(["authorized", "settled", "declined", "pending", "review"])
const allowedEdges: ReadonlySet<string> = new Set([
  "review>authorized",
  "review>declined",
  "review>expired",
  // An approved transfer is captured in the same step: review -> authorized -> settled.
  "review>settled",
  "authorized>settled",
  "authorized>pending",
  "authorized>voided",
  "authorized>expired",
  "pending>settled",
  "settled>partially_refunded",
  "settled>refunded",
  "partially_refunded>refunded",
])

type Step =
  | { readonly kind: "deposit"; readonly account: number; readonly amountMinor: bigint }
  | {
      readonly kind: "transfer"
      readonly from: number
      readonly to: number
      readonly amountMinor: bigint
      readonly id: number
    }
  | {
      readonly kind: "authorize"
      readonly from: number
      readonly to: number
      readonly amountMinor: bigint
      readonly id: number
      readonly holdMs: number
    }
  | {
      readonly kind: "capture"
      readonly from: number
      readonly id: number
      readonly captureId: number
      readonly amount: string | null
    }
  | { readonly kind: "void"; readonly from: number; readonly id: number }
  | {
      readonly kind: "refund"
      readonly from: number
      readonly id: number
      readonly refundId: number
      readonly amount: string | null
    }
  | { readonly kind: "expire"; readonly from: number; readonly id: number }
  | { readonly kind: "review"; readonly from: number; readonly id: number; readonly approve: boolean }
  | { readonly kind: "wait"; readonly ms: number }

const account = fc.integer({ min: 0, max: accounts.length - 1 })
// Few ids per account, so later steps meet the payments earlier ones made.
const id = fc.integer({ min: 0, max: 1 })
const amount = fc.bigInt({ min: 1n, max: 8_000n })
const stepArbitrary: fc.Arbitrary<Step> = fc.oneof(
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("deposit" as const), account, amountMinor: amount }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("transfer" as const),
      from: account,
      to: fc.constant(-1),
      amountMinor: amount,
      id,
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("authorize" as const),
      from: account,
      to: fc.constant(-1),
      amountMinor: amount,
      id,
      holdMs: fc.integer({ min: 1, max: 120_000 }),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("capture" as const),
      from: account,
      id,
      captureId: fc.integer({ min: 0, max: 1 }),
      amount: fc.option(
        fc.bigInt({ min: 1n, max: 8_800n }).map((minor) => `${minor / 100n}.${String(minor % 100n).padStart(2, "0")}`),
        { nil: null },
      ),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("void" as const), from: account, id }) },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("refund" as const),
      from: account,
      id,
      refundId: fc.integer({ min: 0, max: 3 }),
      amount: fc.option(
        fc.bigInt({ min: 1n, max: 4_000n }).map((minor) => `${minor / 100n}.${String(minor % 100n).padStart(2, "0")}`),
        { nil: null },
      ),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("expire" as const), from: account, id }) },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant("review" as const), from: account, id, approve: fc.boolean() }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("wait" as const), ms: fc.integer({ min: 1, max: 90_000 }) }) },
)

const accountId = (index: number) => accounts[index] as AccountId
/** The next account after the debtor: payments always have two different accounts (the decider refuses one). */
const creditorOf = (from: number) => accountId((from + 1) % accounts.length)
const paymentId = (index: number) => `p-${index}` as PaymentId

const commandOf = (step: Step, nowMs: number, serial: number): Command | undefined => {
  const meta = { tenantId: tenant, correlationId: `c-${serial}`, timestampMs: nowMs }
  switch (step.kind) {
    case "deposit":
      return {
        _tag: "Deposit",
        ...meta,
        accountId: accountId(step.account),
        depositId: `d-${serial}` as DepositId,
        amountMinor: step.amountMinor,
        currency: eur,
      }
    case "transfer":
      return {
        _tag: "Transfer",
        ...meta,
        paymentId: paymentId(step.id),
        from: accountId(step.from),
        to: creditorOf(step.from),
        amountMinor: step.amountMinor,
        currency: eur,
        creditorLocal: true,
        tenantPolicy,
      }
    case "authorize":
      return {
        _tag: "Authorize",
        ...meta,
        paymentId: paymentId(step.id),
        from: accountId(step.from),
        to: creditorOf(step.from),
        amountMinor: step.amountMinor,
        currency: eur,
        holdMs: step.holdMs,
        tenantPolicy,
      }
    case "capture":
      return {
        _tag: "Capture",
        ...meta,
        paymentId: paymentId(step.id),
        from: accountId(step.from),
        captureId: `cap-${step.captureId}`,
        amount: step.amount,
        creditorLocal: true,
      }
    case "void":
      return { _tag: "Void", ...meta, paymentId: paymentId(step.id), from: accountId(step.from) }
    case "refund":
      return {
        _tag: "Refund",
        ...meta,
        paymentId: paymentId(step.id),
        from: accountId(step.from),
        refundId: `r-${step.refundId}`,
        amount: step.amount,
        creditorLocal: true,
      }
    case "expire":
      return { _tag: "ExpireHold", ...meta, paymentId: paymentId(step.id), from: accountId(step.from) }
    case "review":
      return {
        _tag: "ReviewPayment",
        ...meta,
        paymentId: paymentId(step.id),
        from: accountId(step.from),
        decision: step.approve ? "approve" : "decline",
        creditorLocal: true,
      }
    case "wait":
      return undefined
  }
}

const checkLedger = (ledger: Ledger, depositedMinor: bigint): void => {
  let balances = 0n
  for (const index of accounts.keys()) {
    const held = ledger.account(tenant, accountId(index))
    if (held === undefined) continue
    balances += held.balanceMinor
    let live = 0n
    for (const entry of ledger.entries.values()) {
      if (entry.kind === "payment" && entry.value.from === held.accountId && isHolding(entry.value))
        live += entry.value.amountMinor
    }
    expect(held.heldMinor).toBe(live)
    expect(held.balanceMinor - held.heldMinor).toBeGreaterThanOrEqual(held.floorMinor)
  }
  expect(balances).toBe(depositedMinor)
}

describe("payment lifecycle properties", () => {
  it("keeps holds equal to live authorizations, floors, conservation and the allowed edges; replays exactly", () => {
    // Guards against a generator that never reaches the interesting paths (each is seen 20 to 1,000 times in 1,000 runs).
    const seen = new Map<string, number>()
    fc.assert(
      fc.property(fc.array(stepArbitrary, { maxLength: 80 }), (steps) => {
        const ledger = new Ledger()
        const events: Array<Event> = []
        const statuses = new Map<string, PaymentStatus>()
        let nowMs = startMs
        let depositedMinor = 0n
        const run = (command: Command) => {
          const decision = decide(ledger, command, policy)
          if (isRejection(decision)) {
            seen.set(decision.code, (seen.get(decision.code) ?? 0) + 1)
            return
          }
          applyEvents(ledger, decision.events)
          events.push(...decision.events)
          for (const event of decision.events) seen.set(event._tag, (seen.get(event._tag) ?? 0) + 1)
          if (command._tag === "Capture" && decision.events.length > 0 && command.amount !== null)
            seen.set("partial capture", (seen.get("partial capture") ?? 0) + 1)
        }
        for (const index of accounts.keys()) {
          run({
            _tag: "OpenAccount",
            tenantId: tenant,
            correlationId: "o",
            timestampMs: nowMs,
            accountId: accountId(index),
            currency: eur,
            floorMinor: index === 2 ? -1_000n : 0n,
          })
        }
        for (const index of accounts.keys()) {
          run({
            _tag: "Deposit",
            tenantId: tenant,
            correlationId: "f",
            timestampMs: nowMs,
            accountId: accountId(index),
            depositId: "funding" as DepositId,
            amountMinor: 10_000n,
            currency: eur,
          })
          depositedMinor += 10_000n
        }
        for (const [serial, step] of steps.entries()) {
          if (step.kind === "wait") {
            nowMs += step.ms
            // The runtime's timers: every hold that fell due meanwhile lapses.
            for (const entry of [...ledger.entries.values()]) {
              const due = entry.kind === "payment" ? entry.value : undefined
              if (due === undefined || !isHolding(due) || (due.holdExpiresAtMs as number) > nowMs) continue
              const meta = { tenantId: tenant, correlationId: "timer", timestampMs: due.holdExpiresAtMs as number }
              run({ _tag: "ExpireHold", ...meta, paymentId: due.paymentId, from: due.from })
            }
          }
          const command = commandOf(step, nowMs, serial)
          if (command === undefined) continue
          const before = ledger.account(tenant, command._tag === "Deposit" ? command.accountId : accountId(0))
          run(command)
          if (command._tag === "Deposit" && before !== undefined) {
            const after = ledger.account(tenant, command.accountId)
            depositedMinor += (after?.balanceMinor ?? 0n) - before.balanceMinor
          }
          for (const entry of ledger.entries.values()) {
            if (entry.kind !== "payment") continue
            const key = `${entry.value.from}/${entry.value.paymentId}/${entry.value.createdAtMs}`
            const previous = statuses.get(key)
            const now = entry.value.status
            if (previous === undefined) expect(entryStates.has(now)).toBe(true)
            else if (previous !== now) expect(allowedEdges.has(`${previous}>${now}`)).toBe(true)
            statuses.set(key, now)
          }
          checkLedger(ledger, depositedMinor)
        }
        const replayed = new Ledger()
        applyEvents(replayed, events)
        expect([...replayed.entities()]).toEqual([...ledger.entities()])
      }),
      { numRuns: 1_000 },
    )
    for (const path of [
      "PaymentAuthorized",
      "PaymentCaptured",
      "partial capture",
      "AuthorizationVoided",
      "AuthorizationExpired",
      "PaymentRefunded",
      "TransferDeclined",
      "PaymentHeldForReview",
      "PaymentReviewed",
      "LIMIT_EXCEEDED",
    ])
      expect([path, seen.get(path) ?? 0]).toEqual([path, expect.toSatisfy((count: number) => count > 0)])
  })
})
