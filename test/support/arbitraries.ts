/**
 * fast-check arbitraries for the pure core: commands over a small universe (two tenants, a handful
 * of accounts, JPY/USD/BHD, idempotency keys that repeat) so that idempotency, currency mismatches,
 * overdrafts and cross-shard sagas are hit often, and a scenario driver that runs generated steps
 * through decide → evolve on one Ledger while keeping an independent model of what should happen.
 *
 * The universe deliberately holds ids that contain NUL, the separator the ledger's keys use, so that
 * a key encoding that is not injective shows up as two entries sharing one key.
 */
import fc from "fast-check"
import type { Command, Deposit, OpenAccount, Transfer } from "../../core/commands.ts"
import { type Decision, decide } from "../../core/decide.ts"
import { isRejection, type Rejection } from "../../core/errors.ts"
import type { DeclineReason, Event } from "../../core/events.ts"
import { applyEvents } from "../../core/evolve.ts"
import type { AccountId, DepositId, PaymentId, TenantId } from "../../core/ids.ts"
import { type Entity, entityKey, Ledger } from "../../core/ledger.ts"
import type { Currency } from "../../core/money.ts"
import { defaultLedgerPolicy } from "../../core/policy.ts"

/** The policy scenarios decide with: the default window, far longer than any scenario. */
export const scenarioPolicy = defaultLedgerPolicy

/** A decision as the driver records it: the events of an accepted one, or its rejection. */
export const eventsOrRejection = (decision: Decision): Rejection | ReadonlyArray<Event> =>
  isRejection(decision) ? decision : decision.events

export const tenantIds: ReadonlyArray<TenantId> = ["tenant-a", "tenant-b"].map((id) => id as TenantId)
/** `x` and `x\0p-1` make `(x, "p-1\0p-2")` and `(x\0p-1, "p-2")` look alike to a NUL-joined key. */
export const accountIds: ReadonlyArray<AccountId> = ["acc-1", "acc-2", "acc-3", "acc-4", "x", "x\u0000p-1"].map(
  (id) => id as AccountId,
)
export const paymentIds: ReadonlyArray<PaymentId> = ["p-1", "p-2", "p-3", "p-1\u0000p-2"].map((id) => id as PaymentId)
export const depositIds: ReadonlyArray<DepositId> = ["d-1", "d-2", "d-3"].map((id) => id as DepositId)
export const currencies: ReadonlyArray<Currency> = ["USD", "JPY", "BHD"].map((code) => code as Currency)

/** Mostly the first tenant, so transfers often find both accounts open; sometimes the other. */
export const tenantArbitrary: fc.Arbitrary<TenantId> = fc.oneof(
  { arbitrary: fc.constant(tenantIds[0] as TenantId), weight: 3 },
  { arbitrary: fc.constant(tenantIds[1] as TenantId), weight: 1 },
)
export const accountArbitrary = fc.constantFrom(...accountIds)
export const currencyArbitrary = fc.constantFrom(...currencies)

/** Positive minor amounts: mostly small so transfers are paid, sometimes past 2^53 and up to 10^21. */
export const amountArbitrary: fc.Arbitrary<bigint> = fc.oneof(
  { arbitrary: fc.bigInt(1n, 5_000n), weight: 6 },
  { arbitrary: fc.bigInt(1n, 10n ** 12n), weight: 2 },
  { arbitrary: fc.bigInt(2n ** 53n - 2n, 2n ** 53n + 2n), weight: 1 },
  { arbitrary: fc.bigInt(2n ** 53n, 10n ** 21n - 1n), weight: 1 },
)

/** Account floors: none, a small or a huge overdraft (never positive: accounts open at zero). */
export const floorArbitrary: fc.Arbitrary<bigint> = fc.oneof(
  { arbitrary: fc.constant(0n), weight: 3 },
  { arbitrary: fc.bigInt(-10_000n, 0n), weight: 2 },
  { arbitrary: fc.bigInt(-(10n ** 21n), -(2n ** 53n)), weight: 1 },
)

/**
 * A currency choice: `"own"` resolves, when the step runs, to the currency of the account the
 * command is about (so most deposits and transfers are valid); a code is used as it is.
 */
export type CurrencyChoice = Currency | "own"
const currencyChoiceArbitrary: fc.Arbitrary<CurrencyChoice> = fc.oneof(
  { arbitrary: fc.constant("own" as const), weight: 5 },
  { arbitrary: currencyArbitrary, weight: 1 },
)

