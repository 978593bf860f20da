/**
 * Properties of the ledger under generated command sequences run through decide → evolve, with
 * cross-shard sagas delivered at random points (possibly twice, also after they ended): money is
 * conserved, no balance goes below its floor, idempotency keys take effect once, payments move only
 * along allowed edges, and a full replay rebuilds the exact same state. (Recovery from snapshot
 * segments plus the journal after them is checked against the runtime in recovery.property.test.ts.)
 */
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { decide } from "../../core/decide.ts"
import { isRejection } from "../../core/errors.ts"
import type { Event } from "../../core/events.ts"
import type { Entity, Ledger, Payment, PaymentStatus } from "../../core/ledger.ts"
import {
  type Decided,
  entitiesOf,
  modelKey,
  replay,
  runScenario,
  type Scenario,
  type ScenarioHooks,
  scenarioPolicy,
  stepsArbitrary,
} from "../support/arbitraries.ts"

const numRuns = 1000

/** What the test knows independently of the ledger: every key that took effect, with its fields. */
interface Model {
  readonly accounts: Set<string>
  readonly deposits: Map<string, string>
  readonly payments: Map<string, string>
  readonly credits: Set<string>
  /** Sum of deposited minor units per tenant and currency. */
  readonly depositedMinor: Map<string, bigint>
}

const newModel = (): Model => ({
  accounts: new Set(),
  deposits: new Map(),
  payments: new Map(),
  credits: new Set(),
  depositedMinor: new Map(),
})

const eventsOf = (decided: Decided): ReadonlyArray<Event> => (isRejection(decided.decision) ? [] : decided.decision)
const codeOf = (decided: Decided): string | undefined =>
  isRejection(decided.decision) ? decided.decision.code : undefined

/** An idempotency key seen before answers with no events, or IDEMPOTENCY_CONFLICT if a field differs. */
const expectKeyedDecision = (decided: Decided, previousFields: string | undefined, fields: string): void => {
  if (previousFields === undefined) {
    expect(codeOf(decided)).not.toBe("IDEMPOTENCY_CONFLICT")
    expect(decided.decision).not.toEqual([])
  } else if (previousFields === fields) {
    expect(decided.decision).toEqual([])
  } else {
    expect(codeOf(decided)).toBe("IDEMPOTENCY_CONFLICT")
  }
}

/** Checks one decision against the model before its events are applied, then records its effects. */
const checkDecision = (model: Model, scenario: Scenario, decided: Decided): void => {
  const { command } = decided
  const events = eventsOf(decided)
  switch (command._tag) {
    case "OpenAccount": {
      const key = modelKey(command.tenantId, command.accountId)
      if (model.accounts.has(key)) expect(codeOf(decided)).toBe("ACCOUNT_EXISTS")
      else expect(events.map((event) => event._tag)).toEqual(["AccountOpened"])
      if (events.length > 0) model.accounts.add(key)
      return
    }
    case "Deposit": {
      const key = modelKey(command.tenantId, command.accountId, command.depositId)
      const fields = modelKey(String(command.amountMinor), command.currency)
      expectKeyedDecision(decided, model.deposits.get(key), fields)
      if (events.length > 0) {
        model.deposits.set(key, fields)
        const total = modelKey(command.tenantId, command.currency)
        model.depositedMinor.set(total, (model.depositedMinor.get(total) ?? 0n) + command.amountMinor)
      }
      return
    }
    case "Transfer": {
      const key = modelKey(command.tenantId, command.from, command.paymentId)
      const fields = modelKey(command.to, String(command.amountMinor), command.currency)
      expectKeyedDecision(decided, model.payments.get(key), fields)
      if (events.length > 0) model.payments.set(key, fields)
      for (const event of events) {
        if (event._tag === "TransferCredited") model.credits.add(modelKey(command.tenantId, command.to, key))
      }
      return
    }
    case "ApplyCredit": {
      // The first delivery records an outcome (applied or refused); every later one changes nothing.
      const key = modelKey(command.tenantId, command.to, modelKey(command.tenantId, command.from, command.paymentId))
      if (model.credits.has(key)) expect(decided.decision).toEqual([])
      else expect(events.map((event) => event._tag)).toHaveLength(1)
      if (events.length > 0) model.credits.add(key)
      return
    }
    case "SettleTransfer":
    case "ReverseTransfer": {
      const saga = scenario.sagas.get(modelKey(command.tenantId, command.from, command.paymentId))
      expect(saga).toBeDefined()
      const expected = command._tag === "SettleTransfer" ? "TransferSettled" : "TransferReversed"
      expect(events.map((event) => event._tag)).toEqual(saga?.ended === true ? [] : [expected])
      return
    }
  }
}

