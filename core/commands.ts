/**
 * Commands: what a caller asks of the ledger, in the imperative. They arrive validated (ids,
 * currencies and amounts were checked at the edge) and carry the metadata their events inherit.
 */
import type { DeclineReason } from "./events.ts"
import type { AccountId, DepositId, PaymentId, TenantId } from "./ids.ts"
import type { Currency } from "./money.ts"

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
 * A transfer as its debtor shard sees it. `creditorLocal` says the creditor lives in the same
 * shard, so debit and credit can be one atomic record; otherwise the credit is a saga step.
 */
export interface Transfer extends CommandMeta {
  readonly _tag: "Transfer"
  readonly paymentId: PaymentId
  readonly from: AccountId
  readonly to: AccountId
  readonly amountMinor: bigint
  readonly currency: Currency
  readonly creditorLocal: boolean
}

/** Saga step on the creditor's shard; delivered at least once, applied at most once. */
export interface ApplyCredit extends CommandMeta {
  readonly _tag: "ApplyCredit"
  readonly paymentId: PaymentId
  readonly from: AccountId
  readonly to: AccountId
  readonly amountMinor: bigint
  readonly currency: Currency
}

/** Saga completion on the debtor's shard after the credit was applied. */
export interface SettleTransfer extends CommandMeta {
  readonly _tag: "SettleTransfer"
  readonly paymentId: PaymentId
  readonly from: AccountId
}

/** Saga compensation on the debtor's shard when the credit cannot be applied. */
export interface ReverseTransfer extends CommandMeta {
  readonly _tag: "ReverseTransfer"
  readonly paymentId: PaymentId
  readonly from: AccountId
  readonly reason: DeclineReason
}

export type Command = OpenAccount | Deposit | Transfer | ApplyCredit | SettleTransfer | ReverseTransfer

/** The account whose actor (mailbox, ordering) a command belongs to. */
export const commandAccount = (command: Command): AccountId => {
  switch (command._tag) {
    case "OpenAccount":
    case "Deposit":
      return command.accountId
    case "Transfer":
    case "SettleTransfer":
    case "ReverseTransfer":
      return command.from
    case "ApplyCredit":
      return command.to
  }
}
