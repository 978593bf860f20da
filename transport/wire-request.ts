/**
 * Decodes wire requests (a WebSocket frame, or an HTTP route plus its body) into typed
 * operations whose ids, currencies and amounts are validated, so nothing behind the edge checks
 * them again. A request that fails gets `INVALID_REQUEST` with a message naming the field.
 * Unknown extra fields are ignored, so partners may send more than a version of the contract knows.
 */
import type { AccountId, DepositId, PaymentId } from "../core/ids.ts"
import { idLengthMax, isIdText } from "../core/ids.ts"
import {
  type AmountError,
  type Currency,
  integerDigitsMax,
  isCurrency,
  parseAmount,
  parseDecimal,
} from "../core/money.ts"
import { holdSecondsMax } from "../core/tenant-policy.ts"

/** What a partner puts in `reqId` to match answers to requests; echoed verbatim. */
export type RequestId = string | number

export const operationNames = [
  "openAccount",
  "deposit",
  "transfer",
  "getAccount",
  "getPayment",
  "authorize",
  "capture",
  "void",
  "refund",
  "reviewPayment",
] as const
export type OperationName = (typeof operationNames)[number]

export type Operation =
  | {
      readonly op: "openAccount"
      readonly accountId: AccountId
      readonly currency: Currency
      readonly floorMinor: bigint
    }
  | {
      readonly op: "deposit"
      readonly accountId: AccountId
      readonly depositId: DepositId
      readonly amountMinor: bigint
      readonly currency: Currency
    }
  | {
      readonly op: "transfer"
      readonly paymentId: PaymentId
      readonly from: AccountId
      readonly to: AccountId
      readonly amountMinor: bigint
      readonly currency: Currency
    }
  | {
      readonly op: "authorize"
      readonly paymentId: PaymentId
      readonly from: AccountId
      readonly to: AccountId
      readonly amountMinor: bigint
      readonly currency: Currency
      /** Null: the tenant's default hold. */
      readonly holdMs: number | null
    }
  | {
      readonly op: "capture"
      readonly from: AccountId
      readonly paymentId: PaymentId
      readonly captureId: string
      /** Major units as sent; its decimals are checked against the authorization's currency. */
      readonly amount: string | null
    }
  | { readonly op: "void"; readonly from: AccountId; readonly paymentId: PaymentId }
  | {
      readonly op: "refund"
      readonly from: AccountId
      readonly paymentId: PaymentId
      readonly refundId: string
      /** Major units as sent; its decimals are checked against the payment's currency. */
      readonly amount: string | null
    }
  | {
      readonly op: "reviewPayment"
      readonly from: AccountId
      readonly paymentId: PaymentId
      readonly decision: "approve" | "decline"
    }
  | { readonly op: "getAccount"; readonly accountId: AccountId }
  | { readonly op: "getPayment"; readonly accountId: AccountId; readonly paymentId: PaymentId }

/** A request that cannot become an operation; `reqId` is whatever could be read from it. */
export interface InvalidRequest {
  readonly _tag: "InvalidRequest"
  readonly reqId: RequestId | undefined
  readonly message: string
}

/** A decoded WebSocket frame. `traceparent` is the W3C trace context, when the frame carries a valid one. */
export interface FrameRequest {
  readonly _tag: "FrameRequest"
  readonly reqId: RequestId
  readonly operation: Operation
  readonly traceparent: string | undefined
}

export type Fields = Readonly<Record<string, unknown>>

const invalid = (message: string, reqId?: RequestId): InvalidRequest => ({ _tag: "InvalidRequest", reqId, message })

export const isInvalidRequest = (value: unknown): value is InvalidRequest =>
  typeof value === "object" && value !== null && (value as { _tag?: unknown })._tag === "InvalidRequest"

/** A JSON object (not an array, not null): the only shape a request body or frame may have. */
export const isFields = (value: unknown): value is Fields =>
  typeof value === "object" && value !== null && !Array.isArray(value)

const isOperationName = (value: unknown): value is OperationName =>
  typeof value === "string" && (operationNames as ReadonlyArray<string>).includes(value)

const readId = (fields: Fields, name: string): string | InvalidRequest => {
  const value = fields[name]
  if (value === undefined) return invalid(`${name} is required`)
  if (typeof value !== "string") return invalid(`${name} must be a string`)
  if (!isIdText(value)) return invalid(`${name} must be 1 to ${idLengthMax} characters`)
  return value
}

const readCurrency = (fields: Fields): Currency | InvalidRequest => {
  const value = fields.currency
  if (value === undefined) return invalid("currency is required")
  if (typeof value !== "string") return invalid("currency must be a string")
  if (!isCurrency(value)) return invalid(`currency "${value.slice(0, 16)}" is not a known ISO 4217 code`)
  return value
}

