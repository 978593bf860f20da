/**
 * Events: the facts the journal keeps, named in the past tense. Each carries the envelope the
 * design requires (schema version, tenant, account, payment, correlation id, per-account sequence,
 * timestamp) and is encoded to JSON with amounts as decimal strings of minor units.
 */
import { Schema } from "effect"
import { AccountId, TenantId } from "./ids.ts"
import type { Currency } from "./money.ts"
import { bookedConversionJson, type PaymentFx, paymentFxJson } from "./payment-fx.ts"

export const eventSchemaVersion = 1

const CurrencyCode = Schema.String as unknown as Schema.Codec<Currency, string>
const Minor = Schema.BigIntFromString

/**
 * Why a transfer that was a valid request was not paid. EXPIRED: its credit could not be delivered
 * to the creditor's shard within the idempotency window, so it was refused there and reversed.
 * RISK_DECLINED: a fraud rule of the tenant declined it (or a reviewer did).
 */
export const DeclineReason = Schema.Literals([
  "INSUFFICIENT_FUNDS",
  "UNKNOWN_ACCOUNT",
  "CURRENCY_MISMATCH",
  "EXPIRED",
  "RISK_DECLINED",
])
export type DeclineReason = typeof DeclineReason.Type

const envelope = {
  schemaVersion: Schema.Number,
  tenantId: TenantId,
  accountId: AccountId,
  /** The payment (or deposit) the event belongs to; null for account lifecycle events. */
  paymentId: Schema.NullOr(Schema.String),
  correlationId: Schema.String,
  /**
   * Position of this event among its account's events, from 1, without gaps; 0 for an event about a
   * delivery that does not change the account (CreditRefused).
   */
  sequence: Schema.Number,
  timestampMs: Schema.Number,
}

/**
 * The history the debtor's account keeps for its tenant's fraud rules and limits, carried by the
 * event that records a payment in it, so that replay rebuilds it exactly whatever the tenant's
 * configuration is by then. Absent for tenants whose rules need no history.
 */
const HistoryBoundsSchema = Schema.Struct({
  historyWindowMs: Schema.Number,
  historyEntriesMax: Schema.Number,
  knownPayeesMax: Schema.Number,
  keepsVolume: Schema.Boolean,
})

const BookedConversionSchema = Schema.Struct({
  rate: Schema.String,
  rateNumerator: Minor,
  rateDenominator: Minor,
  source: Schema.String,
  asOfMs: Schema.Number,
  currency: CurrencyCode,
  amountMinor: Minor,
  rounding: Schema.Literals(["exact", "rounded_half_even"]),
})

/** A payment's currency conversions (core/payment-fx.ts): booked when decided, carried by its events. */
export const PaymentFxSchema = Schema.Struct({
  debit: Schema.optionalKey(BookedConversionSchema),
  credit: Schema.optionalKey(BookedConversionSchema),
})

export const AccountOpened = Schema.TaggedStruct("AccountOpened", {
  ...envelope,
  currency: CurrencyCode,
  floorMinor: Minor,
})

export const FundsDeposited = Schema.TaggedStruct("FundsDeposited", {
  ...envelope,
  amountMinor: Minor,
  currency: CurrencyCode,
})

/**
 * The debtor's side of a transfer: funds left the account, to be credited to `to`. `amountMinor`
 * and `currency` are the payment's; with `fx.debit` the account was debited its converted amount.
 */
export const TransferDebited = Schema.TaggedStruct("TransferDebited", {
  ...envelope,
  to: AccountId,
  amountMinor: Minor,
  currency: CurrencyCode,
  /** True when the credit is applied in the same journal record (both accounts on one shard). */
  settled: Schema.Boolean,
  history: Schema.optionalKey(HistoryBoundsSchema),
  fx: Schema.optionalKey(PaymentFxSchema),
})

/** A valid transfer request that could not be paid; recorded so a retry returns the same answer. */
export const TransferDeclined = Schema.TaggedStruct("TransferDeclined", {
  ...envelope,
  to: AccountId,
  amountMinor: Minor,
  currency: CurrencyCode,
  reason: DeclineReason,
  /** The fraud rule that declined it (reason RISK_DECLINED). */
  rule: Schema.optionalKey(Schema.String),
})

