/**
 * `decide`: validates a command against the current state and returns the events it causes, or a
 * rejection that changes nothing. Pure and synchronous. A retry of an already-applied idempotent
 * command returns no events; the caller answers from the state the original left behind.
 */
import type {
  ApplyCredit,
  Command,
  Deposit,
  OpenAccount,
  ReverseTransfer,
  SettleTransfer,
  Transfer,
} from "./commands.ts"
import { type Rejection, reject } from "./errors.ts"
import { type Event, eventSchemaVersion } from "./events.ts"
import type { AccountId, TenantId } from "./ids.ts"
import type { Account, LedgerView } from "./ledger.ts"

export type Decision = Rejection | ReadonlyArray<Event>

const envelope = (
  command: Command,
  accountId: AccountId,
  paymentId: string | null,
  sequence: number,
): {
  schemaVersion: number
  tenantId: TenantId
  accountId: AccountId
  paymentId: string | null
  correlationId: string
  sequence: number
  timestampMs: number
} => ({
  schemaVersion: eventSchemaVersion,
  tenantId: command.tenantId,
  accountId,
  paymentId,
  correlationId: command.correlationId,
  sequence,
  timestampMs: command.timestampMs,
})

const unknownAccount = (accountId: AccountId): Rejection =>
  reject("UNKNOWN_ACCOUNT", `account ${accountId} does not exist`)

const decideOpenAccount = (view: LedgerView, command: OpenAccount): Decision => {
  if (view.account(command.tenantId, command.accountId) !== undefined) {
    return reject("ACCOUNT_EXISTS", `account ${command.accountId} already exists`)
  }
  // An account opens at zero, so a positive floor would open it already below its floor.
  if (command.floorMinor > 0n) return reject("INVALID_REQUEST", "floor must be zero or negative (an overdraft limit)")
  return [
    {
      _tag: "AccountOpened",
      ...envelope(command, command.accountId, null, 1),
      currency: command.currency,
      floorMinor: command.floorMinor,
    },
  ]
}

const decideDeposit = (view: LedgerView, command: Deposit): Decision => {
  const account = view.account(command.tenantId, command.accountId)
  if (account === undefined) return unknownAccount(command.accountId)
  const previous = view.deposit(command.tenantId, command.accountId, command.depositId)
  if (previous !== undefined) {
    const same = previous.amountMinor === command.amountMinor && previous.currency === command.currency
    return same ? [] : reject("IDEMPOTENCY_CONFLICT", `deposit ${command.depositId} was made with other fields`)
  }
  if (account.currency !== command.currency) {
    return reject("CURRENCY_MISMATCH", `account ${command.accountId} holds ${account.currency}`)
  }
  return [
    {
      _tag: "FundsDeposited",
      ...envelope(command, command.accountId, command.depositId, account.sequence + 1),
      amountMinor: command.amountMinor,
      currency: command.currency,
    },
  ]
}

const checkCurrency = (account: Account, command: Transfer): Rejection | undefined =>
  account.currency === command.currency
    ? undefined
    : reject("CURRENCY_MISMATCH", `account ${account.accountId} holds ${account.currency}`)

const decideTransfer = (view: LedgerView, command: Transfer): Decision => {
  const debtor = view.account(command.tenantId, command.from)
  if (debtor === undefined) return unknownAccount(command.from)
  const previous = view.payment(command.tenantId, command.from, command.paymentId)
  if (previous !== undefined) {
    const same =
      previous.to === command.to &&
      previous.amountMinor === command.amountMinor &&
      previous.currency === command.currency
    return same ? [] : reject("IDEMPOTENCY_CONFLICT", `payment ${command.paymentId} was made with other fields`)
  }
  if (command.from === command.to) return reject("INVALID_REQUEST", "a transfer needs two different accounts")
  const debtorMismatch = checkCurrency(debtor, command)
  if (debtorMismatch !== undefined) return debtorMismatch
  const creditor = command.creditorLocal ? view.account(command.tenantId, command.to) : undefined
  if (command.creditorLocal) {
    if (creditor === undefined) return unknownAccount(command.to)
    const creditorMismatch = checkCurrency(creditor, command)
    if (creditorMismatch !== undefined) return creditorMismatch
  }
  const debtorEnvelope = envelope(command, command.from, command.paymentId, debtor.sequence + 1)
  const transfer = { to: command.to, amountMinor: command.amountMinor, currency: command.currency }
  if (debtor.balanceMinor - command.amountMinor < debtor.floorMinor) {
    return [{ _tag: "TransferDeclined", ...debtorEnvelope, ...transfer, reason: "INSUFFICIENT_FUNDS" }]
  }
  const debited: Event = { _tag: "TransferDebited", ...debtorEnvelope, ...transfer, settled: creditor !== undefined }
  if (creditor === undefined) return [debited]
  return [
    debited,
    {
      _tag: "TransferCredited",
      ...envelope(command, command.to, command.paymentId, creditor.sequence + 1),
      from: command.from,
      amountMinor: command.amountMinor,
      currency: command.currency,
    },
  ]
}

const decideApplyCredit = (view: LedgerView, command: ApplyCredit): Decision => {
  if (view.credit(command.tenantId, command.to, command.from, command.paymentId) !== undefined) return []
  const creditor = view.account(command.tenantId, command.to)
  if (creditor === undefined) return unknownAccount(command.to)
  if (creditor.currency !== command.currency) {
    return reject("CURRENCY_MISMATCH", `account ${command.to} holds ${creditor.currency}`)
  }
  return [
    {
      _tag: "TransferCredited",
      ...envelope(command, command.to, command.paymentId, creditor.sequence + 1),
      from: command.from,
      amountMinor: command.amountMinor,
      currency: command.currency,
    },
  ]
}

/** Settling or reversing a payment that is no longer pending is a duplicate delivery: no events. */
const decideSagaEnd = (view: LedgerView, command: SettleTransfer | ReverseTransfer): Decision => {
  const debtor = view.account(command.tenantId, command.from)
  const payment = view.payment(command.tenantId, command.from, command.paymentId)
  if (debtor === undefined || payment === undefined) {
    return reject("UNKNOWN_PAYMENT", `payment ${command.paymentId} of ${command.from} does not exist`)
  }
  if (payment.status !== "pending") return []
  const base = envelope(command, command.from, command.paymentId, debtor.sequence + 1)
  return command._tag === "SettleTransfer"
    ? [{ _tag: "TransferSettled", ...base }]
    : [{ _tag: "TransferReversed", ...base, reason: command.reason }]
}

export const decide = (view: LedgerView, command: Command): Decision => {
  switch (command._tag) {
    case "OpenAccount":
      return decideOpenAccount(view, command)
    case "Deposit":
      return decideDeposit(view, command)
    case "Transfer":
      return decideTransfer(view, command)
    case "ApplyCredit":
      return decideApplyCredit(view, command)
    case "SettleTransfer":
    case "ReverseTransfer":
      return decideSagaEnd(view, command)
    default: {
      const _exhaustive: never = command
      return _exhaustive
    }
  }
}
