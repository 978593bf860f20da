/**
 * The ledger's state: accounts and the entries that make commands idempotent (payments by their
 * debtor, deposits, credits received). Entities are immutable values; `Ledger` holds the current
 * version of each, keyed across tenants, and is what one shard keeps in memory.
 */
import type { DeclineReason } from "./events.ts"
import {
  type AccountId,
  accountKey,
  type DepositId,
  entryKey,
  lengthPrefixed,
  type PaymentId,
  type TenantId,
} from "./ids.ts"
import type { Currency } from "./money.ts"

export interface Account {
  readonly tenantId: TenantId
  readonly accountId: AccountId
  readonly currency: Currency
  /** The lowest the balance may go; negative for an overdraft. */
  readonly floorMinor: bigint
  readonly balanceMinor: bigint
  readonly status: "open"
  /** Sequence number of the last event applied to this account. */
  readonly sequence: number
}

export type PaymentStatus = "pending" | "settled" | "declined"

/** A transfer as its debtor account records it; keyed by (tenant, debtor, paymentId). */
export interface Payment {
  readonly tenantId: TenantId
  readonly paymentId: PaymentId
  readonly from: AccountId
  readonly to: AccountId
  readonly amountMinor: bigint
  readonly currency: Currency
  readonly status: PaymentStatus
  readonly reason: DeclineReason | null
  readonly createdAtMs: number
}

export interface Deposit {
  readonly tenantId: TenantId
  readonly accountId: AccountId
  readonly depositId: DepositId
  readonly amountMinor: bigint
  readonly currency: Currency
}

/** A credit received by `to` for payment `paymentId` of `from`; its key deduplicates deliveries. */
export interface Credit {
  readonly tenantId: TenantId
  readonly paymentId: PaymentId
  readonly from: AccountId
  readonly to: AccountId
  readonly amountMinor: bigint
}

export type Entity =
  | { readonly kind: "account"; readonly value: Account }
  | { readonly kind: "payment"; readonly value: Payment }
  | { readonly kind: "deposit"; readonly value: Deposit }
  | { readonly kind: "credit"; readonly value: Credit }

export const paymentKey = (tenantId: TenantId, from: AccountId, paymentId: PaymentId): string =>
  entryKey(tenantId, from, paymentId)
export const depositKey = (tenantId: TenantId, accountId: AccountId, depositId: DepositId): string =>
  entryKey(tenantId, accountId, depositId)
export const creditKey = (tenantId: TenantId, to: AccountId, from: AccountId, paymentId: PaymentId): string =>
  entryKey(tenantId, to, `${lengthPrefixed(from)}\u0000${paymentId}`)

/** The key under which an entity is stored, unique across kinds. */
export const entityKey = (entity: Entity): string => {
  switch (entity.kind) {
    case "account":
      return `a\u0000${accountKey(entity.value.tenantId, entity.value.accountId)}`
    case "payment":
      return `p\u0000${paymentKey(entity.value.tenantId, entity.value.from, entity.value.paymentId)}`
    case "deposit":
      return `d\u0000${depositKey(entity.value.tenantId, entity.value.accountId, entity.value.depositId)}`
    case "credit":
      return `c\u0000${creditKey(entity.value.tenantId, entity.value.to, entity.value.from, entity.value.paymentId)}`
  }
}

/** Read access to a ledger, all that `decide` and `evolve` need. */
export interface LedgerView {
  account(tenantId: TenantId, accountId: AccountId): Account | undefined
  payment(tenantId: TenantId, from: AccountId, paymentId: PaymentId): Payment | undefined
  deposit(tenantId: TenantId, accountId: AccountId, depositId: DepositId): Deposit | undefined
  credit(tenantId: TenantId, to: AccountId, from: AccountId, paymentId: PaymentId): Credit | undefined
}

/** The in-memory ledger of one shard. */
export class Ledger implements LedgerView {
  readonly accounts = new Map<string, Account>()
  readonly payments = new Map<string, Payment>()
  readonly deposits = new Map<string, Deposit>()
  readonly credits = new Map<string, Credit>()

  account(tenantId: TenantId, accountId: AccountId): Account | undefined {
    return this.accounts.get(accountKey(tenantId, accountId))
  }
  payment(tenantId: TenantId, from: AccountId, paymentId: PaymentId): Payment | undefined {
    return this.payments.get(paymentKey(tenantId, from, paymentId))
  }
  deposit(tenantId: TenantId, accountId: AccountId, depositId: DepositId): Deposit | undefined {
    return this.deposits.get(depositKey(tenantId, accountId, depositId))
  }
  credit(tenantId: TenantId, to: AccountId, from: AccountId, paymentId: PaymentId): Credit | undefined {
    return this.credits.get(creditKey(tenantId, to, from, paymentId))
  }

  /** Stores the new version of an entity (from `evolve`, or from a snapshot). */
  put(entity: Entity): void {
    switch (entity.kind) {
      case "account": {
        const value = entity.value
        this.accounts.set(accountKey(value.tenantId, value.accountId), value)
        return
      }
      case "payment": {
        const value = entity.value
        this.payments.set(paymentKey(value.tenantId, value.from, value.paymentId), value)
        return
      }
      case "deposit": {
        const value = entity.value
        this.deposits.set(depositKey(value.tenantId, value.accountId, value.depositId), value)
        return
      }
      case "credit": {
        const value = entity.value
        this.credits.set(creditKey(value.tenantId, value.to, value.from, value.paymentId), value)
        return
      }
    }
  }

  *entities(): Iterable<Entity> {
    for (const value of this.accounts.values()) yield { kind: "account", value }
    for (const value of this.payments.values()) yield { kind: "payment", value }
    for (const value of this.deposits.values()) yield { kind: "deposit", value }
    for (const value of this.credits.values()) yield { kind: "credit", value }
  }
}