export type Step =
  | {
      readonly _tag: "Open"
      readonly tenantId: TenantId
      readonly accountId: AccountId
      readonly currency: Currency
      readonly floorMinor: bigint
    }
  | {
      readonly _tag: "Deposit"
      readonly tenantId: TenantId
      readonly accountId: AccountId
      readonly depositId: DepositId
      readonly amountMinor: bigint
      readonly currency: CurrencyChoice
    }
  | {
      readonly _tag: "Transfer"
      readonly tenantId: TenantId
      readonly paymentId: PaymentId
      readonly from: AccountId
      readonly to: AccountId
      readonly amountMinor: bigint
      readonly currency: CurrencyChoice
      readonly creditorLocal: boolean
    }
  /** Delivers the credit of the `pick`-th eligible cross-shard payment (again, if already applied). */
  | { readonly _tag: "DeliverCredit"; readonly pick: number }
  /** Settles or reverses the `pick`-th saga whose credit was answered (again, if already ended). */
  | { readonly _tag: "EndSaga"; readonly pick: number }
  /** Re-submits the `pick`-th earlier client command, unchanged or with one field changed. */
  | { readonly _tag: "Resubmit"; readonly pick: number; readonly change: "none" | "amount" | "to" | "currency" }

const openStep = fc.record({
  _tag: fc.constant("Open" as const),
  tenantId: tenantArbitrary,
  accountId: accountArbitrary,
  // Mostly one currency, so that credits between accounts usually match.
  currency: fc.oneof({ arbitrary: fc.constant(currencies[0] as Currency), weight: 3 }, currencyArbitrary),
  floorMinor: floorArbitrary,
})
const depositStep = fc.record({
  _tag: fc.constant("Deposit" as const),
  tenantId: tenantArbitrary,
  accountId: accountArbitrary,
  depositId: fc.constantFrom(...depositIds),
  amountMinor: amountArbitrary,
  currency: currencyChoiceArbitrary,
})
const transferStep = fc.record({
  _tag: fc.constant("Transfer" as const),
  tenantId: tenantArbitrary,
  paymentId: fc.constantFrom(...paymentIds),
  from: accountArbitrary,
  to: accountArbitrary,
  amountMinor: amountArbitrary,
  currency: currencyChoiceArbitrary,
  creditorLocal: fc.boolean(),
})
const pick = fc.nat({ max: 1_000 })

export const stepArbitrary: fc.Arbitrary<Step> = fc.oneof(
  { arbitrary: openStep, weight: 3 },
  { arbitrary: depositStep, weight: 4 },
  { arbitrary: transferStep, weight: 6 },
  { arbitrary: fc.record({ _tag: fc.constant("DeliverCredit" as const), pick }), weight: 3 },
  { arbitrary: fc.record({ _tag: fc.constant("EndSaga" as const), pick }), weight: 3 },
  {
    arbitrary: fc.record({
      _tag: fc.constant("Resubmit" as const),
      pick,
      change: fc.constantFrom("none" as const, "none" as const, "amount" as const, "to" as const, "currency" as const),
    }),
    weight: 3,
  },
)

/**
 * A scenario: some accounts opened and funded first (otherwise most commands would meet unknown
 * accounts), then any mix of steps, long enough for sagas to interleave with other commands.
 */
export const stepsArbitrary = (lengthMax = 80): fc.Arbitrary<ReadonlyArray<Step>> =>
  fc
    .tuple(
      fc.array(openStep, { minLength: 3, maxLength: 10 }),
      fc.array(depositStep, { minLength: 1, maxLength: 8 }),
      fc.array(stepArbitrary, { minLength: 1, maxLength: lengthMax, size: "max" }),
    )
    .map(([opens, deposits, rest]) => [...opens, ...deposits, ...rest])

/** A command the driver is about to run; a resubmission names the earlier command it repeats. */
export interface Submission {
  readonly command: Command
  readonly resubmitOf?: { readonly original: Decided; readonly changed: boolean }
}

/** A command the driver ran and what `decide` answered. */
export interface Decided extends Submission {
  readonly decision: Rejection | ReadonlyArray<Event>
}

/** A cross-shard payment as the saga driver (the model) knows it. */
export interface SagaModel {
  readonly debit: Event & { readonly _tag: "TransferDebited" }
  credit: "unanswered" | "applied" | { readonly refused: DeclineReason }
  ended: boolean
}

