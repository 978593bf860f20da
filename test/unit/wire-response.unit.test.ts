/**
 * The wire encoder: account and payment shapes with exact decimal amounts, answers with and
 * without reqId, and the HTTP status of every error code.
 */
import { describe, expect, it } from "vitest"
import { errorCodes } from "../../core/errors.ts"
import type { AccountId, PaymentId, TenantId } from "../../core/ids.ts"
import type { Account, Payment } from "../../core/ledger.ts"
import type { Currency } from "../../core/money.ts"
import {
  accountJson,
  encodeAccount,
  encodeFrameAnswer,
  encodeFrameError,
  encodeHttpError,
  encodePayment,
  httpStatusOf,
  paymentJson,
} from "../../transport/wire-response.ts"

const account: Account = {
  tenantId: "t" as TenantId,
  accountId: "acc-1" as AccountId,
  currency: "BHD" as Currency,
  floorMinor: -1500n,
  balanceMinor: 123456789012345678901n,
  heldMinor: 1000n,
  status: "open",
  sequence: 3,
}

const payment: Payment = {
  tenantId: "t" as TenantId,
  paymentId: "p-1" as PaymentId,
  from: "a" as AccountId,
  to: "b" as AccountId,
  amountMinor: 5n,
  currency: "JPY" as Currency,
  status: "declined",
  reason: "INSUFFICIENT_FUNDS",
  createdAtMs: Date.UTC(2025, 0, 2, 3, 4, 5, 6),
  capturedAmountMinor: 0n,
  holdExpiresAtMs: null,
  captureId: null,
  updatedAtMs: Date.UTC(2025, 0, 2, 3, 4, 5, 6),
  refundedAmountMinor: 0n,
  refunds: [],
}

describe("wire-response", () => {
  it("encodes an account with exact decimal strings and available as the balance less its holds", () => {
    expect(encodeAccount(account)).toEqual({
      accountId: "acc-1",
      currency: "BHD",
      balance: "123456789012345678.901",
      held: "1.000",
      available: "123456789012345677.901",
      floor: "-1.500",
      status: "open",
    })
  })

  it("encodes a payment with an ISO-8601 createdAt, and a reason only when declined", () => {
    expect(encodePayment(payment)).toEqual({
      paymentId: "p-1",
      from: "a",
      to: "b",
      amount: "5",
      currency: "JPY",
      status: "declined",
      createdAt: "2025-01-02T03:04:05.006Z",
      authorizedAmount: "5",
      capturedAmount: "0",
      refundedAmount: "0",
      reason: "INSUFFICIENT_FUNDS",
    })
    const held = encodePayment({
      ...payment,
      status: "authorized",
      reason: null,
      holdExpiresAtMs: Date.UTC(2025, 0, 9),
    })
    expect(held.holdExpiresAt).toBe("2025-01-09T00:00:00.000Z")
    const settled = encodePayment({ ...payment, status: "settled", reason: null })
    expect(settled.status).toBe("settled")
    expect("reason" in settled).toBe(false)
  })

  it("encodes WebSocket answers with the reqId, and errors without one when none was read", () => {
    expect(JSON.parse(encodeFrameAnswer(7, { _tag: "Account", account }))).toMatchObject({ reqId: 7, ok: true })
    expect(JSON.parse(encodeFrameAnswer("r", { _tag: "Rejection", code: "UNKNOWN_ACCOUNT", message: "m" }))).toEqual({
      reqId: "r",
      ok: false,
      error: { code: "UNKNOWN_ACCOUNT", message: "m" },
    })
    expect(JSON.parse(encodeFrameError(undefined, "INVALID_REQUEST", "bad"))).toEqual({
      ok: false,
      error: { code: "INVALID_REQUEST", message: "bad" },
    })
    expect(JSON.parse(encodeHttpError("OVERLOADED", "busy"))).toEqual({
      error: { code: "OVERLOADED", message: "busy" },
    })
  })

  it("builds the same JSON text directly as JSON.stringify of the account and payment objects", () => {
    const oddIds = ["acc-1", 'quote"d\\', "x\u0000y", "😀", "\ud800", "line\nbreak"]
    for (const id of oddIds) {
      const odd = { ...account, accountId: id as AccountId, balanceMinor: -7n, floorMinor: -100n }
      expect(accountJson(odd)).toBe(JSON.stringify(encodeAccount(odd)))
      for (const reason of [null, "INSUFFICIENT_FUNDS" as const]) {
        for (const holdExpiresAtMs of [null, Date.UTC(2025, 0, 9)]) {
          const oddPayment = { ...payment, paymentId: id as PaymentId, from: id as AccountId, reason, holdExpiresAtMs }
          expect(paymentJson(oddPayment)).toBe(JSON.stringify(encodePayment(oddPayment)))
        }
      }
    }
    for (const reqId of ["r-1", 7, 'q"\\']) {
      expect(encodeFrameAnswer(reqId, { _tag: "Payment", payment })).toBe(
        JSON.stringify({ reqId, ok: true, payment: encodePayment(payment) }),
      )
      expect(encodeFrameAnswer(reqId, { _tag: "Account", account })).toBe(
        JSON.stringify({ reqId, ok: true, account: encodeAccount(account) }),
      )
    }
  })

  it("maps every error code to the contract's HTTP status", () => {
    const statuses = Object.fromEntries(errorCodes.map((code) => [code, Number(httpStatusOf[code].slice(0, 3))]))
    expect(statuses).toEqual({
      INVALID_REQUEST: 400,
      UNAUTHORIZED: 401,
      FORBIDDEN: 403,
      UNKNOWN_ACCOUNT: 404,
      UNKNOWN_PAYMENT: 404,
      ACCOUNT_EXISTS: 409,
      CURRENCY_MISMATCH: 422,
      INSUFFICIENT_FUNDS: 422,
      IDEMPOTENCY_CONFLICT: 422,
      PAYLOAD_TOO_LARGE: 413,
      OVERLOADED: 429,
      UNAVAILABLE: 503,
      INVALID_STATE: 409,
      AMOUNT_EXCEEDS_REMAINING: 422,
      LIMIT_EXCEEDED: 422,
      FX_RATE_UNAVAILABLE: 422,
    })
  })
})
