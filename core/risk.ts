/**
 * Risk: the fraud rules a tenant configures, and the bounded recent history of one debtor account
 * they are judged against. Everything here is pure and synchronous: the debtor's actor calls
 * `evaluate` in the payment path with the time as a parameter, and `recordPayment` when a debit is
 * durable (from `evolve`, with the event's timestamp), so replaying the journal rebuilds the same
 * history. Rules arrive as JSON and are validated once by `parseRules`; from then on every amount is
 * bigint minor units.
 */
import type { AccountId } from "./ids.ts"
import { isIdText } from "./ids.ts"
import { invariant } from "./invariants.ts"
import type { Payment, PaymentStatus } from "./ledger.ts"
import { type Currency, isCurrency, parseDecimal } from "./money.ts"

export type RuleOutcome = "review" | "decline"

/** Fires when the amount is above its currency's limit; a currency without a limit never fires. */
export interface AmountLimitRule {
  readonly kind: "amount-limit"
  readonly id: string
  readonly outcome: RuleOutcome
  readonly amountMinorMax: ReadonlyMap<Currency, bigint>
}

/**
 * Fires when this payment would make the debtor's payments in the window more than `countMax` (of
 * any currency), or their sum in the candidate's currency more than that currency's limit.
 */
export interface VelocityRule {
  readonly kind: "velocity"
  readonly id: string
  readonly outcome: RuleOutcome
  readonly windowMs: number
  readonly countMax: number | null
  readonly sumMinorMax: ReadonlyMap<Currency, bigint>
}

/** Fires when the creditor is blocked; always declines, since review would still let money reach it. */
export interface BlockedCounterpartyRule {
  readonly kind: "blocked-counterparty"
  readonly id: string
  readonly outcome: "decline"
  readonly blocked: ReadonlySet<AccountId>
}

/** Fires when the creditor is not among the debtor's known payees and the amount is above the limit. */
export interface NewPayeeRule {
  readonly kind: "new-payee"
  readonly id: string
  readonly outcome: RuleOutcome
  readonly amountMinorMax: ReadonlyMap<Currency, bigint>
}

export type RiskRule = AmountLimitRule | VelocityRule | BlockedCounterpartyRule | NewPayeeRule

/** The payment being decided, before any of its events exist. */
export interface RiskCandidate {
  readonly to: AccountId
  readonly amountMinor: bigint
  readonly currency: Currency
}

export type RiskVerdict =
  | { readonly outcome: "approve" }
  | { readonly outcome: "review"; readonly rule: string }
  | { readonly outcome: "decline"; readonly rule: string; readonly reason: "RISK_DECLINED" }

export interface HistoryEntry {
  readonly createdAtMs: number
  readonly amountMinor: bigint
  readonly currency: Currency
  readonly to: AccountId
}

/** One hour's debits of one currency: the daily volume limit sums the last 24 of them. */
export interface VolumeBucket {
  readonly hourStartMs: number
  readonly currency: Currency
  readonly amountMinor: bigint
}

/**
 * One debtor's recent history: a field of its account, so it is saved with the account's snapshot
 * and rebuilt by replaying the journal after it. Immutable like the account: recording copies at
 * most `historyEntriesMax` entries and `knownPayeesMax` payees, and only for a tenant whose rules
 * need a history, so accounts of other tenants pay nothing.
 */
export interface DebtorHistory {
  /** Recorded payments in the order recorded, oldest first. */
  readonly entries: ReadonlyArray<HistoryEntry>
  /** Payees of recorded payments, least recently paid first. */
  readonly knownPayees: ReadonlyArray<AccountId>
  /** Debits per hour and currency over the last day, oldest first: exact whatever the count. */
  readonly volume: ReadonlyArray<VolumeBucket>
}

export interface HistoryBounds {
  /** `historyWindowMs(rules)`: entries older than the longest velocity window are dropped. */
  readonly historyWindowMs: number
  /** At least the largest `countMax`, or a velocity count can never reach it; sums undercount when full. */
  readonly historyEntriesMax: number
  readonly knownPayeesMax: number
  /** Whether the hourly volume is kept (a daily volume limit needs it). */
  readonly keepsVolume: boolean
}

/** Payments that took effect on the debtor (debited, pending or settled) count; declined ones never do. */
export type RecordedStatus = Exclude<PaymentStatus, "declined">
export type RecordedPayment = Pick<Payment, "createdAtMs" | "amountMinor" | "currency" | "to"> & {
  readonly status: RecordedStatus
}

export const isRecorded = (payment: Payment): payment is Payment & { readonly status: RecordedStatus } =>
  payment.status !== "declined"

export const emptyHistory: DebtorHistory = { entries: [], knownPayees: [], volume: [] }

