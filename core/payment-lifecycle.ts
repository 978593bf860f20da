/**
 * The lifecycle of an authorization as a decider: authorize (hold on the debtor), then capture (all
 * or part; the rest of the hold is released), void (all released), or expiry (released when the
 * hold lapses, by a timer that is a side effect of the authorization). Status edges:
 *
 *   authorized -> settled | pending (capture) | voided | expired;  pending -> settled (saga)
 *
 * Checks run in the order the contract gives: the idempotency key, then the state edge
 * (`INVALID_STATE`), then the amount (`AMOUNT_EXCEEDS_REMAINING`). A refused capture records
 * nothing, so it does not use its id up.
 */
import type { Authorize, Capture, ExpireHold, ReviewPayment, Void } from "./commands.ts"
import { accept, type Decision, envelope, unchanged } from "./decision.ts"
import { isRejection, type Rejection, reject } from "./errors.ts"
import { type Event, eventSchemaVersion, type PaymentCaptured } from "./events.ts"
import { type Account, availableOf, isHolding, type LedgerView, type Payment } from "./ledger.ts"
import { parseAmount } from "./money.ts"
import { atBookedRate, conversionInto, debitedFor } from "./payment-fx.ts"
import { type LedgerPolicy, paymentExpired } from "./policy.ts"
import { screenedDecision } from "./review.ts"
import type { SideEffect } from "./side-effects.ts"
import { startSagaFor } from "./transfer-saga.ts"

const unknownPayment = (command: { readonly from: string; readonly paymentId: string }): Rejection =>
  reject("UNKNOWN_PAYMENT", `payment ${command.paymentId} of ${command.from} does not exist`)

const invalidState = (payment: Payment, wanted: string): Rejection =>
  reject("INVALID_STATE", `payment ${payment.paymentId} is ${payment.status}: it cannot be ${wanted}`)

/** The timer that releases a hold when it lapses. */
export const expiryOf = (
  payment: Pick<Payment, "tenantId" | "paymentId" | "from" | "holdExpiresAtMs">,
  correlationId: string,
): SideEffect => ({
  _tag: "Schedule",
  atMs: payment.holdExpiresAtMs as number,
  command: {
    _tag: "ExpireHold",
    tenantId: payment.tenantId,
    correlationId,
    timestampMs: payment.holdExpiresAtMs as number,
    paymentId: payment.paymentId,
    from: payment.from,
  },
})

/** The payment `command` refers to, unless absent or past its window (as if absent). */
const livePaymentOf = (
  view: LedgerView,
  command: Capture | Void | ExpireHold,
  policy: LedgerPolicy,
): Payment | undefined => {
  const payment = view.payment(command.tenantId, command.from, command.paymentId)
  return payment === undefined || paymentExpired(payment, command.timestampMs, policy) ? undefined : payment
}

export const decideAuthorize = (view: LedgerView, command: Authorize, policy: LedgerPolicy): Decision => {
  const debtor = view.account(command.tenantId, command.from)
  if (debtor === undefined) return reject("UNKNOWN_ACCOUNT", `account ${command.from} does not exist`)
  const previous = view.payment(command.tenantId, command.from, command.paymentId)
  if (previous !== undefined && !paymentExpired(previous, command.timestampMs, policy)) {
    const same =
      previous.to === command.to &&
      previous.amountMinor === command.amountMinor &&
      previous.currency === command.currency
    return same ? unchanged : reject("IDEMPOTENCY_CONFLICT", `payment ${command.paymentId} was made with other fields`)
  }
  if (command.from === command.to) return reject("INVALID_REQUEST", "a payment needs two different accounts")
  const debitFx =
    debtor.currency === command.currency
      ? undefined
      : conversionInto(command.tenantPolicy?.rates, debtor, command.amountMinor, command.currency)
  if (isRejection(debitFx)) return debitFx
  const base = envelope(command, command.from, command.paymentId, debtor.sequence + 1)
  const screened = screenedDecision(debtor, command, base, debitFx)
  if (screened !== undefined) return screened
  const fields = { to: command.to, amountMinor: command.amountMinor, currency: command.currency }
  if (!coversDebit(debtor, debitFx?.amountMinor ?? command.amountMinor)) {
    return accept([{ _tag: "TransferDeclined", ...base, ...fields, reason: "INSUFFICIENT_FUNDS" }])
  }
  const holdExpiresAtMs = command.timestampMs + command.holdMs
  const authorized: Payment = {
    tenantId: command.tenantId,
    paymentId: command.paymentId,
    from: command.from,
    ...fields,
    status: "authorized",
    reason: null,
    createdAtMs: command.timestampMs,
    capturedAmountMinor: 0n,
    holdExpiresAtMs,
    captureId: null,
    updatedAtMs: command.timestampMs,
    refundedAmountMinor: 0n,
    refunds: [],
  }
  const history = command.tenantPolicy?.history
  const authorizedEvent: Event = {
    _tag: "PaymentAuthorized",
    ...base,
    ...fields,
    holdExpiresAtMs,
    ...(history === undefined ? {} : { history }),
    ...(debitFx === undefined ? {} : { fx: { debit: debitFx } }),
  }
  return accept([authorizedEvent], [expiryOf(authorized, command.correlationId)])
}

/**
 * A capture retried with its id returns the payment as it is now; the same id with another amount
 * conflicts. With `creditorLocal`, `view` sees the creditor's account too, as for a transfer.
 */
