/**
 * The cross-shard transfer saga as a decider, for a creditor whose shard this node cannot commit
 * with (another node holds it). Every step is a command decided against journaled state, and what
 * happens next is a side effect carried out after the step commits:
 *
 *   debtor:   Transfer        -> TransferDebited (pending); deliver ApplyCredit, schedule RedeliverCredit
 *   creditor: ApplyCredit     -> TransferCredited, deliver SettleTransfer
 *                             or CreditRefused,    deliver ReverseTransfer
 *                             (a redelivery changes nothing and answers the same way again)
 *   debtor:   SettleTransfer  -> TransferSettled;  ReverseTransfer -> TransferReversed (funds return)
 *   debtor:   RedeliverCredit -> while still pending: deliver ApplyCredit again, schedule the next one
 *
 * Deliveries may be lost, repeated, delayed or reordered: redelivery makes them at-least-once, the
 * creditor's record of each credit (applied or refused) makes them take effect at most once, and
 * the debtor's pending payment is the saga's state, from which `pendingEffects` resumes it after a
 * recovery.
 */
import type { ApplyCredit, RedeliverCredit, ReverseTransfer, SettleTransfer, Transfer } from "./commands.ts"
import { accept, type Decision, envelope, unchanged } from "./decision.ts"
import { reject } from "./errors.ts"
import type { DeclineReason, Event, TransferDebited } from "./events.ts"
import type { LedgerView, Payment } from "./ledger.ts"
import { creditExpired, type LedgerPolicy, redeliveryDelayMs, redeliveryHorizonMs } from "./policy.ts"
import type { SideEffect } from "./side-effects.ts"

const creditOf = (payment: Payment, correlationId: string, timestampMs: number): ApplyCredit => ({
  _tag: "ApplyCredit",
  tenantId: payment.tenantId,
  correlationId,
  timestampMs,
  paymentId: payment.paymentId,
  from: payment.from,
  to: payment.to,
  // A partial capture credits what was captured; a transfer captured its whole amount.
  amountMinor: payment.capturedAmountMinor,
  currency: payment.currency,
  paymentCreatedAtMs: payment.createdAtMs,
})

const redeliveryOf = (payment: Payment, correlationId: string, atMs: number, attempt: number): SideEffect => ({
  _tag: "Schedule",
  atMs,
  command: {
    _tag: "RedeliverCredit",
    tenantId: payment.tenantId,
    correlationId,
    timestampMs: atMs,
    paymentId: payment.paymentId,
    from: payment.from,
    attempt,
  },
})

/** The effects that move a pending payment on: deliver its credit now, and again later if nothing answers. */
export const deliveryEffects = (
  payment: Payment,
  correlationId: string,
  nowMs: number,
  attempt: number,
  policy: LedgerPolicy,
): ReadonlyArray<SideEffect> => [
  { _tag: "Deliver", command: creditOf(payment, correlationId, nowMs) },
  redeliveryOf(payment, correlationId, nowMs + redeliveryDelayMs(policy, attempt), attempt),
]

/** The debit of a transfer whose creditor another node holds: pending until the creditor answers. */
export const startSaga = (command: Transfer, debited: TransferDebited, policy: LedgerPolicy): Decision => {
  const payment: Payment = {
    tenantId: command.tenantId,
    paymentId: command.paymentId,
    from: command.from,
    to: command.to,
    amountMinor: command.amountMinor,
    currency: command.currency,
    status: "pending",
    reason: null,
    createdAtMs: command.timestampMs,
    capturedAmountMinor: command.amountMinor,
    holdExpiresAtMs: null,
    captureId: null,
    updatedAtMs: command.timestampMs,
    refundedAmountMinor: 0n,
    refunds: [],
  }
  return accept([debited], deliveryEffects(payment, command.correlationId, command.timestampMs, 1, policy))
}