/** The creditor's side of a transfer, in the creditor's currency; applied at most once per (debtor, payment). */
export const TransferCredited = Schema.TaggedStruct("TransferCredited", {
  ...envelope,
  from: AccountId,
  amountMinor: Minor,
  currency: CurrencyCode,
  /**
   * True when the credit arrived as a saga delivery: its record is kept to deduplicate redeliveries.
   * False when it was committed with its debit in one journal transaction, which nothing redelivers.
   */
  delivered: Schema.Boolean,
})

/** The creditor's shard refused a delivered credit (no such account, another currency, too late); recorded so a redelivery is refused again. */
export const CreditRefused = Schema.TaggedStruct("CreditRefused", {
  ...envelope,
  from: AccountId,
  amountMinor: Minor,
  currency: CurrencyCode,
  reason: DeclineReason,
})

/** Completion of a cross-shard transfer on the debtor once the creditor's shard has applied it. */
export const TransferSettled = Schema.TaggedStruct("TransferSettled", { ...envelope })

/** Compensation of a cross-shard transfer whose credit could not be applied: funds return. */
export const TransferReversed = Schema.TaggedStruct("TransferReversed", {
  ...envelope,
  reason: DeclineReason,
})

/** An authorization: `amountMinor` held on the debtor until `holdExpiresAtMs`, for `to`. */
export const PaymentAuthorized = Schema.TaggedStruct("PaymentAuthorized", {
  ...envelope,
  to: AccountId,
  amountMinor: Minor,
  currency: CurrencyCode,
  holdExpiresAtMs: Schema.Number,
  history: Schema.optionalKey(HistoryBoundsSchema),
  /** With `debit`, the hold is the converted amount in the account's currency. */
  fx: Schema.optionalKey(PaymentFxSchema),
})

/**
 * A payment a fraud rule sent to review: held on the debtor like an authorization until
 * `holdExpiresAtMs`, waiting for a reviewer. `captureOnApproval` for a transfer, which its approval
 * captures whole.
 */
export const PaymentHeldForReview = Schema.TaggedStruct("PaymentHeldForReview", {
  ...envelope,
  to: AccountId,
  amountMinor: Minor,
  currency: CurrencyCode,
  holdExpiresAtMs: Schema.Number,
  rule: Schema.String,
  captureOnApproval: Schema.Boolean,
  history: Schema.optionalKey(HistoryBoundsSchema),
  fx: Schema.optionalKey(PaymentFxSchema),
})

/** A reviewer's decision: approve makes it an authorization (a transfer's capture follows in the same record); decline releases the hold. */
export const PaymentReviewed = Schema.TaggedStruct("PaymentReviewed", {
  ...envelope,
  decision: Schema.Literals(["approve", "decline"]),
})

/**
 * The capture of an authorization: `amountMinor` left the debtor and the whole hold was released.
 * `settled` as for a transfer's debit (the credit in the same journal record).
 */
export const PaymentCaptured = Schema.TaggedStruct("PaymentCaptured", {
  ...envelope,
  captureId: Schema.String,
  amountMinor: Minor,
  settled: Schema.Boolean,
  /** The conversion into the creditor's currency, booked at capture when it holds another one. */
  creditFx: Schema.optionalKey(BookedConversionSchema),
})

/** The creditor's side of a refund: `amountMinor` of its currency left its account, back to the payment's debtor `from`. */
export const RefundDebited = Schema.TaggedStruct("RefundDebited", {
  ...envelope,
  from: AccountId,
  refundId: Schema.String,
  amountMinor: Minor,
  currency: CurrencyCode,
})

/**
 * The debtor's side of a refund: `amountMinor` of the payment came back. It carries the payment as
 * it is after the refund (`refunds` includes this one): a settled payment may have left memory,
 * and recovery replays this event without reading the payment back from the snapshot store.
 */
