/**
 * Round trips of the two stored encodings: journal records (events) and snapshot entities. Amounts
 * must come back as the exact same bigint, far past 2^53 and negative, and ids with any characters
 * must survive; a stored amount that is not a decimal string is refused when read.
 */
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { decodeEntity, encodeEntity, encodeEntityBySchema } from "../../core/entity-codec.ts"
import {
  decodeJournalRecord,
  type Event,
  encodeJournalRecord,
  encodeJournalRecordBySchema,
  type JournalRecord,
} from "../../core/events.ts"
import type { AccountId, DepositId, PaymentId, TenantId } from "../../core/ids.ts"
import type { Entity } from "../../core/ledger.ts"
import type { Currency } from "../../core/money.ts"
import { currencies, entitiesOf, runScenario, stepsArbitrary } from "../support/arbitraries.ts"

/** Ids of 1 to 128 characters of any kind: NUL, quotes, backslashes, astral and lone surrogates. */
const idText = fc.oneof(
  fc.string({ minLength: 1, maxLength: 128 }),
  fc.string({ unit: "binary", minLength: 1, maxLength: 128 }),
  fc.constantFrom("x\u0000p-1", '"quoted"\\', "😀", "\ud800", "__proto__"),
)
const tenantId = idText.map((text) => text as TenantId)
const accountId = idText.map((text) => text as AccountId)
const paymentId = idText.map((text) => text as PaymentId)
const currency = fc.constantFrom(...currencies)
/** Signed amounts over the whole range a ledger can hold, with the precision edges of `number`. */
const minor = fc.oneof(
  fc.bigInt(-(10n ** 24n), 10n ** 24n),
  fc.constantFrom(0n, 1n, -1n, 2n ** 53n, 2n ** 53n + 1n, -(2n ** 53n) - 1n, 2n ** 64n + 1n),
)
const positiveMinor = minor.map((value) => (value < 0n ? -value : value) + 1n)
const reason = fc.constantFrom(
  "INSUFFICIENT_FUNDS" as const,
  "UNKNOWN_ACCOUNT" as const,
  "CURRENCY_MISMATCH" as const,
  "EXPIRED" as const,
)

const envelope = {
  schemaVersion: fc.constant(1),
  tenantId,
  accountId,
  paymentId: fc.option(idText, { nil: null }),
  correlationId: fc.string({ unit: "binary", maxLength: 64 }),
  sequence: fc.integer({ min: 1, max: 2 ** 31 }),
  timestampMs: fc.integer({ min: 0, max: 2 ** 47 }),
}

const eventArbitrary: fc.Arbitrary<Event> = fc.oneof(
  fc.record({ _tag: fc.constant("AccountOpened" as const), ...envelope, currency, floorMinor: minor }),
  fc.record({ _tag: fc.constant("FundsDeposited" as const), ...envelope, amountMinor: positiveMinor, currency }),
  fc.record({
    _tag: fc.constant("TransferDebited" as const),
    ...envelope,
    to: accountId,
    amountMinor: positiveMinor,
    currency,
    settled: fc.boolean(),
  }),
  fc.record({
    _tag: fc.constant("TransferDeclined" as const),
    ...envelope,
    to: accountId,
    amountMinor: positiveMinor,
    currency,
    reason,
  }),
  fc.record({
    _tag: fc.constant("TransferCredited" as const),
    ...envelope,
    from: accountId,
    amountMinor: positiveMinor,
    currency,
    delivered: fc.boolean(),
  }),
  fc.record({
    _tag: fc.constant("CreditRefused" as const),
    ...envelope,
    from: accountId,
    amountMinor: positiveMinor,
    currency,
    reason,
  }),
  fc.record({ _tag: fc.constant("TransferSettled" as const), ...envelope }),
  fc.record({ _tag: fc.constant("TransferReversed" as const), ...envelope, reason }),
  fc.record({
    _tag: fc.constant("PaymentAuthorized" as const),
    ...envelope,
    to: accountId,
    amountMinor: positiveMinor,
    currency,
    holdExpiresAtMs: fc.integer({ min: 0, max: 2 ** 47 }),
  }),
  fc.record({
    _tag: fc.constant("PaymentCaptured" as const),
    ...envelope,
    captureId: idText,
    amountMinor: positiveMinor,
    settled: fc.boolean(),
  }),
  fc.record({ _tag: fc.constant("AuthorizationVoided" as const), ...envelope }),
  fc.record({ _tag: fc.constant("AuthorizationExpired" as const), ...envelope }),
  fc.record({
    _tag: fc.constant("RefundDebited" as const),
    ...envelope,
    from: accountId,
    refundId: idText,
    amountMinor: positiveMinor,
    currency,
  }),
  fc.record({
    _tag: fc.constant("PaymentRefunded" as const),
    ...envelope,
    refundId: idText,
    amountMinor: positiveMinor,
    to: accountId,
    currency,
    authorizedAmountMinor: positiveMinor,
    capturedAmountMinor: positiveMinor,
    paymentCreatedAtMs: fc.integer({ min: 0, max: 2 ** 47 }),
    holdExpiresAtMs: fc.option(fc.integer({ min: 0, max: 2 ** 47 }), { nil: null }),
    captureId: fc.option(idText, { nil: null }),
    refunds: fc.array(fc.record({ refundId: idText, amountMinor: positiveMinor }), { maxLength: 3 }),
  }),
)