/** Everything a scenario produced: the ledger, the journal records in order, and the model. */
export interface Scenario {
  readonly ledger: Ledger
  /** Records in journal order (one per command that emitted events). */
  readonly records: Array<ReadonlyArray<Event>>
  /** Entities each record changed, parallel to `records`. */
  readonly changedKeys: Array<ReadonlyArray<string>>
  readonly decided: Array<Decided>
  /** Sagas by model key (JSON of tenant, debtor, payment: injective by construction). */
  readonly sagas: Map<string, SagaModel>
}

/** Injective model key of an idempotency key or payment: JSON of its parts. */
export const modelKey = (...parts: ReadonlyArray<string>): string => JSON.stringify(parts)

/** Checks run by the driver; they throw (and so fail the property) on a violation. */
export interface ScenarioHooks {
  /** After `decide`, before its events are applied: the ledger still shows the state it decided on. */
  readonly afterDecide?: (scenario: Scenario, decided: Decided) => void
  /** After the events are applied and the model is updated. */
  readonly afterStep?: (scenario: Scenario) => void
}

const metaOf = (tenantId: TenantId, index: number) => ({
  tenantId,
  correlationId: `corr-${index}`,
  timestampMs: 1_700_000_000_000 + index,
})

const resolveCurrency = (ledger: Ledger, tenantId: TenantId, accountId: AccountId, choice: CurrencyChoice): Currency =>
  choice === "own" ? (ledger.account(tenantId, accountId)?.currency ?? ("USD" as Currency)) : choice

const otherCurrency = (currency: Currency): Currency => {
  const index = currencies.indexOf(currency)
  return currencies[(index + 1) % currencies.length] as Currency
}

const otherAccount = (accountId: AccountId): AccountId => {
  const index = accountIds.indexOf(accountId)
  return accountIds[(index + 1) % accountIds.length] as AccountId
}

/** The changed version of a client command for an IDEMPOTENCY_CONFLICT probe, or undefined if none applies. */
const changedCommand = (command: Command, change: "amount" | "to" | "currency"): Command | undefined => {
  if (command._tag === "Deposit") {
    if (change === "amount") return { ...command, amountMinor: command.amountMinor + 1n }
    if (change === "currency") return { ...command, currency: otherCurrency(command.currency) }
    return undefined
  }
  if (command._tag === "Transfer") {
    if (change === "amount") return { ...command, amountMinor: command.amountMinor + 1n }
    if (change === "currency") return { ...command, currency: otherCurrency(command.currency) }
    return { ...command, to: otherAccount(command.to) }
  }
  return undefined
}

const clientCommand = (ledger: Ledger, step: Step, index: number): Command | undefined => {
  switch (step._tag) {
    case "Open": {
      const { accountId, currency, floorMinor } = step
      const command: OpenAccount = {
        _tag: "OpenAccount",
        ...metaOf(step.tenantId, index),
        accountId,
        currency,
        floorMinor,
      }
      return command
    }
    case "Deposit": {
      const currency = resolveCurrency(ledger, step.tenantId, step.accountId, step.currency)
      const command: Deposit = { ...step, ...metaOf(step.tenantId, index), _tag: "Deposit", currency }
      return command
    }
    case "Transfer": {
      const currency = resolveCurrency(ledger, step.tenantId, step.from, step.currency)
      const command: Transfer = { ...step, ...metaOf(step.tenantId, index), _tag: "Transfer", currency }
      return command
    }
    default:
      return undefined
  }
}

const sagaCommand = (scenario: Scenario, step: Step, index: number): Command | undefined => {
  const sagas = [...scenario.sagas.values()]
  if (step._tag === "DeliverCredit") {
    // Any saga may see its credit delivered again, even after it ended: the creditor keeps a record
    // of what it did (applied or refused), so a redelivery is never applied a second time.
    const saga = sagas[step.pick % Math.max(sagas.length, 1)]
    if (saga === undefined) return undefined
    const { debit } = saga
    return {
      _tag: "ApplyCredit",
      ...metaOf(debit.tenantId, index),
      paymentId: debit.paymentId as PaymentId,
      from: debit.accountId,
      to: debit.to,
      amountMinor: debit.amountMinor,
      currency: debit.currency,
      paymentCreatedAtMs: debit.timestampMs,
    }
  }
  if (step._tag === "EndSaga") {
    const eligible = sagas.filter((saga) => saga.credit !== "unanswered")
    const saga = eligible[step.pick % Math.max(eligible.length, 1)]
    if (saga === undefined) return undefined
    const base = { ...metaOf(saga.debit.tenantId, index), paymentId: saga.debit.paymentId as PaymentId }
    const from = saga.debit.accountId
    if (typeof saga.credit === "string") return { _tag: "SettleTransfer", ...base, from }
    return { _tag: "ReverseTransfer", ...base, from, reason: saga.credit.refused }
  }
  return undefined
}