export const hourMs = 60 * 60 * 1000
export const dayMs = 24 * hourMs

const hourStartOf = (timeMs: number): number => timeMs - (timeMs % hourMs)

/** The buckets of the last 24 hours (the current one included) with `amountMinor` added to the current hour's. */
const volumeWith = (
  volume: ReadonlyArray<VolumeBucket>,
  currency: Currency,
  amountMinor: bigint,
  nowMs: number,
): ReadonlyArray<VolumeBucket> => {
  const hourStartMs = hourStartOf(nowMs)
  const kept = volume.filter((bucket) => bucket.hourStartMs > hourStartMs - dayMs)
  const index = kept.findIndex((bucket) => bucket.hourStartMs === hourStartMs && bucket.currency === currency)
  if (index < 0) return [...kept, { hourStartMs, currency, amountMinor }]
  const current = kept[index] as VolumeBucket
  return kept.map((bucket, at) =>
    at === index ? { ...current, amountMinor: current.amountMinor + amountMinor } : bucket,
  )
}

/**
 * A debtor's debits of `currency` over the last day, counted in whole hours: a payment counts for 24
 * to 25 hours, never less, so a limit is never exceeded by the rounding.
 */
export const dailyVolumeOf = (history: DebtorHistory, currency: Currency, nowMs: number): bigint => {
  const fromMs = hourStartOf(nowMs) - dayMs
  let sumMinor = 0n
  for (const bucket of history.volume)
    if (bucket.currency === currency && bucket.hourStartMs > fromMs) sumMinor += bucket.amountMinor
  return sumMinor
}

/**
 * The history after one more payment, recorded once when it takes effect on the debtor (debited,
 * authorized or held for review), never again when it settles; a later reversal leaves it counted,
 * as the attempt was made. `nowMs` must be the event's timestamp, never the wall clock, so that a
 * replay prunes exactly as the live run did.
 */
export const recordPayment = (
  history: DebtorHistory,
  payment: RecordedPayment,
  nowMs: number,
  bounds: HistoryBounds,
): DebtorHistory => {
  invariant((payment.status as PaymentStatus) !== "declined", "a declined payment is recorded in risk history")
  invariant(payment.amountMinor > 0n, "a payment with a non-positive amount is recorded in risk history")
  const { createdAtMs, amountMinor, currency, to } = payment
  // Entries arrive in time order (only a clock stepping back breaks it), so only the front ages
  // out; `evaluate` filters by time anyway, so a stale entry behind a newer one costs a slot, never
  // a wrong answer.
  const expiredAtMs = nowMs - bounds.historyWindowMs
  const entries = [...history.entries, { createdAtMs, amountMinor, currency, to }]
  let first = Math.max(0, entries.length - bounds.historyEntriesMax)
  while (first < entries.length && (entries[first] as HistoryEntry).createdAtMs <= expiredAtMs) first++
  if (first > 0) entries.splice(0, first)
  const knownPayees = [...history.knownPayees.filter((payee) => payee !== to), to]
  if (knownPayees.length > bounds.knownPayeesMax) knownPayees.splice(0, knownPayees.length - bounds.knownPayeesMax)
  const volume = bounds.keepsVolume ? volumeWith(history.volume, currency, amountMinor, nowMs) : history.volume
  return { entries, knownPayees, volume }
}

/** The longest velocity window, which is how long history must be kept (0 without velocity rules). */
export const historyWindowMs = (rules: ReadonlyArray<RiskRule>): number =>
  rules.reduce((longest, rule) => (rule.kind === "velocity" ? Math.max(longest, rule.windowMs) : longest), 0)

const aboveLimit = (amountMinorMax: ReadonlyMap<Currency, bigint>, candidate: RiskCandidate): boolean => {
  const limitMinor = amountMinorMax.get(candidate.currency)
  return limitMinor !== undefined && candidate.amountMinor > limitMinor
}

/** An entry is in the window when `createdAtMs > nowMs - windowMs`: one exactly `windowMs` old has left it. */
const velocityExceeded = (
  rule: VelocityRule,
  history: DebtorHistory,
  candidate: RiskCandidate,
  nowMs: number,
): boolean => {
  const windowStartMs = nowMs - rule.windowMs
  let count = 1
  let sumMinor = candidate.amountMinor
  for (const entry of history.entries) {
    if (entry.createdAtMs <= windowStartMs) continue
    count++
    if (entry.currency === candidate.currency) sumMinor += entry.amountMinor
  }
  const sumMinorMax = rule.sumMinorMax.get(candidate.currency)
  return (rule.countMax !== null && count > rule.countMax) || (sumMinorMax !== undefined && sumMinor > sumMinorMax)
}