const amountMessages: Readonly<Record<AmountError, (name: string, currency: Currency) => string>> = {
  MALFORMED: (name) => `${name} must be a decimal string in major units such as "12.34"`,
  TOO_MANY_DECIMALS: (name, currency) => `${name} has more decimals than ${currency} allows`,
  NOT_POSITIVE: (name) => `${name} must be greater than zero`,
  TOO_LARGE: (name) => `${name} has more than ${integerDigitsMax} integer digits`,
}

/** A positive amount (`allowNegative` false) or a floor (may be negative) in minor units. */
const readAmount = (
  fields: Fields,
  name: string,
  currency: Currency,
  allowNegative: boolean,
): bigint | InvalidRequest => {
  const value = fields[name]
  if (value === undefined) return invalid(`${name} is required`)
  if (typeof value !== "string")
    return invalid(`${name} must be a decimal string such as "12.34", not a ${typeof value}`)
  const minor = allowNegative ? parseDecimal(value, currency, true) : parseAmount(value, currency)
  return typeof minor === "bigint" ? minor : invalid(amountMessages[minor](name, currency))
}

const decodeOpenAccount = (fields: Fields): Operation | InvalidRequest => {
  const accountId = readId(fields, "accountId")
  if (isInvalidRequest(accountId)) return accountId
  const currency = readCurrency(fields)
  if (isInvalidRequest(currency)) return currency
  const floorMinor = fields.floor === undefined ? 0n : readAmount(fields, "floor", currency, true)
  if (isInvalidRequest(floorMinor)) return floorMinor
  return { op: "openAccount", accountId: accountId as AccountId, currency, floorMinor }
}

const decodeDeposit = (fields: Fields): Operation | InvalidRequest => {
  const accountId = readId(fields, "accountId")
  if (isInvalidRequest(accountId)) return accountId
  const depositId = readId(fields, "depositId")
  if (isInvalidRequest(depositId)) return depositId
  const currency = readCurrency(fields)
  if (isInvalidRequest(currency)) return currency
  const amountMinor = readAmount(fields, "amount", currency, false)
  if (isInvalidRequest(amountMinor)) return amountMinor
  return { op: "deposit", accountId: accountId as AccountId, depositId: depositId as DepositId, amountMinor, currency }
}

const decodeTransfer = (fields: Fields): Operation | InvalidRequest => {
  const paymentId = readId(fields, "paymentId")
  if (isInvalidRequest(paymentId)) return paymentId
  const from = readId(fields, "from")
  if (isInvalidRequest(from)) return from
  const to = readId(fields, "to")
  if (isInvalidRequest(to)) return to
  const currency = readCurrency(fields)
  if (isInvalidRequest(currency)) return currency
  const amountMinor = readAmount(fields, "amount", currency, false)
  if (isInvalidRequest(amountMinor)) return amountMinor
  return {
    op: "transfer",
    paymentId: paymentId as PaymentId,
    from: from as AccountId,
    to: to as AccountId,
    amountMinor,
    currency,
  }
}

/** The hold the request asks for; null when it leaves it to the tenant's default. */
const readHoldMs = (fields: Fields): number | null | InvalidRequest => {
  const value = fields.holdSeconds
  if (value === undefined) return null
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > holdSecondsMax)
    return invalid(`holdSeconds must be an integer from 1 to ${holdSecondsMax}`)
  return value * 1000
}

const decodeAuthorize = (fields: Fields): Operation | InvalidRequest => {
  const transfer = decodeTransfer(fields)
  if (isInvalidRequest(transfer) || transfer.op !== "transfer") return transfer
  const holdMs = readHoldMs(fields)
  if (isInvalidRequest(holdMs)) return holdMs
  const { op: _transfer, ...payment } = transfer
  return { op: "authorize", ...payment, holdMs }
}

/** A positive decimal string of at most `integerDigitsMax` integer digits; its decimals are the decider's to judge. */
const capturedAmountPattern = /^(0|[1-9][0-9]{0,17})(\.[0-9]{1,3})?$/

/** The amount of a capture or refund: absent (all), or a positive decimal string whose decimals the decider checks. */
const readLaterAmount = (fields: Fields): string | null | InvalidRequest => {
  const amount = fields.amount
  if (amount === undefined) return null
  if (typeof amount !== "string" || !capturedAmountPattern.test(amount) || /^0(\.0+)?$/.test(amount))
    return invalid('amount must be a positive decimal string such as "12.34"')
  return amount
}

const decodeRefund = (fields: Fields): Operation | InvalidRequest => {
  const from = readId(fields, "from")
  if (isInvalidRequest(from)) return from
  const paymentId = readId(fields, "paymentId")
  if (isInvalidRequest(paymentId)) return paymentId
  const refundId = readId(fields, "refundId")
  if (isInvalidRequest(refundId)) return refundId
  const amount = readLaterAmount(fields)
  if (isInvalidRequest(amount)) return amount
  return { op: "refund", from: from as AccountId, paymentId: paymentId as PaymentId, refundId, amount }
}

