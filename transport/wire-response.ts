/**
 * Encodes answers for the wire: accounts and payments with amounts as decimal strings in major
 * units, WebSocket answers `{ reqId, ok, ... }`, HTTP bodies, and the HTTP status of each error code.
 */
import type { Outcome } from "../actors/processor.ts"
import type { ErrorCode } from "../core/errors.ts"
import { type Account, availableOf, type Payment } from "../core/ledger.ts"
import { formatAmount } from "../core/money.ts"
import type { BookedConversion, PaymentFx } from "../core/payment-fx.ts"
import type { RequestId } from "./wire-request.ts"

export interface WireAccount {
  readonly accountId: string
  readonly currency: string
  readonly balance: string
  readonly held: string
  readonly available: string
  readonly floor: string
  readonly status: string
}

export interface WirePayment {
  readonly paymentId: string
  readonly from: string
  readonly to: string
  readonly amount: string
  readonly currency: string
  readonly status: string
  readonly createdAt: string
  readonly authorizedAmount: string
  readonly capturedAmount: string
  readonly refundedAmount: string
  readonly holdExpiresAt?: string
  readonly reason?: string
  /** The fraud rule that fired: `review` (sent to a reviewer) or `decline`. */
  readonly risk?: { readonly outcome: string; readonly rule: string }
  /** The conversions into the debtor's and the creditor's currencies, when they hold another than `currency`. */
  readonly fx?: { readonly debit?: WireConversion; readonly credit?: WireConversion }
}

/** One conversion of the payment's whole amount: 1 `fromCurrency` = `rate` `toCurrency`, as of `asOf`. */
export interface WireConversion {
  readonly rate: string
  readonly source: string
  readonly asOf: string
  readonly fromAmount: string
  readonly fromCurrency: string
  readonly toAmount: string
  readonly toCurrency: string
  readonly rounding: string
}

const conversionOf = (payment: Payment, booked: BookedConversion): WireConversion => ({
  rate: booked.rate,
  source: booked.source,
  asOf: isoOf(booked.asOfMs),
  fromAmount: formatAmount(payment.amountMinor, payment.currency),
  fromCurrency: payment.currency,
  toAmount: formatAmount(booked.amountMinor, booked.currency),
  toCurrency: booked.currency,
  rounding: booked.rounding,
})

const fxOf = (payment: Payment, fx: PaymentFx): NonNullable<WirePayment["fx"]> => ({
  ...(fx.debit === undefined ? {} : { debit: conversionOf(payment, fx.debit) }),
  ...(fx.credit === undefined ? {} : { credit: conversionOf(payment, fx.credit) }),
})

export const encodeAccount = (account: Account): WireAccount => ({
  accountId: account.accountId,
  currency: account.currency,
  balance: formatAmount(account.balanceMinor, account.currency),
  held: formatAmount(account.heldMinor, account.currency),
  available: formatAmount(availableOf(account), account.currency),
  floor: formatAmount(account.floorMinor, account.currency),
  status: account.status,
})

export const encodePayment = (payment: Payment): WirePayment => {
  const wire: WirePayment = {
    paymentId: payment.paymentId,
    from: payment.from,
    to: payment.to,
    amount: formatAmount(payment.amountMinor, payment.currency),
    currency: payment.currency,
    status: payment.status,
    createdAt: new Date(payment.createdAtMs).toISOString(),
    authorizedAmount: formatAmount(payment.amountMinor, payment.currency),
    capturedAmount: formatAmount(payment.capturedAmountMinor, payment.currency),
    refundedAmount: formatAmount(payment.refundedAmountMinor, payment.currency),
  }
  const held = payment.holdExpiresAtMs === null ? wire : { ...wire, holdExpiresAt: isoOf(payment.holdExpiresAtMs) }
  const explained = payment.reason === null ? held : { ...held, reason: payment.reason }
  const screened =
    payment.risk === undefined
      ? explained
      : { ...explained, risk: { outcome: payment.risk.outcome, rule: payment.risk.rule } }
  return payment.fx === undefined ? screened : { ...screened, fx: fxOf(payment, payment.fx) }
}

const isoOf = (ms: number): string => new Date(ms).toISOString()

const json = JSON.stringify

/**
 * The JSON text of `encodeAccount` and `encodePayment`, built directly (same fields, same order,
 * same bytes as JSON.stringify of those objects, which a test holds them to): every answer goes
 * through one of them, and building the object first cost about twice as much.
 */