/** A resubmitted command that took effect answers as before: no events, or the conflict if changed. */
const checkResubmission = (decided: Decided): void => {
  const resubmitOf = decided.resubmitOf
  if (resubmitOf === undefined || eventsOf(resubmitOf.original).length === 0) return
  if (resubmitOf.changed) expect(codeOf(decided)).toBe("IDEMPOTENCY_CONFLICT")
  else if (decided.command._tag === "OpenAccount") expect(codeOf(decided)).toBe("ACCOUNT_EXISTS")
  else expect(decided.decision).toEqual([])
}

/** Fails with both totals shown, but only calls `expect` when they differ (it is slow per step). */
const expectSameTotals = (actual: Map<string, bigint>, expected: Map<string, bigint>): void => {
  const keys = new Set([...actual.keys(), ...expected.keys()])
  const differs = [...keys].some((key) => (actual.get(key) ?? 0n) !== (expected.get(key) ?? 0n))
  if (differs) expect(Object.fromEntries(actual)).toEqual(Object.fromEntries(expected))
}

const adder = (totals: Map<string, bigint>) => (key: string, minor: bigint) =>
  totals.set(key, (totals.get(key) ?? 0n) + minor)

/** Per tenant and currency: balances plus money in flight equal deposits, seen from the model. */
const checkConservationByModel = (model: Model, scenario: Scenario): void => {
  const heldMinor = new Map<string, bigint>()
  const add = adder(heldMinor)
  for (const account of scenario.ledger.accounts.values()) {
    add(modelKey(account.tenantId, account.currency), account.balanceMinor)
  }
  for (const saga of scenario.sagas.values()) {
    const returned = saga.ended && typeof saga.credit !== "string"
    if (saga.credit !== "applied" && !returned) {
      add(modelKey(saga.debit.tenantId, saga.debit.currency), saga.debit.amountMinor)
    }
  }
  expectSameTotals(heldMinor, model.depositedMinor)
}

/** The same conservation, computed from the ledger's own entities only. */
const checkConservationByLedger = (ledger: Ledger): void => {
  const heldMinor = new Map<string, bigint>()
  const depositedMinor = new Map<string, bigint>()
  const add = adder(heldMinor)
  for (const account of ledger.accounts.values())
    add(modelKey(account.tenantId, account.currency), account.balanceMinor)
  for (const payment of paymentsOf(ledger)) {
    const credited = ledger.credit(payment.tenantId, payment.to, payment.from, payment.paymentId)?.outcome === "applied"
    if (payment.status === "pending" && !credited)
      add(modelKey(payment.tenantId, payment.currency), payment.amountMinor)
  }
  for (const entry of ledger.entries.values()) {
    if (entry.kind !== "deposit") continue
    adder(depositedMinor)(modelKey(entry.value.tenantId, entry.value.currency), entry.value.amountMinor)
  }
  expectSameTotals(heldMinor, depositedMinor)
}

const paymentsOf = (ledger: Ledger): Array<Payment> =>
  [...ledger.entries.values()].flatMap((entry) => (entry.kind === "payment" ? [entry.value] : []))

const checkFloors = (ledger: Ledger): void => {
  for (const account of ledger.accounts.values()) {
    if (account.balanceMinor < account.floorMinor) expect(account).toEqual("an account at or above its floor")
  }
}

