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

/**
 * One debtor's history, mutated in place by `recordPayment`: it is the actor's derived state (like
 * the ledger's maps), and copying up to `historyEntriesMax` entries and `knownPayeesMax` payees on
 * every payment would cost more than the rules do. Determinism is kept by the inputs alone.
 */
export interface DebtorHistory {
  /** Recorded payments in the order recorded, oldest first. */
  readonly entries: Array<HistoryEntry>
  /** Payees of recorded payments, least recently paid first (a Set iterates in insertion order). */
  readonly knownPayees: Set<AccountId>
}

/** What `evaluate` reads; it never changes a history. */
export interface DebtorHistoryView {
  readonly entries: ReadonlyArray<HistoryEntry>
  readonly knownPayees: ReadonlySet<AccountId>
}

export interface HistoryBounds {
  /** `historyWindowMs(rules)`: entries older than the longest velocity window are dropped. */
  readonly historyWindowMs: number
  /** At least the largest `countMax`, or a velocity count can never reach it; sums undercount when full. */
  readonly historyEntriesMax: number
  readonly knownPayeesMax: number
}

/** Payments that took effect on the debtor (debited, pending or settled) count; declined ones never do. */
export type RecordedStatus = Exclude<PaymentStatus, "declined">
export type RecordedPayment = Pick<Payment, "createdAtMs" | "amountMinor" | "currency" | "to"> & {
  readonly status: RecordedStatus
}

export const isRecorded = (payment: Payment): payment is Payment & { readonly status: RecordedStatus } =>
  payment.status !== "declined"

export const emptyHistory = (): DebtorHistory => ({ entries: [], knownPayees: new Set() })

/**
 * Records a payment once, when its debit is durable (TransferDebited), never again when a pending one
 * settles; a later reversal leaves it counted, as the attempt still moved money. `nowMs` must be the
 * event's timestamp, never the wall clock, so that a replay prunes exactly as the live run did.
 */
export const recordPayment = (
  history: DebtorHistory,
  payment: RecordedPayment,
  nowMs: number,
  bounds: HistoryBounds,
): void => {
  invariant((payment.status as PaymentStatus) !== "declined", "a declined payment is recorded in risk history")
  invariant(payment.amountMinor > 0n, "a payment with a non-positive amount is recorded in risk history")
  const { entries, knownPayees } = history
  const { createdAtMs, amountMinor, currency, to } = payment
  entries.push({ createdAtMs, amountMinor, currency, to })
  // An entry this old is outside every window. Entries arrive in time order (only a clock stepping
  // back breaks it), so only the front ages out; `evaluate` filters by time anyway, so a stale entry
  // behind a newer one costs a slot, never a wrong answer. shift moves at most historyEntriesMax slots.
  const expiredAtMs = nowMs - bounds.historyWindowMs
  while (
    entries.length > bounds.historyEntriesMax ||
    (entries[0] !== undefined && entries[0].createdAtMs <= expiredAtMs)
  )
    entries.shift()
  knownPayees.delete(to)
  knownPayees.add(to)
  for (const payee of knownPayees) {
    if (knownPayees.size <= bounds.knownPayeesMax) break
    knownPayees.delete(payee)
  }
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
  history: DebtorHistoryView,
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

const fires = (rule: RiskRule, history: DebtorHistoryView, candidate: RiskCandidate, nowMs: number): boolean => {
  switch (rule.kind) {
    case "amount-limit":
      return aboveLimit(rule.amountMinorMax, candidate)
    case "velocity":
      return velocityExceeded(rule, history, candidate, nowMs)
    case "blocked-counterparty":
      return rule.blocked.has(candidate.to)
    case "new-payee":
      return !history.knownPayees.has(candidate.to) && aboveLimit(rule.amountMinorMax, candidate)
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
  history: DebtorHistoryView,
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
  const countMax = fields.countMax === undefined ? null : positiveIntegerAt(fields.countMax, `${path}.countMax`)
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

export const isRiskConfigError = (value: ReadonlyArray<RiskRule> | RiskConfigError): value is RiskConfigError =>
  !Array.isArray(value)