export const accountJson = (account: Account): string => {
  const { currency } = account
  return (
    `{"accountId":${json(account.accountId)},"currency":${json(currency)},` +
    `"balance":${json(formatAmount(account.balanceMinor, currency))},"held":${json(formatAmount(account.heldMinor, currency))},` +
    `"available":${json(formatAmount(availableOf(account), currency))},` +
    `"floor":${json(formatAmount(account.floorMinor, currency))},"status":${json(account.status)}}`
  )
}

export const paymentJson = (payment: Payment): string => {
  const fields =
    `{"paymentId":${json(payment.paymentId)},"from":${json(payment.from)},"to":${json(payment.to)},` +
    `"amount":${json(formatAmount(payment.amountMinor, payment.currency))},"currency":${json(payment.currency)},` +
    `"status":${json(payment.status)},"createdAt":${json(isoOf(payment.createdAtMs))},` +
    `"authorizedAmount":${json(formatAmount(payment.amountMinor, payment.currency))},` +
    `"capturedAmount":${json(formatAmount(payment.capturedAmountMinor, payment.currency))},` +
    `"refundedAmount":${json(formatAmount(payment.refundedAmountMinor, payment.currency))}` +
    (payment.holdExpiresAtMs === null ? "" : `,"holdExpiresAt":${json(isoOf(payment.holdExpiresAtMs))}`)
  const explained = payment.reason === null ? fields : `${fields},"reason":${json(payment.reason)}`
  const screened =
    payment.risk === undefined
      ? explained
      : `${explained},"risk":{"outcome":${json(payment.risk.outcome)},"rule":${json(payment.risk.rule)}}`
  return payment.fx === undefined ? `${screened}}` : `${screened},"fx":${json(fxOf(payment, payment.fx))}}`
}

/** The error object both channels carry. */
export interface WireError {
  readonly code: ErrorCode
  readonly message: string
}

/** The WebSocket answer for an outcome of the processor. */
export const encodeFrameAnswer = (reqId: RequestId, outcome: Outcome): string => {
  switch (outcome._tag) {
    case "Account":
      return `{"reqId":${json(reqId)},"ok":true,"account":${accountJson(outcome.account)}}`
    case "Payment":
      return `{"reqId":${json(reqId)},"ok":true,"payment":${paymentJson(outcome.payment)}}`
    case "Rejection":
      return encodeFrameError(reqId, outcome.code, outcome.message)
  }
}

/** A failed WebSocket answer; without `reqId` when none could be read from the frame. */
export const encodeFrameError = (reqId: RequestId | undefined, code: ErrorCode, message: string): string =>
  JSON.stringify(
    reqId === undefined ? { ok: false, error: { code, message } } : { reqId, ok: false, error: { code, message } },
  )

/** The HTTP body for a successful outcome: the same object the WebSocket answer carries, without reqId and ok. */
export const encodeHttpSuccess = (outcome: Exclude<Outcome, { readonly _tag: "Rejection" }>): string =>
  outcome._tag === "Account"
    ? `{"account":${accountJson(outcome.account)}}`
    : `{"payment":${paymentJson(outcome.payment)}}`

export const encodeHttpError = (code: ErrorCode, message: string): string =>
  JSON.stringify({ error: { code, message } })

/** HTTP status lines of the error codes; business outcomes that are not errors are 200. */
export const httpStatusOf: Readonly<Record<ErrorCode, string>> = {
  INVALID_REQUEST: "400 Bad Request",
  UNAUTHORIZED: "401 Unauthorized",
  FORBIDDEN: "403 Forbidden",
  UNKNOWN_ACCOUNT: "404 Not Found",
  UNKNOWN_PAYMENT: "404 Not Found",
  ACCOUNT_EXISTS: "409 Conflict",
  CURRENCY_MISMATCH: "422 Unprocessable Entity",
  INSUFFICIENT_FUNDS: "422 Unprocessable Entity",
  IDEMPOTENCY_CONFLICT: "422 Unprocessable Entity",
  PAYLOAD_TOO_LARGE: "413 Payload Too Large",
  OVERLOADED: "429 Too Many Requests",
  UNAVAILABLE: "503 Service Unavailable",
  INVALID_STATE: "409 Conflict",
  AMOUNT_EXCEEDS_REMAINING: "422 Unprocessable Entity",
  LIMIT_EXCEEDED: "422 Unprocessable Entity",
  FX_RATE_UNAVAILABLE: "422 Unprocessable Entity",
}

export const httpStatusOk = "200 OK"
