/**
 * The stable error codes partners see, and the rejection value `decide` returns. Business
 * rejections are values, not exceptions.
 */
export const errorCodes = [
  "INVALID_REQUEST",
  "UNAUTHORIZED",
  "FORBIDDEN",
  "UNKNOWN_ACCOUNT",
  "UNKNOWN_PAYMENT",
  "ACCOUNT_EXISTS",
  "CURRENCY_MISMATCH",
  "INSUFFICIENT_FUNDS",
  "IDEMPOTENCY_CONFLICT",
  "INVALID_STATE",
  "AMOUNT_EXCEEDS_REMAINING",
  "LIMIT_EXCEEDED",
  "FX_RATE_UNAVAILABLE",
  "PAYLOAD_TOO_LARGE",
  "OVERLOADED",
  "UNAVAILABLE",
] as const
export type ErrorCode = (typeof errorCodes)[number]

export interface Rejection {
  readonly _tag: "Rejection"
  readonly code: ErrorCode
  readonly message: string
}

export const reject = (code: ErrorCode, message: string): Rejection => ({ _tag: "Rejection", code, message })

export const isRejection = (value: unknown): value is Rejection =>
  typeof value === "object" && value !== null && (value as { _tag?: unknown })._tag === "Rejection"