const entityArbitrary: fc.Arbitrary<Entity> = fc.oneof(
  fc.record({
    kind: fc.constant("account" as const),
    value: fc.record({
      tenantId,
      accountId,
      currency,
      floorMinor: minor,
      balanceMinor: minor,
      heldMinor: minor,
      status: fc.constant("open" as const),
      sequence: fc.integer({ min: 1, max: 2 ** 31 }),
    }),
  }),
  fc.record({
    kind: fc.constant("payment" as const),
    value: fc.record({
      tenantId,
      paymentId,
      from: accountId,
      to: accountId,
      amountMinor: positiveMinor,
      currency,
      status: fc.constantFrom(
        "partially_refunded" as const,
        "refunded" as const,
        "authorized" as const,
        "pending" as const,
        "settled" as const,
        "declined" as const,
        "voided" as const,
        "expired" as const,
      ),
      reason: fc.option(reason, { nil: null }),
      createdAtMs: fc.integer({ min: 0, max: 2 ** 47 }),
      capturedAmountMinor: minor,
      holdExpiresAtMs: fc.option(fc.integer({ min: 0, max: 2 ** 47 }), { nil: null }),
      captureId: fc.option(idText, { nil: null }),
      updatedAtMs: fc.integer({ min: 0, max: 2 ** 47 }),
      refundedAmountMinor: minor,
      refunds: fc.array(fc.record({ refundId: idText, amountMinor: positiveMinor }), { maxLength: 3 }),
    }),
  }),
  fc.record({
    kind: fc.constant("deposit" as const),
    value: fc.record({
      tenantId,
      accountId,
      depositId: idText.map((text) => text as DepositId),
      amountMinor: positiveMinor,
      currency,
      createdAtMs: fc.integer({ min: 0, max: 2 ** 47 }),
    }),
  }),
  fc.record({
    kind: fc.constant("credit" as const),
    value: fc.record({
      tenantId,
      paymentId,
      from: accountId,
      to: accountId,
      amountMinor: positiveMinor,
      outcome: fc.constantFrom("applied" as const, "refused" as const),
      reason: fc.option(reason, { nil: null }),
      createdAtMs: fc.integer({ min: 0, max: 2 ** 47 }),
    }),
  }),
)