const fires = (rule: RiskRule, history: DebtorHistory, candidate: RiskCandidate, nowMs: number): boolean => {
  switch (rule.kind) {
    case "amount-limit":
      return aboveLimit(rule.amountMinorMax, candidate)
    case "velocity":
      return velocityExceeded(rule, history, candidate, nowMs)
    case "blocked-counterparty":
      return rule.blocked.has(candidate.to)
    case "new-payee":
      return !history.knownPayees.includes(candidate.to) && aboveLimit(rule.amountMinorMax, candidate)
    default: {
      const _exhaustive: never = rule
      return _exhaustive
    }
  }
}

const approved: RiskVerdict = { outcome: "approve" }

/**
 * Judges a candidate against the rules in configuration order. When several fire, a decline beats a
 * review; among rules with the same outcome the first configured names the verdict, so a tenant
 * orders its rules by how it wants them reported. The first decline ends the evaluation.
 */
export const evaluate = (
  rules: ReadonlyArray<RiskRule>,
  history: DebtorHistory,
  candidate: RiskCandidate,
  nowMs: number,
): RiskVerdict => {
  let review: string | null = null
  for (const rule of rules) {
    if (!fires(rule, history, candidate, nowMs)) continue
    if (rule.outcome === "decline") return { outcome: "decline", rule: rule.id, reason: "RISK_DECLINED" }
    review ??= rule.id
  }
  return review === null ? approved : { outcome: "review", rule: review }
}

/** Bounds on a tenant's configuration, so that evaluation stays a short loop on the payment path. */
export const riskRulesMax = 64
export const blockedAccountsMax = 100_000
/** A velocity window is at most a day, and its count at most what an account's history keeps. */
export const velocityWindowMsMax = 24 * 60 * 60 * 1000
export const velocityCountMax = 256

/** A configuration problem, with the path of the offending field (`rules[2].countMax`). */
export interface RiskConfigError {
  readonly _tag: "RiskConfigError"
  readonly path: string
  readonly message: string
}

/** Thrown only inside `parseRules`, which turns it into a value, so each field check is one line. */
class FieldProblem {
  constructor(
    readonly path: string,
    readonly problem: string,
  ) {}
}

const fail: (path: string, problem: string) => never = (path, problem) => {
  throw new FieldProblem(path, problem)
}

type Fields = Readonly<Record<string, unknown>>

/** The fields each kind accepts: an unknown one (a misspelt `countMax`) would silently disable a rule. */
const fieldsOfKind: Readonly<Record<RiskRule["kind"], ReadonlyArray<string>>> = {
  "amount-limit": ["id", "kind", "outcome", "amountMax"],
  velocity: ["id", "kind", "outcome", "windowMs", "countMax", "sumMax"],
  "blocked-counterparty": ["id", "kind", "outcome", "accounts"],
  "new-payee": ["id", "kind", "outcome", "amountMax"],
}
const kinds = Object.keys(fieldsOfKind) as ReadonlyArray<RiskRule["kind"]>

const objectAt = (value: unknown, path: string): Fields =>
  typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Fields)
    : fail(path, "must be an object")

const positiveIntegerAt = (value: unknown, path: string): number =>
  typeof value === "number" && Number.isSafeInteger(value) && value > 0
    ? value
    : fail(path, "must be a positive integer")

const outcomeAt = (value: unknown, path: string): RuleOutcome =>
  value === "review" || value === "decline" ? value : fail(path, 'must be "review" or "decline"')

/** Limits per currency, as decimal strings of major units (`{ "USD": "1000.00" }`), at least one. */
const amountsAt = (value: unknown, path: string): ReadonlyMap<Currency, bigint> => {
  const limits = new Map<Currency, bigint>()
  for (const [code, text] of Object.entries(objectAt(value, path))) {
    if (!isCurrency(code)) fail(`${path}.${code}`, "is not an ISO 4217 currency")
    const minor = typeof text === "string" ? parseDecimal(text, code, false) : "MALFORMED"
    if (typeof minor !== "bigint") fail(`${path}.${code}`, `must be a non-negative decimal string (${minor})`)
    limits.set(code, minor)
  }
  return limits.size > 0 ? limits : fail(path, "must name at least one currency")
}

const blockedAt = (value: unknown, path: string): ReadonlySet<AccountId> => {
  if (!Array.isArray(value)) fail(path, "must be a list of account ids")
  if (value.length > blockedAccountsMax) fail(path, `must have at most ${blockedAccountsMax} accounts`)
  for (const [index, id] of value.entries())
    if (!isIdText(id)) fail(`${path}[${index}]`, "must be an account id of 1 to 128 characters")
  return new Set(value as ReadonlyArray<AccountId>)
}