const decodeCapture = (fields: Fields): Operation | InvalidRequest => {
  const from = readId(fields, "from")
  if (isInvalidRequest(from)) return from
  const paymentId = readId(fields, "paymentId")
  if (isInvalidRequest(paymentId)) return paymentId
  const captureId = readId(fields, "captureId")
  if (isInvalidRequest(captureId)) return captureId
  const amount = readLaterAmount(fields)
  if (isInvalidRequest(amount)) return amount
  return {
    op: "capture",
    from: from as AccountId,
    paymentId: paymentId as PaymentId,
    captureId,
    amount,
  }
}

const decodeVoid = (fields: Fields): Operation | InvalidRequest => {
  const from = readId(fields, "from")
  if (isInvalidRequest(from)) return from
  const paymentId = readId(fields, "paymentId")
  if (isInvalidRequest(paymentId)) return paymentId
  return { op: "void", from: from as AccountId, paymentId: paymentId as PaymentId }
}

const decodeReview = (fields: Fields): Operation | InvalidRequest => {
  const from = readId(fields, "from")
  if (isInvalidRequest(from)) return from
  const paymentId = readId(fields, "paymentId")
  if (isInvalidRequest(paymentId)) return paymentId
  const decision = fields.decision
  if (decision !== "approve" && decision !== "decline") return invalid('decision must be "approve" or "decline"')
  return { op: "reviewPayment", from: from as AccountId, paymentId: paymentId as PaymentId, decision }
}

const decodeGetPayment = (fields: Fields): Operation | InvalidRequest => {
  const accountId = readId(fields, "accountId")
  if (isInvalidRequest(accountId)) return accountId
  const paymentId = readId(fields, "paymentId")
  if (isInvalidRequest(paymentId)) return paymentId
  return { op: "getPayment", accountId: accountId as AccountId, paymentId: paymentId as PaymentId }
}

/** Decodes the fields of a known operation; HTTP calls this with the op its route names. */
export const decodeOperation = (op: OperationName, fields: Fields): Operation | InvalidRequest => {
  switch (op) {
    case "openAccount":
      return decodeOpenAccount(fields)
    case "deposit":
      return decodeDeposit(fields)
    case "transfer":
      return decodeTransfer(fields)
    case "getAccount": {
      const accountId = readId(fields, "accountId")
      return isInvalidRequest(accountId) ? accountId : { op: "getAccount", accountId: accountId as AccountId }
    }
    case "getPayment":
      return decodeGetPayment(fields)
    case "authorize":
      return decodeAuthorize(fields)
    case "capture":
      return decodeCapture(fields)
    case "void":
      return decodeVoid(fields)
    case "refund":
      return decodeRefund(fields)
    case "reviewPayment":
      return decodeReview(fields)
  }
}

/** W3C trace context: version-traceid-parentid-flags, lowercase hex, all-zero ids invalid. */
const traceparentPattern = /^[0-9a-f]{2}-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$/

/** The traceparent to continue, or undefined when the value is absent or not a valid one (it is then ignored). */
export const readTraceparent = (value: unknown): string | undefined =>
  typeof value === "string" && value.length === 55 && traceparentPattern.test(value) && !value.startsWith("ff")
    ? value
    : undefined

/** reqId: a string of 1 to 128 characters or a finite number. */
const readRequestId = (value: unknown): RequestId | undefined | InvalidRequest => {
  if (value === undefined) return undefined
  if (typeof value === "number" && Number.isFinite(value)) return value
  if (typeof value === "string" && value.length >= 1 && value.length <= idLengthMax) return value
  return invalid(`reqId must be a string of 1 to ${idLengthMax} characters or a number`)
}

/** Decodes a WebSocket text frame: JSON object with `op`, `reqId` and the operation's fields. */
export const decodeFrame = (text: string): FrameRequest | InvalidRequest => {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    return invalid("the frame is not valid JSON")
  }
  if (!isFields(parsed)) return invalid("the frame must be a JSON object")
  const reqId = readRequestId(parsed.reqId)
  if (isInvalidRequest(reqId)) return reqId
  if (reqId === undefined) return invalid("reqId is required")
  const op = parsed.op
  if (op === undefined) return invalid("op is required", reqId)
  if (!isOperationName(op)) {
    const shown = typeof op === "string" ? `"${op.slice(0, 32)}"` : `a ${typeof op}`
    return invalid(`op ${shown} is not one of ${operationNames.join(", ")}`, reqId)
  }
  const operation = decodeOperation(op, parsed)
  if (isInvalidRequest(operation)) return invalid(operation.message, reqId)
  return { _tag: "FrameRequest", reqId, operation, traceparent: readTraceparent(parsed.traceparent) }
}
