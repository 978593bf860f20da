/**
 * Records and entities used by the port contract suites: realistic values with bigints of every
 * size the ledger allows, so an adapter that loses precision or fields fails the round trip.
 */
import type { Event, JournalRecord } from "../../core/events.ts"
import type { AccountId, DepositId, PaymentId, TenantId } from "../../core/ids.ts"
import type { Entity } from "../../core/ledger.ts"
import type { Currency } from "../../core/money.ts"

export const tenant = "contract-tenant" as TenantId
export const otherTenant = "contract-other" as TenantId
const usd = "USD" as Currency

export const depositRecord = (accountId: string, sequence: number, amountMinor: bigint): JournalRecord => {
  const event: Event = {
    _tag: "FundsDeposited",
    schemaVersion: 1,
    tenantId: tenant,
    accountId: accountId as AccountId,
    paymentId: `dep-${sequence}`,
    correlationId: `corr-${sequence}`,
    sequence,
    timestampMs: 1_700_000_000_000 + sequence,
    amountMinor,
    currency: usd,
  }
  return { events: [event] }
}

export const accountEntity = (
  accountId: string,
  balanceMinor: bigint,
  sequence: number,
  tenantId = tenant,
): Entity => ({
  kind: "account",
  value: {
    tenantId,
    accountId: accountId as AccountId,
    currency: usd,
    floorMinor: -500n,
    balanceMinor,
    heldMinor: 0n,
    status: "open",
    sequence,
  },
})

export const paymentEntity = (paymentId: string, status: "pending" | "settled" | "declined"): Entity => ({
  kind: "payment",
  value: {
    tenantId: tenant,
    paymentId: paymentId as PaymentId,
    from: "acc-1" as AccountId,
    to: "acc-2" as AccountId,
    amountMinor: 999_999_999_999_999_999_99n,
    currency: usd,
    status,
    reason: status === "declined" ? "INSUFFICIENT_FUNDS" : null,
    createdAtMs: 1_700_000_000_123,
    capturedAmountMinor: status === "declined" ? 0n : 999_999_999_999_999_999_99n,
    holdExpiresAtMs: null,
    captureId: null,
    updatedAtMs: 1_700_000_000_123,
    refundedAmountMinor: 0n,
    refunds: [],
  },
})

export const creditEntity = (paymentId: string): Entity => ({
  kind: "credit",
  value: {
    tenantId: tenant,
    paymentId: paymentId as PaymentId,
    from: "acc-1" as AccountId,
    to: "acc-2" as AccountId,
    amountMinor: 1n,
    outcome: "applied",
    reason: null,
    createdAtMs: 1_700_000_000_456,
  },
})

export const depositEntity = (depositId: string): Entity => ({
  kind: "deposit",
  value: {
    tenantId: tenant,
    accountId: "acc-1" as AccountId,
    depositId: depositId as DepositId,
    amountMinor: 12_345n,
    currency: usd,
    createdAtMs: 1_700_000_000_789,
  },
})
