/**
 * The ledger's policy: how long idempotency keys are honoured and how a cross-shard credit is
 * redelivered. Configuration, passed to `decide`; the runtime reads no other rule of the domain.
 */
import { type Credit, type Deposit, type Entry, isHolding, type Payment } from "./ledger.ts"

export interface LedgerPolicy {
  /** A payment or deposit key takes effect once within this window from its first use; after it, the key may be reused. */
  readonly idempotencyRetentionMs: number
  /** First delay before a pending cross-shard credit is delivered again; doubles on every attempt... */
  readonly creditRedeliveryDelayMs: number
  /** ...up to this delay. */
  readonly creditRedeliveryDelayMsMax: number
}

export const defaultLedgerPolicy: LedgerPolicy = {
  idempotencyRetentionMs: 24 * 60 * 60 * 1000,
  creditRedeliveryDelayMs: 200,
  creditRedeliveryDelayMsMax: 30_000,
}

/**
 * How long a creditor remembers what it did with a delivered credit: twice the idempotency window.
 * The debtor redelivers a pending credit for at most `redeliveryHorizonMs`, less than this, so a
 * redelivery always finds the record of an earlier application and is never applied twice.
 */
export const creditRetentionMs = (policy: LedgerPolicy): number => 2 * policy.idempotencyRetentionMs

/** Redeliveries stop this long after the payment was created (one longest delay short of the credit's retention). */
export const redeliveryHorizonMs = (policy: LedgerPolicy): number =>
  creditRetentionMs(policy) - 2 * policy.creditRedeliveryDelayMsMax

/** The delay before redelivery attempt `attempt` (1, 2, ...). */
export const redeliveryDelayMs = (policy: LedgerPolicy, attempt: number): number =>
  Math.min(policy.creditRedeliveryDelayMs * 2 ** Math.min(attempt - 1, 30), policy.creditRedeliveryDelayMsMax)

/**
 * A payment past its window is as if absent. A live one never expires: a pending payment's saga
 * still needs it, and an authorization may be captured until its hold ends, which can be long
 * after the window. An ended one's window runs from its last change, so a retry of the capture or
 * void that ended it answers as the original did; the segment holding that version is kept at
 * least as long (a segment outlives the window from its save, which came after the change).
 */
export const paymentExpired = (payment: Payment, nowMs: number, policy: LedgerPolicy): boolean =>
  payment.status !== "pending" &&
  !isHolding(payment) &&
  Math.max(payment.createdAtMs, payment.updatedAtMs) + policy.idempotencyRetentionMs <= nowMs

export const depositExpired = (deposit: Deposit, nowMs: number, policy: LedgerPolicy): boolean =>
  deposit.createdAtMs + policy.idempotencyRetentionMs <= nowMs

export const creditExpired = (credit: Credit, nowMs: number, policy: LedgerPolicy): boolean =>
  credit.createdAtMs + creditRetentionMs(policy) <= nowMs

/** An entry past its window is as if absent: its key may be used again. */
export const isExpired = (entry: Entry, nowMs: number, policy: LedgerPolicy): boolean => {
  switch (entry.kind) {
    case "payment":
      return paymentExpired(entry.value, nowMs, policy)
    case "deposit":
      return depositExpired(entry.value, nowMs, policy)
    case "credit":
      return creditExpired(entry.value, nowMs, policy)
  }
}
