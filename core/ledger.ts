/**
 * The ledger's state: accounts, and the entries that make commands idempotent (payments by their
 * debtor, deposits, credits received). Entities are immutable values; `Ledger` holds the current
 * version of each that one shard keeps in memory. Which entries stay in memory is the runtime's
 * choice (a bounded recent set); `decide` and `evolve` only read through `LedgerView`.
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
import { holdOf, type PaymentFx } from "./payment-fx.ts"
import type { DebtorHistory } from "./risk.ts"

export interface Account {
  readonly tenantId: TenantId
  readonly accountId: AccountId
  readonly currency: Currency
  /** The lowest the balance may go; negative for an overdraft. */
  readonly floorMinor: bigint
  readonly balanceMinor: bigint
  /** Sum of the live authorizations' holds on this account: `balanceMinor - heldMinor` is what it may spend. */
  readonly heldMinor: bigint
  readonly status: "open"
  /** Sequence number of the last event applied to this account. */
  readonly sequence: number
  /** Its recent payments, kept only when its tenant's fraud rules or limits read them. */
  readonly recent?: DebtorHistory
}

/**
 * authorized: the amount is held on the debtor, waiting for a capture, a void or the hold's expiry.
 * pending: captured (or transferred) and debited, its credit on the way to another node's shard.
 * review: a fraud rule asked for a person's decision; the amount is held meanwhile, like an
 * authorization, until `reviewPayment` approves or declines it or the hold lapses.
 */
export type PaymentStatus =
  | "review"
  | "authorized"
  | "pending"
  | "settled"
  | "declined"
  | "voided"
  | "expired"
  | "partially_refunded"
  | "refunded"

/** One refund of a payment, by its idempotency key. */
export interface Refund {
  readonly refundId: string
  readonly amountMinor: bigint
}

/**
 * A transfer or an authorization as its debtor account records it; keyed by (tenant, debtor,
 * paymentId). A transfer is an authorization captured in full at once.
 */
export interface Payment {
  readonly tenantId: TenantId
  readonly paymentId: PaymentId
  readonly from: AccountId
  readonly to: AccountId
  /** The amount asked for (authorized). */
  readonly amountMinor: bigint
  readonly currency: Currency
  readonly status: PaymentStatus
  readonly reason: DeclineReason | null
  readonly createdAtMs: number
  /** What left the debtor: 0 until captured; the whole amount for a transfer. */
  readonly capturedAmountMinor: bigint
  /** When an authorization's hold lapses; null for a transfer. */
  readonly holdExpiresAtMs: number | null
  /** The idempotency key of the capture, once captured; null for a transfer. */
  readonly captureId: string | null
  /** When this version was recorded: an ended payment's idempotency window runs from its last change. */
  readonly updatedAtMs: number
  /** What went back to the debtor, in total and by refund; never more than was captured. */
  readonly refundedAmountMinor: bigint
  readonly refunds: ReadonlyArray<Refund>
  /** The fraud rule that fired, if one did: it declined the payment or sent it to review. */
  readonly risk?: PaymentRisk
  /** A transfer held for review: its approval captures it whole at once. */
  readonly captureOnApproval?: boolean
  /** Its conversions, when the debtor's or the creditor's account holds another currency than `currency`. */
  readonly fx?: PaymentFx
}

export interface PaymentRisk {
  readonly outcome: "review" | "decline"
  readonly rule: string
}

/** The amount an authorization holds on its debtor while it lives, in the debtor's currency. */
export const heldBy = (payment: Payment): bigint => (isHolding(payment) ? holdOf(payment) : 0n)

/** Whether the payment holds its amount on the debtor: an authorization, or a payment waiting for review. */
export const isHolding = (payment: Payment): boolean => payment.status === "authorized" || payment.status === "review"

/** What an account may spend: its balance less its holds, down to its floor. */
export const availableOf = (account: Account): bigint => account.balanceMinor - account.heldMinor

export interface Deposit {
  readonly tenantId: TenantId
  readonly accountId: AccountId
  readonly depositId: DepositId
  readonly amountMinor: bigint
  readonly currency: Currency
  readonly createdAtMs: number
}

/**
 * What the creditor's shard did with a delivered credit of payment `paymentId` of `from`: applied
 * it, or refused it (with the reason). Its key deduplicates redeliveries, so a credit is applied at
 * most once and a refused one is never applied later.
 */
export interface Credit {
  readonly tenantId: TenantId
  readonly paymentId: PaymentId
  readonly from: AccountId
  readonly to: AccountId
  readonly amountMinor: bigint
  readonly outcome: "applied" | "refused"
  readonly reason: DeclineReason | null
  readonly createdAtMs: number
}

export type Entry =
  | { readonly kind: "payment"; readonly value: Payment }
  | { readonly kind: "deposit"; readonly value: Deposit }
  | { readonly kind: "credit"; readonly value: Credit }

export type Entity = { readonly kind: "account"; readonly value: Account } | Entry

/**
 * A key function remembering its last answer: one command asks for the same entry key several
 * times (the runtime's read-ahead, `decide`, the snapshot), always with the same string objects.
 */
const lastKeyOf = <A extends string, B extends string, C extends string>(key: (a: A, b: B, c: C) => string) => {
  let lastA: A | undefined
  let lastB: B | undefined
  let lastC: C | undefined
  let last = ""
  return (a: A, b: B, c: C): string => {
    if (a !== lastA || b !== lastB || c !== lastC) {
      last = key(a, b, c)
      lastA = a
      lastB = b
      lastC = c
    }
    return last
  }
}

