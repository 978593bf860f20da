/**
 * Commands: what a caller (or the runtime, carrying out a side effect) asks of the ledger, in the
 * imperative. They arrive validated (ids, currencies and amounts were checked at the edge) and carry
 * the metadata their events inherit; `timestampMs` is the only clock the domain sees.
 */
import type { DeclineReason } from "./events.ts"
import type { AccountId, DepositId, PaymentId, TenantId } from "./ids.ts"
import { creditKey, depositKey, paymentKey } from "./ledger.ts"
import type { Currency } from "./money.ts"
import type { TenantPolicy } from "./tenant-policy.ts"

interface CommandMeta {
  readonly tenantId: TenantId
  readonly correlationId: string
  readonly timestampMs: number
}

export interface OpenAccount extends CommandMeta {
  readonly _tag: "OpenAccount"
  readonly accountId: AccountId
  readonly currency: Currency
  readonly floorMinor: bigint
}

export interface Deposit extends CommandMeta {
  readonly _tag: "Deposit"
  readonly accountId: AccountId
  readonly depositId: DepositId
  readonly amountMinor: bigint
  readonly currency: Currency
}

/**
 * A transfer as its debtor shard sees it. `creditorLocal` says this node holds the creditor's shard
 * and serves it, so debit and credit commit in one journal transaction (one record per shard);
 * otherwise the credit is delivered to the creditor's shard as a saga step after the debit commits.
 */
export interface Transfer extends CommandMeta {
  readonly _tag: "Transfer"
  readonly paymentId: PaymentId
  readonly from: AccountId
  readonly to: AccountId
  readonly amountMinor: bigint
  readonly currency: Currency
  readonly creditorLocal: boolean
  /** The tenant's rules and limits in force when the request arrived; none when absent. */
  readonly tenantPolicy?: TenantPolicy | undefined
}

/** Saga step on the creditor's shard; delivered at least once, applied at most once. */
export interface ApplyCredit extends CommandMeta {
  readonly _tag: "ApplyCredit"
  readonly paymentId: PaymentId
  readonly from: AccountId
  readonly to: AccountId
  readonly amountMinor: bigint
  readonly currency: Currency
  /** When the debtor created the payment: a delivery of a payment past its window is refused, not applied. */
  readonly paymentCreatedAtMs: number
}

/** Saga completion on the debtor's shard after the credit was applied. */
export interface SettleTransfer extends CommandMeta {
  readonly _tag: "SettleTransfer"
  readonly paymentId: PaymentId
  readonly from: AccountId
}

/** Saga compensation on the debtor's shard when the creditor refused the credit. */
export interface ReverseTransfer extends CommandMeta {
  readonly _tag: "ReverseTransfer"
  readonly paymentId: PaymentId
  readonly from: AccountId
  readonly reason: DeclineReason
}

/** Saga timer on the debtor's shard: if the payment is still pending, deliver its credit again. */
export interface RedeliverCredit extends CommandMeta {
  readonly _tag: "RedeliverCredit"
  readonly paymentId: PaymentId
  readonly from: AccountId
  /** 1 for the first redelivery; the delay before the next one grows with it. */
  readonly attempt: number
}

/** Holds `amountMinor` on the debtor for `holdMs`, to be captured, voided, or released when the hold lapses. */
export interface Authorize extends CommandMeta {
  readonly _tag: "Authorize"
  readonly paymentId: PaymentId
  readonly from: AccountId
  readonly to: AccountId
  readonly amountMinor: bigint
  readonly currency: Currency
  readonly holdMs: number
  /** As for a transfer. */
  readonly tenantPolicy?: TenantPolicy | undefined
}

/**
 * Moves `amount` (all of the authorization when null) to the creditor and releases the rest of the
 * hold. The amount is the request's decimal string in major units (checked for its form at the
 * edge): its currency is the authorization's, which only the decider knows. `creditorLocal` as for
 * a transfer; the runtime sets it.
 */
export interface Capture extends CommandMeta {
  readonly _tag: "Capture"
  readonly paymentId: PaymentId
  readonly from: AccountId
  readonly captureId: string
  readonly amount: string | null
  readonly creditorLocal: boolean
  /** The tenant's rates convert the credit when the creditor holds another currency. */
  readonly tenantPolicy?: TenantPolicy | undefined
}

/** Releases an authorization's whole hold; nothing moves. */
export interface Void extends CommandMeta {
  readonly _tag: "Void"
  readonly paymentId: PaymentId
  readonly from: AccountId
}

/** The hold's timer: releases an authorization still held once its `holdExpiresAtMs` has come. */
export interface ExpireHold extends CommandMeta {
  readonly _tag: "ExpireHold"
  readonly paymentId: PaymentId
  readonly from: AccountId
}

/**
 * Moves `amount` (all that is not refunded yet when null; the request's decimal string, as for a
 * capture) from the creditor back to the debtor of a settled payment. `creditorLocal` as for a
 * transfer; the runtime sets it.
 */
export interface Refund extends CommandMeta {
  readonly _tag: "Refund"
  readonly paymentId: PaymentId
  readonly from: AccountId
  readonly refundId: string
  readonly amount: string | null
  readonly creditorLocal: boolean
}

/**
 * A reviewer's decision on a payment a fraud rule sent to review. Approving a transfer captures it
 * whole at once, so `creditorLocal` is as for a transfer; the runtime sets it.
 */
export interface ReviewPayment extends CommandMeta {
  readonly _tag: "ReviewPayment"
  readonly paymentId: PaymentId
  readonly from: AccountId
  readonly decision: "approve" | "decline"
  readonly creditorLocal: boolean
  /** As for a capture. */
  readonly tenantPolicy?: TenantPolicy | undefined
}

export type Command =
  | OpenAccount
  | Deposit
  | Transfer
  | ApplyCredit
  | SettleTransfer
  | ReverseTransfer
  | RedeliverCredit
  | Authorize
  | Capture
  | Void
  | ExpireHold
  | Refund
  | ReviewPayment

/** The account whose actor (shard, ordering) a command belongs to. */
export const commandAccount = (command: Command): AccountId => {
  switch (command._tag) {
    case "OpenAccount":
    case "Deposit":
      return command.accountId
    case "Transfer":
    case "SettleTransfer":
    case "ReverseTransfer":
    case "RedeliverCredit":
    case "Authorize":
    case "Capture":
    case "Void":
    case "ExpireHold":
    case "Refund":
    case "ReviewPayment":
      return command.from
    case "ApplyCredit":
      return command.to
  }
}

/**
 * The key of the entry `decide` reads for a command: its idempotency record (a payment, deposit or
 * received credit). The runtime makes sure that entry is in memory, if it exists, before deciding.
 */
export const entryKeyRead = (command: Command): string | undefined => {
  switch (command._tag) {
    case "OpenAccount":
      return undefined
    case "Deposit":
      return depositKey(command.tenantId, command.accountId, command.depositId)
    case "Transfer":
    case "SettleTransfer":
    case "ReverseTransfer":
    case "RedeliverCredit":
    case "Authorize":
    case "Capture":
    case "Void":
    case "ExpireHold":
    case "Refund":
    case "ReviewPayment":
      return paymentKey(command.tenantId, command.from, command.paymentId)
    case "ApplyCredit":
      return creditKey(command.tenantId, command.to, command.from, command.paymentId)
  }
}
