/**
 * Refunds as a decider: money goes back from the creditor to the debtor of a settled payment, in
 * parts, never more in total than was captured. Both sides commit together (the creditor's debit
 * and the debtor's credit in one journal transaction), so this node must hold both accounts'
 * shards. A refund the creditor's available funds do not cover is refused with INSUFFICIENT_FUNDS
 * and changes nothing. A converted payment is refunded at the rates it was booked at, on each side.
 * Status edges: settled | partially_refunded -> partially_refunded | refunded.
 */
import type { Refund } from "./commands.ts"
import { accept, type Decision, envelope, unchanged } from "./decision.ts"
import { reject } from "./errors.ts"
import type { PaymentRefunded } from "./events.ts"
import { availableOf, type LedgerView } from "./ledger.ts"
import { parseAmount } from "./money.ts"
import { partAtBookedRate } from "./payment-fx.ts"
import { type LedgerPolicy, paymentExpired } from "./policy.ts"

/** Refunds one payment may take: each is kept on the payment for its idempotency. */
export const refundsPerPaymentMax = 100

export const decideRefund = (view: LedgerView, command: Refund, policy: LedgerPolicy): Decision => {
  const debtor = view.account(command.tenantId, command.from)
  const payment = view.payment(command.tenantId, command.from, command.paymentId)
  if (debtor === undefined || payment === undefined || paymentExpired(payment, command.timestampMs, policy)) {
    return reject("UNKNOWN_PAYMENT", `payment ${command.paymentId} of ${command.from} does not exist`)
  }
  const remainingMinor = payment.capturedAmountMinor - payment.refundedAmountMinor
  const amountMinor = command.amount === null ? remainingMinor : parseAmount(command.amount, payment.currency)
  if (typeof amountMinor === "string") {
    return reject(
      "INVALID_REQUEST",
      `amount ${command.amount} is not an amount of ${payment.currency} (${amountMinor})`,
    )
  }
  const recorded = payment.refunds.find((refund) => refund.refundId === command.refundId)
  if (recorded !== undefined) {
    const same = command.amount === null || recorded.amountMinor === amountMinor
    return same ? unchanged : reject("IDEMPOTENCY_CONFLICT", `refund ${command.refundId} was made with another amount`)
  }
  if (payment.status !== "settled" && payment.status !== "partially_refunded") {
    return reject("INVALID_STATE", `payment ${payment.paymentId} is ${payment.status}: it cannot be refunded`)
  }
  if (amountMinor > remainingMinor) {
    return reject(
      "AMOUNT_EXCEEDS_REMAINING",
      `payment ${payment.paymentId} has less than ${amountMinor} left to refund`,
    )
  }
  if (payment.refunds.length >= refundsPerPaymentMax) {
    return reject("INVALID_REQUEST", `payment ${payment.paymentId} has had ${refundsPerPaymentMax} refunds already`)
  }
  if (!command.creditorLocal) {
    return reject("UNAVAILABLE", `account ${payment.to} is on another node: a refund needs both accounts here`)
  }
  const creditor = view.account(command.tenantId, payment.to)
  if (creditor === undefined) return reject("UNKNOWN_ACCOUNT", `account ${payment.to} does not exist`)
  // At the rates the payment was booked at, cumulatively: all refunds together give back exactly what moved.
  const before = payment.refundedAmountMinor
  const creditorMinor = partAtBookedRate(payment.fx?.credit, before, amountMinor, payment.currency)
  const debtorMinor = partAtBookedRate(payment.fx?.debit, before, amountMinor, payment.currency)
  // A part too small to be a unit on one side would move money one way only; the last part completes
  // the totals, which are exact, whatever it is on each side.
  const last = before + amountMinor === payment.capturedAmountMinor
  if (!last && (creditorMinor === 0n || debtorMinor === 0n)) {
    return reject("INVALID_REQUEST", `a refund of ${amountMinor} converts to less than one minor unit`)
  }
  if (availableOf(creditor) - creditorMinor < creditor.floorMinor) {
    return reject("INSUFFICIENT_FUNDS", `account ${payment.to} cannot cover a refund of ${amountMinor}`)
  }
  const refunded: PaymentRefunded = {
    _tag: "PaymentRefunded",
    ...envelope(command, command.from, command.paymentId, debtor.sequence + 1),
    refundId: command.refundId,
    amountMinor,
    to: payment.to,
    currency: payment.currency,
    authorizedAmountMinor: payment.amountMinor,
    capturedAmountMinor: payment.capturedAmountMinor,
    paymentCreatedAtMs: payment.createdAtMs,
    holdExpiresAtMs: payment.holdExpiresAtMs,
    captureId: payment.captureId,
    refunds: [...payment.refunds, { refundId: command.refundId, amountMinor }],
    ...(payment.fx === undefined ? {} : { fx: payment.fx }),
  }
  // The last part of a converted payment may take nothing from the creditor.
  if (creditorMinor === 0n) return accept([refunded])
  return accept([
    {
      _tag: "RefundDebited",
      ...envelope(command, payment.to, command.paymentId, creditor.sequence + 1),
      from: command.from,
      refundId: command.refundId,
      amountMinor: creditorMinor,
      currency: creditor.currency,
    },
    refunded,
  ])
}