export const decideCapture = (view: LedgerView, command: Capture, policy: LedgerPolicy): Decision => {
  const debtor = view.account(command.tenantId, command.from)
  const payment = livePaymentOf(view, command, policy)
  if (debtor === undefined || payment === undefined) return unknownPayment(command)
  const amountMinor = command.amount === null ? payment.amountMinor : parseAmount(command.amount, payment.currency)
  if (typeof amountMinor === "string") {
    return reject(
      "INVALID_REQUEST",
      `amount ${command.amount} is not an amount of ${payment.currency} (${amountMinor})`,
    )
  }
  if (payment.captureId !== null) {
    if (payment.captureId !== command.captureId) return invalidState(payment, "captured again")
    const same = amountMinor === payment.capturedAmountMinor
    return same
      ? unchanged
      : reject("IDEMPOTENCY_CONFLICT", `capture ${command.captureId} was made with another amount`)
  }
  if (payment.status !== "authorized") return invalidState(payment, "captured")
  if (amountMinor > payment.amountMinor) {
    return reject("AMOUNT_EXCEEDS_REMAINING", `payment ${payment.paymentId} authorized less than ${amountMinor}`)
  }
  return captureEvents(view, command, debtor, payment, amountMinor, command.captureId, policy)
}

/**
 * The events of capturing `amountMinor` of an authorization that may be captured: the debit with the
 * credit in the same record when `creditorLocal`, else the debit starting the credit's saga.
 */
export const captureEvents = (
  view: LedgerView,
  command: Capture | ReviewPayment,
  debtor: Account,
  payment: Payment,
  amountMinor: bigint,
  captureId: string,
  policy: LedgerPolicy,
): Decision => {
  const creditor = command.creditorLocal ? view.account(command.tenantId, payment.to) : undefined
  if (command.creditorLocal && creditor === undefined) {
    return reject("UNKNOWN_ACCOUNT", `account ${payment.to} does not exist`)
  }
  const creditFx =
    creditor === undefined || creditor.currency === payment.currency
      ? undefined
      : conversionInto(command.tenantPolicy?.rates, creditor, payment.amountMinor, payment.currency)
  if (isRejection(creditFx)) return creditFx
  // A part of a converted payment too small to be a unit on either side would move money one way only.
  const creditMinor = atBookedRate(creditFx, amountMinor, payment.currency)
  if (debitedFor(payment, amountMinor) === 0n || creditMinor === 0n) {
    return reject("INVALID_REQUEST", `a capture of ${amountMinor} converts to less than one minor unit`)
  }
  const captured: PaymentCaptured = {
    _tag: "PaymentCaptured",
    ...envelope(command, command.from, command.paymentId, debtor.sequence + 1),
    captureId,
    amountMinor,
    settled: creditor !== undefined,
    ...(creditFx === undefined ? {} : { creditFx }),
  }
  if (creditor === undefined) {
    const pending: Payment = { ...payment, status: "pending", capturedAmountMinor: amountMinor }
    return startSagaFor(pending, [captured], command.correlationId, command.timestampMs, policy)
  }
  return accept([captured, creditedTo(creditor, command, payment, creditMinor)])
}

/** The creditor's side of a capture: `amountMinor` in the creditor's currency. */
const creditedTo = (
  creditor: Account,
  command: Capture | ReviewPayment,
  payment: Payment,
  amountMinor: bigint,
): Event => ({
  _tag: "TransferCredited",
  schemaVersion: eventSchemaVersion,
  tenantId: command.tenantId,
  accountId: payment.to,
  paymentId: command.paymentId,
  correlationId: command.correlationId,
  sequence: creditor.sequence + 1,
  timestampMs: command.timestampMs,
  from: command.from,
  amountMinor,
  currency: creditor.currency,
  delivered: false,
})

/** A void of a voided payment answers it again; of anything but a live authorization, INVALID_STATE. */
export const decideVoid = (view: LedgerView, command: Void, policy: LedgerPolicy): Decision => {
  const debtor = view.account(command.tenantId, command.from)
  const payment = livePaymentOf(view, command, policy)
  if (debtor === undefined || payment === undefined) return unknownPayment(command)
  if (payment.status === "voided") return unchanged
  if (payment.status !== "authorized") return invalidState(payment, "voided")
  return accept([
    { _tag: "AuthorizationVoided", ...envelope(command, command.from, command.paymentId, debtor.sequence + 1) },
  ])
}

/** The hold's timer: releases a hold still in place (authorized or in review) once its time has come; otherwise nothing. */
export const decideExpireHold = (view: LedgerView, command: ExpireHold): Decision => {
  const debtor = view.account(command.tenantId, command.from)
  const payment = view.payment(command.tenantId, command.from, command.paymentId)
  if (debtor === undefined || payment === undefined || !isHolding(payment)) return unchanged
  if (command.timestampMs < (payment.holdExpiresAtMs as number)) return unchanged
  return accept([
    { _tag: "AuthorizationExpired", ...envelope(command, command.from, command.paymentId, debtor.sequence + 1) },
  ])
}

/** Whether a debit (in the debtor's currency) leaves the debtor above its floor, holds included. */
export const coversDebit = (debtor: Account, debitMinor: bigint): boolean =>
  availableOf(debtor) - debitMinor >= debtor.floorMinor