const allowedEdges: ReadonlySet<string> = new Set([
  "pending->pending",
  "pending->settled",
  "pending->declined",
  "settled->settled",
  "declined->declined",
])

/** Payments keep their identity fields and move only along allowed status edges. */
const checkPaymentEdges = (previous: Map<string, Entity & { kind: "payment" }>, ledger: Ledger): void => {
  for (const payment of paymentsOf(ledger)) {
    const key = modelKey(payment.tenantId, payment.from, payment.paymentId)
    const before = previous.get(key)?.value
    if (before !== undefined && before !== payment) {
      expect(allowedEdges.has(`${before.status}->${payment.status}`), `${before.status}->${payment.status}`).toBe(true)
      expect({ ...payment, status: before.status, reason: before.reason, updatedAtMs: before.updatedAtMs }).toEqual(
        before,
      )
      if (before.status === "declined") expect(payment.reason).toBe(before.reason)
    }
    previous.set(key, { kind: "payment", value: payment })
  }
}

/** Hooks that check every invariant after every step of a scenario. */
const invariantHooks = (): ScenarioHooks => {
  const model = newModel()
  const payments = new Map<string, Entity & { kind: "payment" }>()
  return {
    afterDecide: (scenario, decided) => {
      checkResubmission(decided)
      checkDecision(model, scenario, decided)
    },
    afterStep: (scenario) => {
      checkConservationByModel(model, scenario)
      checkConservationByLedger(scenario.ledger)
      checkFloors(scenario.ledger)
      checkPaymentEdges(payments, scenario.ledger)
    },
  }
}

const statusesOf = (ledger: Ledger): Array<PaymentStatus> => paymentsOf(ledger).map((p) => p.status)

describe("ledger under generated command sequences", () => {
  it("conserves money, respects floors and idempotency, and moves payments along allowed edges", () => {
    fc.assert(
      fc.property(stepsArbitrary(), (steps) => {
        runScenario(steps, invariantHooks())
      }),
      { numRuns },
    )
  })

  it("rebuilds identical state when all emitted events are replayed into a fresh ledger", () => {
    fc.assert(
      fc.property(stepsArbitrary(), (steps) => {
        const scenario = runScenario(steps)
        expect(entitiesOf(replay(scenario.records))).toEqual(entitiesOf(scenario.ledger))
      }),
      { numRuns },
    )
  })

  it("never changes the ledger while deciding, and decides the same command the same way twice", () => {
    fc.assert(
      fc.property(stepsArbitrary(), (steps) => {
        const scenario = runScenario(steps)
        const before = entitiesOf(scenario.ledger)
        for (const { command } of scenario.decided) {
          expect(decide(scenario.ledger, command, scenarioPolicy)).toEqual(
            decide(scenario.ledger, command, scenarioPolicy),
          )
        }
        expect(entitiesOf(scenario.ledger)).toEqual(before)
      }),
      { numRuns: 200 },
    )
  })

  it("exercises the interesting paths (guards against a generator that never reaches them)", () => {
    const seen = new Set<string>()
    fc.assert(
      fc.property(stepsArbitrary(), (steps) => {
        const scenario = runScenario(steps)
        for (const decided of scenario.decided) {
          const code = isRejection(decided.decision) ? decided.decision.code : undefined
          seen.add(code ?? `${decided.command._tag}:${eventsOf(decided).length}`)
          for (const event of eventsOf(decided)) seen.add(event._tag)
        }
        for (const status of statusesOf(scenario.ledger)) seen.add(status)
      }),
      { numRuns: 200, seed: 42 },
    )
    for (const expected of [
      "IDEMPOTENCY_CONFLICT",
      "ACCOUNT_EXISTS",
      "CURRENCY_MISMATCH",
      "UNKNOWN_ACCOUNT",
      "TransferDeclined",
      "TransferReversed",
      "TransferSettled",
      "Deposit:0",
      "Transfer:0",
      "ApplyCredit:0",
      "CreditRefused",
      "pending",
    ]) {
      expect(seen).toContain(expected)
    }
  })
})
