/**
 * Identifiers: branded strings validated once at the edge (1 to 128 characters), then trusted.
 * The shard of an account is a stable hash of its tenant and id, the same on every node.
 */
import { Schema } from "effect"

const idText = Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(128))

export const TenantId = Schema.String.pipe(Schema.check(Schema.isMinLength(1)), Schema.brand("TenantId"))
export type TenantId = typeof TenantId.Type
export const AccountId = idText.pipe(Schema.brand("AccountId"))
export type AccountId = typeof AccountId.Type
export const PaymentId = idText.pipe(Schema.brand("PaymentId"))
export type PaymentId = typeof PaymentId.Type
export const DepositId = idText.pipe(Schema.brand("DepositId"))
export type DepositId = typeof DepositId.Type

export const idLengthMax = 128

/** True for a string that may be used as an account, payment or deposit id. */
export const isIdText = (value: unknown): value is string =>
  typeof value === "string" && value.length >= 1 && value.length <= idLengthMax

/** Key of an account across tenants; the NUL separator cannot occur inside a JSON-decoded id pair ambiguously because tenant ids never contain it. */
export const accountKey = (tenantId: TenantId, accountId: AccountId): string => `${tenantId}\u0000${accountId}`

/**
 * Key of an entry (payment, deposit, received credit) owned by one account. Ids may contain any
 * character, NUL included, so the account id is length-prefixed: joined by NUL alone, account `x`
 * with entry `y\0z` and account `x\0y` with entry `z` would share a key.
 */
export const entryKey = (tenantId: TenantId, accountId: AccountId, entryId: string): string =>
  `${tenantId}\u0000${lengthPrefixed(accountId)}\u0000${entryId}`

/** A part of a composite key that can be told apart from what follows it, whatever it contains. */
export const lengthPrefixed = (part: string): string => `${part.length}:${part}`

/**
 * FNV-1a over the UTF-16 code units of tenant and account: cheap, stable across processes and
 * platforms, and spreads sequential ids evenly enough for shard placement.
 */
export const shardOf = (tenantId: TenantId, accountId: AccountId, shardCount: number): number => {
  let hash = 0x811c9dc5
  const text = accountKey(tenantId, accountId)
  for (let index = 0; index < text.length; index++) {
    hash ^= text.charCodeAt(index)
    hash = Math.imul(hash, 0x01000193)
  }
  return (hash >>> 0) % shardCount
}