/** A debit (a capture's) that makes `pending` a saga's state: its credit goes to the creditor's node. */
export const startSagaFor = (
  pending: Payment,
  events: ReadonlyArray<Event>,
  correlationId: string,
  nowMs: number,
  policy: LedgerPolicy,
): Decision => accept(events, deliveryEffects(pending, correlationId, nowMs, 1, policy))

const answerToDebtor = (command: ApplyCredit, reason: DeclineReason | null): SideEffect => {
  const meta = { tenantId: command.tenantId, correlationId: command.correlationId, timestampMs: command.timestampMs }
  return {
    _tag: "Deliver",
    command:
      reason === null
        ? { _tag: "SettleTransfer", ...meta, paymentId: command.paymentId, from: command.from }
        : { _tag: "ReverseTransfer", ...meta, paymentId: command.paymentId, from: command.from, reason },
  }
}

const refusal = (command: ApplyCredit, reason: DeclineReason): Decision =>
  accept(
    [
      {
        _tag: "CreditRefused",
        // Sequence 0: the refusal is about the delivery; the account (if any) does not change.
        ...envelope(command, command.to, command.paymentId, 0),
        from: command.from,
        amountMinor: command.amountMinor,
        currency: command.currency,
        reason,
      },
    ],
    [answerToDebtor(command, reason)],
  )

/**
 * The creditor's step. A delivery of a payment older than the idempotency window is refused unless
 * its credit is on record: past the window, the debtor's redeliveries would outlive any record.
 */
export const decideApplyCredit = (view: LedgerView, command: ApplyCredit, policy: LedgerPolicy): Decision => {
  const recorded = view.credit(command.tenantId, command.to, command.from, command.paymentId)
  if (recorded !== undefined && !creditExpired(recorded, command.timestampMs, policy)) {
    return accept([], [answerToDebtor(command, recorded.outcome === "applied" ? null : recorded.reason)])
  }
  if (command.paymentCreatedAtMs + policy.idempotencyRetentionMs <= command.timestampMs) {
    return refusal(command, "EXPIRED")
  }
  const creditor = view.account(command.tenantId, command.to)
  if (creditor === undefined) return refusal(command, "UNKNOWN_ACCOUNT")
  if (creditor.currency !== command.currency) return refusal(command, "CURRENCY_MISMATCH")
  return accept(
    [
      {
        _tag: "TransferCredited",
        ...envelope(command, command.to, command.paymentId, creditor.sequence + 1),
        from: command.from,
        amountMinor: command.amountMinor,
        currency: command.currency,
        delivered: true,
      },
    ],
    [answerToDebtor(command, null)],
  )
}

/** Settling or reversing a payment that is no longer pending is a duplicate answer: nothing to do. */
export const decideSagaEnd = (view: LedgerView, command: SettleTransfer | ReverseTransfer): Decision => {
  const debtor = view.account(command.tenantId, command.from)
  const payment = view.payment(command.tenantId, command.from, command.paymentId)
  if (debtor === undefined || payment === undefined) {
    return reject("UNKNOWN_PAYMENT", `payment ${command.paymentId} of ${command.from} does not exist`)
  }
  if (payment.status !== "pending") return unchanged
  const base = envelope(command, command.from, command.paymentId, debtor.sequence + 1)
  return accept(
    command._tag === "SettleTransfer"
      ? [{ _tag: "TransferSettled", ...base }]
      : [{ _tag: "TransferReversed", ...base, reason: command.reason }],
  )
}

/**
 * The debtor's timer. Past the redelivery horizon the payment stays pending, in doubt: the creditor
 * may have applied a credit whose answer never arrived, and only an operator can settle that.
 */
export const decideRedeliverCredit = (view: LedgerView, command: RedeliverCredit, policy: LedgerPolicy): Decision => {
  const payment = view.payment(command.tenantId, command.from, command.paymentId)
  if (payment === undefined || payment.status !== "pending") return unchanged
  if (payment.createdAtMs + redeliveryHorizonMs(policy) <= command.timestampMs) return unchanged
  return accept([], deliveryEffects(payment, command.correlationId, command.timestampMs, command.attempt + 1, policy))
}