export const PaymentRefunded = Schema.TaggedStruct("PaymentRefunded", {
  ...envelope,
  refundId: Schema.String,
  amountMinor: Minor,
  to: AccountId,
  currency: CurrencyCode,
  authorizedAmountMinor: Minor,
  capturedAmountMinor: Minor,
  paymentCreatedAtMs: Schema.Number,
  holdExpiresAtMs: Schema.NullOr(Schema.Number),
  captureId: Schema.NullOr(Schema.String),
  refunds: Schema.Array(Schema.Struct({ refundId: Schema.String, amountMinor: Minor })),
  /** The payment's conversions: the debtor gets back this refund's part at the booked rate. */
  fx: Schema.optionalKey(PaymentFxSchema),
})

/** An authorization's hold released by a void. */
export const AuthorizationVoided = Schema.TaggedStruct("AuthorizationVoided", { ...envelope })

/** An authorization's hold released because it lapsed uncaptured. */
export const AuthorizationExpired = Schema.TaggedStruct("AuthorizationExpired", { ...envelope })

export const Event = Schema.Union([
  AccountOpened,
  FundsDeposited,
  TransferDebited,
  TransferDeclined,
  TransferCredited,
  CreditRefused,
  TransferSettled,
  TransferReversed,
  PaymentAuthorized,
  PaymentHeldForReview,
  PaymentReviewed,
  PaymentCaptured,
  AuthorizationVoided,
  AuthorizationExpired,
  RefundDebited,
  PaymentRefunded,
])
export type Event = typeof Event.Type
export type EventEncoded = typeof Event.Encoded

export type AccountOpened = typeof AccountOpened.Type
export type FundsDeposited = typeof FundsDeposited.Type
export type TransferDebited = typeof TransferDebited.Type
export type TransferDeclined = typeof TransferDeclined.Type
export type TransferCredited = typeof TransferCredited.Type
export type CreditRefused = typeof CreditRefused.Type
export type TransferSettled = typeof TransferSettled.Type
export type TransferReversed = typeof TransferReversed.Type
export type PaymentAuthorized = typeof PaymentAuthorized.Type
export type PaymentHeldForReview = typeof PaymentHeldForReview.Type
export type PaymentReviewed = typeof PaymentReviewed.Type
export type PaymentCaptured = typeof PaymentCaptured.Type
export type HistoryBoundsRecorded = typeof HistoryBoundsSchema.Type
export type RefundDebited = typeof RefundDebited.Type
export type PaymentRefunded = typeof PaymentRefunded.Type

/** The events of one accepted command: the unit the journal appends and replays atomically. */
export interface JournalRecord {
  readonly events: ReadonlyArray<Event>
}

const JournalRecordJson = Schema.fromJsonString(Schema.Struct({ events: Schema.Array(Event) }))
const decodeRecordJson = Schema.decodeUnknownSync(JournalRecordJson)

/**
 * The Schema's own encoder: the specification of the stored bytes. `encodeJournalRecord` must
 * produce exactly its output (a property test holds them together); it is kept for that test.
 */
export const encodeJournalRecordBySchema: (record: JournalRecord) => string = Schema.encodeSync(JournalRecordJson)

const json = JSON.stringify

/** The optional `fx` field, last in its event. */
const fxJson = (fx: PaymentFx | undefined): string => (fx === undefined ? "" : `,"fx":${paymentFxJson(fx)}`)

/** The optional `history` field, before `fx`. */
const historyJson = (history: HistoryBoundsRecorded | undefined): string =>
  history === undefined
    ? ""
    : `,"history":{"historyWindowMs":${history.historyWindowMs},"historyEntriesMax":${history.historyEntriesMax},` +
      `"knownPayeesMax":${history.knownPayeesMax},"keepsVolume":${history.keepsVolume}}`

/**
 * The JSON text of one event, built directly: the Schema's field order (`_tag`, the envelope, then
 * the event's own fields) with amounts as decimal strings, every string escaped by JSON.stringify.
 * Written by hand because the Schema encoder cost about 12 µs per record on the append path, and
 * building an object for JSON.stringify about twice what this costs; events come from `decide`
 * over validated commands, so they are trusted here and validated again when read back.
 */