export const paymentKey: (tenantId: TenantId, from: AccountId, paymentId: PaymentId) => string = lastKeyOf(
  (tenantId, from, paymentId) => `p\u0000${entryKey(tenantId, from, paymentId)}`,
)
export const depositKey: (tenantId: TenantId, accountId: AccountId, depositId: DepositId) => string = lastKeyOf(
  (tenantId, accountId, depositId) => `d\u0000${entryKey(tenantId, accountId, depositId)}`,
)
export const creditKey = (tenantId: TenantId, to: AccountId, from: AccountId, paymentId: PaymentId): string =>
  `c\u0000${entryKey(tenantId, to, `${lengthPrefixed(from)}\u0000${paymentId}`)}`

export const accountKeyOf = (account: Account): string => accountKey(account.tenantId, account.accountId)

/** The key under which an entity is stored, unique across kinds. */
export const entityKey = (entity: Entity): string => {
  switch (entity.kind) {
    case "account":
      return `a\u0000${accountKey(entity.value.tenantId, entity.value.accountId)}`
    case "payment":
      return paymentKey(entity.value.tenantId, entity.value.from, entity.value.paymentId)
    case "deposit":
      return depositKey(entity.value.tenantId, entity.value.accountId, entity.value.depositId)
    case "credit":
      return creditKey(entity.value.tenantId, entity.value.to, entity.value.from, entity.value.paymentId)
  }
}

/**
 * A live entry is one whose story is not over: an authorization (or a payment in review) holding
 * funds, or a cross-shard payment still pending. Live entries
 * are never evicted from memory and every snapshot saves them whole, so recovery has them at once.
 */
export const isLive = (entry: Entry): boolean =>
  entry.kind === "payment" && (entry.value.status === "pending" || isHolding(entry.value))

/** Read access to a ledger, all that `decide` and `evolve` need. */
export interface LedgerView {
  account(tenantId: TenantId, accountId: AccountId): Account | undefined
  payment(tenantId: TenantId, from: AccountId, paymentId: PaymentId): Payment | undefined
  deposit(tenantId: TenantId, accountId: AccountId, depositId: DepositId): Deposit | undefined
  credit(tenantId: TenantId, to: AccountId, from: AccountId, paymentId: PaymentId): Credit | undefined
}

/**
 * Accounts by tenant, then by id: two map lookups with the command's own id strings, whose hashes
 * V8 keeps, instead of building a combined key string on every read.
 */
export class AccountMap {
  private readonly byTenant = new Map<TenantId, Map<AccountId, Account>>()

  /** Summed over tenants when asked (gauges, tests), so that `set` does no bookkeeping. */
  get size(): number {
    let count = 0
    for (const accounts of this.byTenant.values()) count += accounts.size
    return count
  }

  get(tenantId: TenantId, accountId: AccountId): Account | undefined {
    return this.byTenant.get(tenantId)?.get(accountId)
  }

  has(account: Account): boolean {
    return this.byTenant.get(account.tenantId)?.has(account.accountId) === true
  }

  set(account: Account): void {
    let accounts = this.byTenant.get(account.tenantId)
    if (accounts === undefined) {
      accounts = new Map()
      this.byTenant.set(account.tenantId, accounts)
    }
    accounts.set(account.accountId, account)
  }

  *values(): Iterable<Account> {
    for (const accounts of this.byTenant.values()) yield* accounts.values()
  }
}

/** The in-memory ledger of one shard: every account, and the entries the runtime keeps. */
export class Ledger implements LedgerView {
  readonly accounts = new AccountMap()
  /** Entries by `entityKey`; insertion order is the order they were last created, which eviction follows. */
  readonly entries = new Map<string, Entry>()

  account(tenantId: TenantId, accountId: AccountId): Account | undefined {
    return this.accounts.get(tenantId, accountId)
  }
  payment(tenantId: TenantId, from: AccountId, paymentId: PaymentId): Payment | undefined {
    return this.entries.get(paymentKey(tenantId, from, paymentId))?.value as Payment | undefined
  }
  deposit(tenantId: TenantId, accountId: AccountId, depositId: DepositId): Deposit | undefined {
    return this.entries.get(depositKey(tenantId, accountId, depositId))?.value as Deposit | undefined
  }
  credit(tenantId: TenantId, to: AccountId, from: AccountId, paymentId: PaymentId): Credit | undefined {
    return this.entries.get(creditKey(tenantId, to, from, paymentId))?.value as Credit | undefined
  }

  /** Stores the new version of an entity (from `evolve`, a snapshot, or a lookup in the durable store). */
  put(entity: Entity): void {
    if (entity.kind === "account") this.accounts.set(entity.value)
    else this.entries.set(entityKey(entity), entity)
  }

  /** `put` for a caller that already has the entity's key ("" for an account, which needs none). */
  putKeyed(key: string, entity: Entity): void {
    if (entity.kind === "account") this.accounts.set(entity.value)
    else this.entries.set(key, entity)
  }

  *entities(): Iterable<Entity> {
    for (const value of this.accounts.values()) yield { kind: "account", value }
    yield* this.entries.values()
  }
}