const clientTags: ReadonlySet<Command["_tag"]> = new Set(["OpenAccount", "Deposit", "Transfer"])

const resubmission = (scenario: Scenario, step: Step & { _tag: "Resubmit" }): Submission | undefined => {
  const clientDecided = scenario.decided.filter(
    (decided) => decided.resubmitOf === undefined && clientTags.has(decided.command._tag),
  )
  const original = clientDecided[step.pick % Math.max(clientDecided.length, 1)]
  if (original === undefined) return undefined
  const changed = step.change === "none" ? undefined : changedCommand(original.command, step.change)
  const command = changed ?? original.command
  return { command, resubmitOf: { original, changed: changed !== undefined } }
}

/** Updates the saga model from a decided command. */
const track = (scenario: Scenario, decided: Decided): void => {
  const { command, decision } = decided
  if (command._tag === "ApplyCredit") {
    const saga = scenario.sagas.get(modelKey(command.tenantId, command.from, command.paymentId))
    if (saga === undefined) return
    if (isRejection(decision)) return
    for (const event of decision) {
      if (event._tag === "TransferCredited") saga.credit = "applied"
      if (event._tag === "CreditRefused") saga.credit = { refused: event.reason }
    }
    return
  }
  if (command._tag === "SettleTransfer" || command._tag === "ReverseTransfer") {
    const saga = scenario.sagas.get(modelKey(command.tenantId, command.from, command.paymentId))
    if (saga !== undefined) saga.ended = true
    return
  }
  if (isRejection(decision)) return
  for (const event of decision) {
    if (event._tag === "TransferDebited" && !event.settled) {
      const key = modelKey(event.tenantId, event.accountId, event.paymentId ?? "")
      scenario.sagas.set(key, { debit: event, credit: "unanswered", ended: false })
    }
  }
}

const submissionOf = (scenario: Scenario, step: Step, index: number): Submission | undefined => {
  if (step._tag === "Resubmit") return resubmission(scenario, step)
  const command = clientCommand(scenario.ledger, step, index) ?? sagaCommand(scenario, step, index)
  return command === undefined ? undefined : { command }
}

/**
 * Runs the steps through decide → evolve on one Ledger, which holds every account, as if all shards
 * were one: saga steps are delivered between other commands, possibly more than once.
 */
export const runScenario = (steps: ReadonlyArray<Step>, hooks: ScenarioHooks = {}): Scenario => {
  const scenario: Scenario = {
    ledger: new Ledger(),
    records: [],
    changedKeys: [],
    decided: [],
    sagas: new Map(),
  }
  steps.forEach((step, index) => {
    const submission = submissionOf(scenario, step, index)
    if (submission === undefined) return
    const decision = eventsOrRejection(decide(scenario.ledger, submission.command, scenarioPolicy))
    const decided: Decided = { ...submission, decision }
    hooks.afterDecide?.(scenario, decided)
    if (!isRejection(decision) && decision.length > 0) {
      const changed = applyEvents(scenario.ledger, decision)
      scenario.records.push(decision)
      scenario.changedKeys.push(changed.map(entityKey))
    }
    scenario.decided.push(decided)
    track(scenario, decided)
    hooks.afterStep?.(scenario)
  })
  return scenario
}

/** A fresh ledger with the given records applied: what a full journal replay rebuilds. */
export const replay = (records: ReadonlyArray<ReadonlyArray<Event>>): Ledger => {
  const ledger = new Ledger()
  for (const record of records) applyEvents(ledger, record)
  return ledger
}

/** The entities of a ledger in a stable order, for deep comparison. */
export const entitiesOf = (ledger: Ledger): Array<Entity> =>
  [...ledger.entities()].sort((left, right) => (entityKey(left) < entityKey(right) ? -1 : 1))