const eventJson = (event: Event): string => {
  const head =
    `{"_tag":"${event._tag}","schemaVersion":${event.schemaVersion},"tenantId":${json(event.tenantId)},` +
    `"accountId":${json(event.accountId)},"paymentId":${event.paymentId === null ? "null" : json(event.paymentId)},` +
    `"correlationId":${json(event.correlationId)},"sequence":${event.sequence},"timestampMs":${event.timestampMs}`
  switch (event._tag) {
    case "AccountOpened":
      return `${head},"currency":${json(event.currency)},"floorMinor":"${event.floorMinor}"}`
    case "FundsDeposited":
      return `${head},"amountMinor":"${event.amountMinor}","currency":${json(event.currency)}}`
    case "TransferDebited":
      return `${head},"to":${json(event.to)},"amountMinor":"${event.amountMinor}","currency":${json(event.currency)},"settled":${event.settled}${historyJson(event.history)}${fxJson(event.fx)}}`
    case "TransferDeclined":
      return `${head},"to":${json(event.to)},"amountMinor":"${event.amountMinor}","currency":${json(event.currency)},"reason":"${event.reason}"${event.rule === undefined ? "" : `,"rule":${json(event.rule)}`}}`
    case "TransferCredited":
      return `${head},"from":${json(event.from)},"amountMinor":"${event.amountMinor}","currency":${json(event.currency)},"delivered":${event.delivered}}`
    case "CreditRefused":
      return `${head},"from":${json(event.from)},"amountMinor":"${event.amountMinor}","currency":${json(event.currency)},"reason":"${event.reason}"}`
    case "TransferSettled":
      return `${head}}`
    case "TransferReversed":
      return `${head},"reason":"${event.reason}"}`
    case "PaymentAuthorized":
      return `${head},"to":${json(event.to)},"amountMinor":"${event.amountMinor}","currency":${json(event.currency)},"holdExpiresAtMs":${event.holdExpiresAtMs}${historyJson(event.history)}${fxJson(event.fx)}}`
    case "PaymentHeldForReview":
      return (
        `${head},"to":${json(event.to)},"amountMinor":"${event.amountMinor}","currency":${json(event.currency)},` +
        `"holdExpiresAtMs":${event.holdExpiresAtMs},"rule":${json(event.rule)},` +
        `"captureOnApproval":${event.captureOnApproval}${historyJson(event.history)}${fxJson(event.fx)}}`
      )
    case "PaymentReviewed":
      return `${head},"decision":"${event.decision}"}`
    case "PaymentCaptured":
      return (
        `${head},"captureId":${json(event.captureId)},"amountMinor":"${event.amountMinor}","settled":${event.settled}` +
        `${event.creditFx === undefined ? "" : `,"creditFx":${bookedConversionJson(event.creditFx)}`}}`
      )
    case "AuthorizationVoided":
    case "AuthorizationExpired":
      return `${head}}`
    case "RefundDebited":
      return `${head},"from":${json(event.from)},"refundId":${json(event.refundId)},"amountMinor":"${event.amountMinor}","currency":${json(event.currency)}}`
    case "PaymentRefunded":
      return (
        `${head},"refundId":${json(event.refundId)},"amountMinor":"${event.amountMinor}","to":${json(event.to)},` +
        `"currency":${json(event.currency)},"authorizedAmountMinor":"${event.authorizedAmountMinor}",` +
        `"capturedAmountMinor":"${event.capturedAmountMinor}","paymentCreatedAtMs":${event.paymentCreatedAtMs},` +
        `"holdExpiresAtMs":${event.holdExpiresAtMs === null ? "null" : event.holdExpiresAtMs},` +
        `"captureId":${event.captureId === null ? "null" : json(event.captureId)},` +
        `"refunds":[${event.refunds.map((refund) => `{"refundId":${json(refund.refundId)},"amountMinor":"${refund.amountMinor}"}`).join(",")}]` +
        `${fxJson(event.fx)}}`
      )
  }
}

export const encodeJournalRecord = (record: JournalRecord): string => {
  const { events } = record
  if (events.length === 1) return `{"events":[${eventJson(events[0] as Event)}]}`
  return `{"events":[${events.map(eventJson).join(",")}]}`
}

/** Decodes and validates a stored record; a record that does not decode is a corrupt journal. */
export const decodeJournalRecord = (text: string): JournalRecord => decodeRecordJson(text)