const velocityAt = (fields: Fields, id: string, path: string): VelocityRule => {
  const windowMs = positiveIntegerAt(fields.windowMs, `${path}.windowMs`)
  if (windowMs > velocityWindowMsMax) fail(`${path}.windowMs`, `must be at most ${velocityWindowMsMax} (a day)`)
  const countMax = fields.countMax === undefined ? null : positiveIntegerAt(fields.countMax, `${path}.countMax`)
  if (countMax !== null && countMax > velocityCountMax) fail(`${path}.countMax`, `must be at most ${velocityCountMax}`)
  const sumMinorMax = fields.sumMax === undefined ? new Map() : amountsAt(fields.sumMax, `${path}.sumMax`)
  if (countMax === null && sumMinorMax.size === 0) fail(path, "a velocity rule needs countMax or sumMax")
  return {
    kind: "velocity",
    id,
    outcome: outcomeAt(fields.outcome, `${path}.outcome`),
    windowMs,
    countMax,
    sumMinorMax,
  }
}

const ruleAt = (value: unknown, path: string): RiskRule => {
  const fields = objectAt(value, path)
  const kind =
    kinds.find((known) => known === fields.kind) ?? fail(`${path}.kind`, `must be one of ${kinds.join(", ")}`)
  for (const name of Object.keys(fields))
    if (!fieldsOfKind[kind].includes(name)) fail(`${path}.${name}`, `is not a field of kind ${kind}`)
  const id = isIdText(fields.id) ? fields.id : fail(`${path}.id`, "must be a string of 1 to 128 characters")
  switch (kind) {
    case "amount-limit":
    case "new-payee":
      return {
        kind,
        id,
        outcome: outcomeAt(fields.outcome, `${path}.outcome`),
        amountMinorMax: amountsAt(fields.amountMax, `${path}.amountMax`),
      }
    case "velocity":
      return velocityAt(fields, id, path)
    case "blocked-counterparty":
      if (fields.outcome !== undefined && fields.outcome !== "decline")
        fail(`${path}.outcome`, "must be decline: a blocked counterparty is never paid")
      return { kind, id, outcome: "decline", blocked: blockedAt(fields.accounts, `${path}.accounts`) }
    default: {
      const _exhaustive: never = kind
      return _exhaustive
    }
  }
}

const rulesAt = (value: unknown): ReadonlyArray<RiskRule> => {
  if (!Array.isArray(value)) fail("rules", "must be a list")
  if (value.length > riskRulesMax) fail("rules", `must have at most ${riskRulesMax} rules`)
  const rules = value.map((rule, index) => ruleAt(rule, `rules[${index}]`))
  rules.forEach((rule, index) => {
    const first = rules.findIndex((other) => other.id === rule.id)
    if (first !== index) fail(`rules[${index}].id`, `repeats the id of rules[${first}]`)
  })
  return rules
}

/** Validates a tenant's rule list (JSON), converting every limit to minor units of its currency. */
export const parseRules = (value: unknown): ReadonlyArray<RiskRule> | RiskConfigError => {
  try {
    return rulesAt(value)
  } catch (error) {
    if (!(error instanceof FieldProblem)) throw error
    return { _tag: "RiskConfigError", path: error.path, message: `${error.path}: ${error.problem}` }
  }
}

/** A tenant's payment limits: `{ "paymentMax": { "USD": "10000.00" }, "dailyVolumeMax": { ... } }`, each optional. */
export interface ParsedLimits {
  readonly paymentMaxMinor: ReadonlyMap<Currency, bigint>
  readonly dailyVolumeMaxMinor: ReadonlyMap<Currency, bigint>
}

export const parseLimits = (value: unknown): ParsedLimits | RiskConfigError => {
  try {
    const fields = objectAt(value, "limits")
    for (const name of Object.keys(fields))
      if (name !== "paymentMax" && name !== "dailyVolumeMax") fail(`limits.${name}`, "is not a limit")
    return {
      paymentMaxMinor: fields.paymentMax === undefined ? new Map() : amountsAt(fields.paymentMax, "limits.paymentMax"),
      dailyVolumeMaxMinor:
        fields.dailyVolumeMax === undefined ? new Map() : amountsAt(fields.dailyVolumeMax, "limits.dailyVolumeMax"),
    }
  } catch (error) {
    if (!(error instanceof FieldProblem)) throw error
    return { _tag: "RiskConfigError", path: error.path, message: `${error.path}: ${error.problem}` }
  }
}

export const isRiskConfigError = (value: unknown): value is RiskConfigError =>
  typeof value === "object" && value !== null && (value as { _tag?: unknown })._tag === "RiskConfigError"
