/**
 * What recovery must resume from journaled state alone: every pending payment's credit is
 * delivered again (the creditor deduplicates), with redeliveries scheduled after it, and every
 * live hold's expiry (an authorization's, or a payment's in review) is scheduled at its time (at once if it lapsed while the node was
 * down).
 */
import { isHolding, type Payment } from "./ledger.ts"
import { expiryOf } from "./payment-lifecycle.ts"
import type { LedgerPolicy } from "./policy.ts"
import type { SideEffect } from "./side-effects.ts"
import { deliveryEffects } from "./transfer-saga.ts"

export const pendingEffects = (
  livePayments: Iterable<Payment>,
  nowMs: number,
  policy: LedgerPolicy,
): Array<SideEffect> => {
  const effects: Array<SideEffect> = []
  for (const payment of livePayments) {
    const correlationId = `resume:${payment.paymentId}`
    if (isHolding(payment)) effects.push(expiryOf(payment, correlationId))
    else if (payment.status === "pending") effects.push(...deliveryEffects(payment, correlationId, nowMs, 1, policy))
  }
  return effects
}
