/**
 * Fraud screening in the payment path, and the review it may ask for. A transfer or authorization
 * is screened against its tenant's policy after its own checks (idempotency, accounts, currency)
 * and before its funds: a broken limit is LIMIT_EXCEEDED (nothing recorded); a declining rule
 * records a decline with reason RISK_DECLINED and the rule; a reviewing rule places the hold and
 * records the payment in `review`, where `reviewPayment` approves it (an authorization; a transfer
 * is then captured whole at once) or declines it (the hold is released), or its hold lapses.
 *
 *   review -> authorized | declined | expired
 */
import type { Authorize, ReviewPayment, Transfer } from "./commands.ts"
import { accept, type Decision, type Envelope, envelope, unchanged } from "./decision.ts"
import { isRejection, type Rejection, reject } from "./errors.ts"
import type { Event, PaymentHeldForReview } from "./events.ts"
import { type Account, availableOf, type LedgerView, type Payment } from "./ledger.ts"
import type { BookedConversion } from "./payment-fx.ts"
import { captureEvents, expiryOf } from "./payment-lifecycle.ts"
import { type LedgerPolicy, paymentExpired } from "./policy.ts"
import { screenPayment } from "./tenant-policy.ts"

/**
 * The decision screening makes for a payment, or undefined when it is approved and its own
 * decider goes on. `base` is the envelope of the payment's first event.
 */
export const screenedDecision = (
  debtor: Account,
  command: Transfer | Authorize,
  base: Envelope,
  debitFx: BookedConversion | undefined,
): Decision | undefined => {
  const verdict = screenPayment(command.tenantPolicy, debtor, command, command.timestampMs)
  if (isRejection(verdict)) return verdict
  if (verdict.outcome === "approve") return undefined
  const fields = { to: command.to, amountMinor: command.amountMinor, currency: command.currency }
  if (verdict.outcome === "decline") {
    return accept([{ _tag: "TransferDeclined", ...base, ...fields, reason: "RISK_DECLINED", rule: verdict.rule }])
  }
  if (availableOf(debtor) - (debitFx?.amountMinor ?? command.amountMinor) < debtor.floorMinor) {
    return accept([{ _tag: "TransferDeclined", ...base, ...fields, reason: "INSUFFICIENT_FUNDS" }])
  }
  const policy = command.tenantPolicy
  const holdMs = command._tag === "Authorize" ? command.holdMs : (policy?.reviewHoldMs as number)
  const held: PaymentHeldForReview = {
    _tag: "PaymentHeldForReview",
    ...base,
    ...fields,
    holdExpiresAtMs: command.timestampMs + holdMs,
    rule: verdict.rule,
    captureOnApproval: command._tag === "Transfer",
    ...(policy?.history === undefined ? {} : { history: policy.history }),
    ...(debitFx === undefined ? {} : { fx: { debit: debitFx } }),
  }
  const expiry = expiryOf(
    {
      tenantId: command.tenantId,
      paymentId: command.paymentId,
      from: command.from,
      holdExpiresAtMs: held.holdExpiresAtMs,
    },
    command.correlationId,
  )
  return accept([held], [expiry])
}

const invalidReview = (payment: Payment, decision: string): Rejection =>
  reject("INVALID_STATE", `payment ${payment.paymentId} is ${payment.status}: it cannot be reviewed (${decision})`)

/** Whether a reviewer already took `decision` on the payment: a retry answers it as it is now. */
const reviewedAs = (payment: Payment, decision: ReviewPayment["decision"]): boolean => {
  if (payment.risk?.outcome !== "review" || payment.status === "review") return false
  const declined = payment.status === "declined" && payment.reason === "RISK_DECLINED"
  return decision === "decline" ? declined : !declined && payment.status !== "expired"
}

/**
 * With `creditorLocal`, `view` sees the creditor's account too: approving a transfer captures it in
 * the same journal record, as a transfer commits.
 */
export const decideReview = (view: LedgerView, command: ReviewPayment, policy: LedgerPolicy): Decision => {
  const debtor = view.account(command.tenantId, command.from)
  const payment = view.payment(command.tenantId, command.from, command.paymentId)
  if (debtor === undefined || payment === undefined || paymentExpired(payment, command.timestampMs, policy)) {
    return reject("UNKNOWN_PAYMENT", `payment ${command.paymentId} of ${command.from} does not exist`)
  }
  if (payment.status !== "review") {
    return reviewedAs(payment, command.decision) ? unchanged : invalidReview(payment, command.decision)
  }
  const reviewed: Event = {
    _tag: "PaymentReviewed",
    ...envelope(command, command.from, command.paymentId, debtor.sequence + 1),
    decision: command.decision,
  }
  if (command.decision === "decline" || payment.captureOnApproval !== true) return accept([reviewed])
  // A transfer approved: its capture follows in the same record, whole, under the payment's own id.
  const authorized: Payment = { ...payment, status: "authorized" }
  const approvedDebtor: Account = { ...debtor, sequence: debtor.sequence + 1 }
  const capture = captureEvents(
    view,
    command,
    approvedDebtor,
    authorized,
    payment.amountMinor,
    payment.paymentId,
    policy,
  )
  if (isRejection(capture)) return capture
  return accept([reviewed, ...capture.events], capture.effects)
}
