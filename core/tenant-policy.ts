/**
 * A tenant's payment policy, as its configuration gives it: fraud rules, limits (largest single
 * payment, daily volume per debtor account), how long a transfer held for review waits, and its
 * exchange rates. The
 * edge attaches the policy in force to each payment command, so `decide` stays pure and a new
 * configuration applies from the next command on. `screenPayment` is the one place a payment is
 * judged against it, inside the debtor's actor, from the history its account carries.
 */
import { type Rejection, reject } from "./errors.ts"
import type { FxRateTable } from "./fx.ts"
import type { Account } from "./ledger.ts"
import { type Currency, formatAmount } from "./money.ts"
import {
  dailyVolumeOf,
  emptyHistory,
  evaluate,
  type HistoryBounds,
  historyWindowMs,
  type RiskCandidate,
  type RiskRule,
  type RiskVerdict,
  velocityCountMax,
} from "./risk.ts"

/** How long a hold lasts when neither the request nor the tenant says: 7 days, as card schemes commonly allow. */
export const holdSecondsDefault = 7 * 24 * 60 * 60
/** The longest hold: 30 days. */
export const holdSecondsMax = 30 * 24 * 60 * 60

export interface PaymentLimits {
  /** The largest single payment per currency; a currency not named has no limit. */
  readonly paymentMaxMinor: ReadonlyMap<Currency, bigint>
  /** The most one debtor account may pay per currency over the last day (see `dailyVolumeOf`). */
  readonly dailyVolumeMaxMinor: ReadonlyMap<Currency, bigint>
}

export interface TenantPolicy {
  readonly rules: ReadonlyArray<RiskRule>
  readonly limits: PaymentLimits
  /** How long a transfer held for review waits for its decision before its hold lapses. */
  readonly reviewHoldMs: number
  /** The history its rules and limits read, recorded on each payment; undefined when none needs one. */
  readonly history: HistoryBounds | undefined
  /** Its exchange rates; without a table, a payment in another currency than an account's is CURRENCY_MISMATCH. */
  readonly rates: FxRateTable | undefined
}

/**
 * Bounds on the history one account keeps: a velocity count above this could never be reached, and
 * a new-payee rule remembers this many payees. They bound memory per account (a few kilobytes).
 */
export const historyEntriesMax = velocityCountMax
export const knownPayeesMax = 256

const noLimits: PaymentLimits = { paymentMaxMinor: new Map(), dailyVolumeMaxMinor: new Map() }

/** The policy of a tenant that configures nothing: no rules, no limits. */
export const openTenantPolicy: TenantPolicy = {
  rules: [],
  limits: noLimits,
  reviewHoldMs: holdSecondsDefault * 1000,
  history: undefined,
  rates: undefined,
}

/** The history the rules and limits need: the longest velocity window, the largest count, payees if asked. */
const historyBoundsOf = (rules: ReadonlyArray<RiskRule>, limits: PaymentLimits): HistoryBounds | undefined => {
  const velocity = rules.filter((rule) => rule.kind === "velocity")
  const countMax = velocity.reduce((largest, rule) => Math.max(largest, rule.countMax ?? 0), 0)
  const sums = velocity.some((rule) => rule.sumMinorMax.size > 0)
  const payees = rules.some((rule) => rule.kind === "new-payee")
  const keepsVolume = limits.dailyVolumeMaxMinor.size > 0
  if (velocity.length === 0 && !payees && !keepsVolume) return undefined
  return {
    historyWindowMs: historyWindowMs(rules),
    historyEntriesMax: sums ? historyEntriesMax : Math.min(countMax, historyEntriesMax),
    knownPayeesMax: payees ? knownPayeesMax : 0,
    keepsVolume,
  }
}

export const tenantPolicyOf = (
  rules: ReadonlyArray<RiskRule>,
  limits: PaymentLimits = noLimits,
  reviewHoldMs: number = holdSecondsDefault * 1000,
  rates: FxRateTable | undefined = undefined,
): TenantPolicy => ({ rules, limits, reviewHoldMs, history: historyBoundsOf(rules, limits), rates })

const approved: RiskVerdict = { outcome: "approve" }

/**
 * Judges a payment of `debtor` before anything is recorded: a limit it breaks is `LIMIT_EXCEEDED`
 * (nothing changes, the id stays free); otherwise the rules' verdict.
 */
export const screenPayment = (
  policy: TenantPolicy | undefined,
  debtor: Account,
  candidate: RiskCandidate,
  nowMs: number,
): RiskVerdict | Rejection => {
  if (policy === undefined || (policy.rules.length === 0 && policy.history === undefined && policy.limits === noLimits))
    return approved
  const { paymentMaxMinor, dailyVolumeMaxMinor } = policy.limits
  const { amountMinor, currency } = candidate
  const paymentMax = paymentMaxMinor.get(currency)
  if (paymentMax !== undefined && amountMinor > paymentMax) {
    return reject("LIMIT_EXCEEDED", `a single payment is limited to ${formatAmount(paymentMax, currency)} ${currency}`)
  }
  const history = debtor.recent ?? emptyHistory
  const dailyMax = dailyVolumeMaxMinor.get(currency)
  if (dailyMax !== undefined && dailyVolumeOf(history, currency, nowMs) + amountMinor > dailyMax) {
    return reject(
      "LIMIT_EXCEEDED",
      `account ${debtor.accountId} may pay at most ${formatAmount(dailyMax, currency)} ${currency} a day`,
    )
  }
  return policy.rules.length === 0 ? approved : evaluate(policy.rules, history, candidate, nowMs)
}