describe("journal record codec", () => {
  it("given any record of events, when encoded and decoded, then the same record comes back, bigints exact", () => {
    fc.assert(
      fc.property(fc.array(eventArbitrary, { minLength: 1, maxLength: 4 }), (events) => {
        const record: JournalRecord = { events }
        const decoded = decodeJournalRecord(encodeJournalRecord(record))
        expect(decoded).toEqual(record)
        decoded.events.forEach((event, index) => {
          if ("amountMinor" in event) expect(event.amountMinor).toBe((events[index] as typeof event).amountMinor)
        })
      }),
      { numRuns: 500 },
    )
  })

  it("given any record of events, when encoded by hand and by the Schema, then the bytes are identical", () => {
    fc.assert(
      fc.property(fc.array(eventArbitrary, { minLength: 1, maxLength: 4 }), (events) => {
        expect(encodeJournalRecord({ events })).toBe(encodeJournalRecordBySchema({ events }))
      }),
      { numRuns: 1000 },
    )
  })

  it("given the records a generated scenario journals, when round-tripped, then replaying them is unchanged", () => {
    fc.assert(
      fc.property(stepsArbitrary(), (steps) => {
        const scenario = runScenario(steps)
        const decoded = scenario.records.map((events) => decodeJournalRecord(encodeJournalRecord({ events })).events)
        expect(decoded).toEqual(scenario.records)
      }),
      { numRuns: 200 },
    )
  })

  it("given a deposit past 2^53, when encoded, then the amount is a decimal string, never a JSON number", () => {
    const event: Event = {
      _tag: "FundsDeposited",
      schemaVersion: 1,
      tenantId: "t" as TenantId,
      accountId: "a" as AccountId,
      paymentId: "d-1",
      correlationId: "c",
      sequence: 2,
      timestampMs: 1,
      amountMinor: 2n ** 53n + 1n,
      currency: "USD" as Currency,
    }
    const stored = JSON.parse(encodeJournalRecord({ events: [event] }))
    expect(stored.events[0].amountMinor).toBe("9007199254740993")
  })

  it.each([
    ["an amount as a JSON number", (event: Record<string, unknown>) => ({ ...event, amountMinor: 5 })],
    ["an amount with decimals", (event: Record<string, unknown>) => ({ ...event, amountMinor: "1.5" })],
    ["an amount that is not a number", (event: Record<string, unknown>) => ({ ...event, amountMinor: "ten" })],
    ["an unknown event", (event: Record<string, unknown>) => ({ ...event, _tag: "FundsStolen" })],
    ["a missing tenant", ({ tenantId: _tenantId, ...event }: Record<string, unknown>) => event],
    ["an empty account id", (event: Record<string, unknown>) => ({ ...event, accountId: "" })],
  ])("given a stored record with %s, when decoded, then it is refused", (_case, damage) => {
    const valid = {
      _tag: "FundsDeposited",
      schemaVersion: 1,
      tenantId: "t",
      accountId: "a",
      paymentId: "d-1",
      correlationId: "c",
      sequence: 2,
      timestampMs: 1,
      amountMinor: "5",
      currency: "USD",
    }
    expect(() => decodeJournalRecord(JSON.stringify({ events: [valid] }))).not.toThrow()
    expect(() => decodeJournalRecord(JSON.stringify({ events: [damage(valid)] }))).toThrow()
  })
})

describe("entity codec", () => {
  it("given any entity, when encoded and decoded, then the same entity comes back, bigints exact", () => {
    fc.assert(
      fc.property(entityArbitrary, (entity) => {
        const decoded = decodeEntity(encodeEntity(entity))
        expect(decoded).toEqual(entity)
        for (const field of ["floorMinor", "balanceMinor", "amountMinor"] as const) {
          if (field in entity.value) {
            const value = (decoded.value as unknown as Record<string, unknown>)[field]
            expect(typeof value).toBe("bigint")
          }
        }
      }),
      { numRuns: 1000 },
    )
  })

  it("given any entity, when encoded by hand and by the Schema, then the bytes are identical", () => {
    fc.assert(
      fc.property(entityArbitrary, (entity) => {
        expect(encodeEntity(entity)).toBe(encodeEntityBySchema(entity))
      }),
      { numRuns: 1000 },
    )
  })

  it("given the entities of a generated ledger, when round-tripped, then the ledger is unchanged", () => {
    fc.assert(
      fc.property(stepsArbitrary(), (steps) => {
        const entities = entitiesOf(runScenario(steps).ledger)
        expect(entities.map((entity) => decodeEntity(encodeEntity(entity)))).toEqual(entities)
      }),
      { numRuns: 200 },
    )
  })

  it("given a stored account whose balance is a JSON number, when decoded, then it is refused", () => {
    const stored = {
      kind: "account",
      value: {
        tenantId: "t",
        accountId: "a",
        currency: "USD",
        floorMinor: "-500",
        balanceMinor: "100",
        heldMinor: "0",
        status: "open",
        sequence: 3,
      },
    }
    expect(decodeEntity(JSON.stringify(stored))).toMatchObject({ value: { floorMinor: -500n, balanceMinor: 100n } })
    expect(() => decodeEntity(JSON.stringify({ ...stored, value: { ...stored.value, balanceMinor: 100 } }))).toThrow()
  })
})
