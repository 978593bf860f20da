/**
 * `decide`: validates a command against the current state and returns the events it causes with
 * the side effects to run after they commit, or a rejection that changes nothing. Pure and
 * synchronous. The saga steps of cross-shard transfers are decided in `transfer-saga.ts`.
 */
import type { Command, Deposit, OpenAccount, Transfer } from "./commands.ts"
import { accept, type Decision, envelope, unchanged } from "./decision.ts"
import { isRejection, type Rejection, reject } from "./errors.ts"
import { type Event, eventSchemaVersion, type TransferDebited } from "./events.ts"
import type { AccountId } from "./ids.ts"
import type { Account, LedgerView } from "./ledger.ts"
import { conversionInto, type PaymentFx } from "./payment-fx.ts"
import { coversDebit, decideAuthorize, decideCapture, decideExpireHold, decideVoid } from "./payment-lifecycle.ts"
import { depositExpired, type LedgerPolicy, paymentExpired } from "./policy.ts"
import { decideRefund } from "./refund.ts"
import { decideReview, screenedDecision } from "./review.ts"
import { decideApplyCredit, decideRedeliverCredit, decideSagaEnd, startSaga } from "./transfer-saga.ts"

export type { Accepted, Decision } from "./decision.ts"

const unknownAccount = (accountId: AccountId): Rejection =>
  reject("UNKNOWN_ACCOUNT", `account ${accountId} does not exist`)

const decideOpenAccount = (view: LedgerView, command: OpenAccount): Decision => {
  if (view.account(command.tenantId, command.accountId) !== undefined) {
    return reject("ACCOUNT_EXISTS", `account ${command.accountId} already exists`)
  }
  // An account opens at zero, so a positive floor would open it already below its floor.
  if (command.floorMinor > 0n) return reject("INVALID_REQUEST", "floor must be zero or negative (an overdraft limit)")
  return accept([
    {
      _tag: "AccountOpened",
      ...envelope(command, command.accountId, null, 1),
      currency: command.currency,
      floorMinor: command.floorMinor,
    },
  ])
}

const decideDeposit = (view: LedgerView, command: Deposit, policy: LedgerPolicy): Decision => {
  const account = view.account(command.tenantId, command.accountId)
  if (account === undefined) return unknownAccount(command.accountId)
  const previous = view.deposit(command.tenantId, command.accountId, command.depositId)
  if (previous !== undefined && !depositExpired(previous, command.timestampMs, policy)) {
    const same = previous.amountMinor === command.amountMinor && previous.currency === command.currency
    return same ? unchanged : reject("IDEMPOTENCY_CONFLICT", `deposit ${command.depositId} was made with other fields`)
  }
  if (account.currency !== command.currency) {
    return reject("CURRENCY_MISMATCH", `account ${command.accountId} holds ${account.currency}`)
  }
  return accept([
    {
      _tag: "FundsDeposited",
      ...envelope(command, command.accountId, command.depositId, account.sequence + 1),
      amountMinor: command.amountMinor,
      currency: command.currency,
    },
  ])
}

/** A repeat of a payment key within its window: the same fields return the original, others conflict. */
const decideRepeat = (view: LedgerView, command: Transfer, policy: LedgerPolicy): Decision | undefined => {
  const previous = view.payment(command.tenantId, command.from, command.paymentId)
  if (previous === undefined || paymentExpired(previous, command.timestampMs, policy)) {
    return undefined
  }
  const same =
    previous.to === command.to && previous.amountMinor === command.amountMinor && previous.currency === command.currency
  return same ? unchanged : reject("IDEMPOTENCY_CONFLICT", `payment ${command.paymentId} was made with other fields`)
}

/**
 * With `creditorLocal`, `view` must see the creditor's account too (the runtime passes a view over
 * both shards): debit and credit are then decided together and commit together.
 */
const decideTransfer = (view: LedgerView, command: Transfer, policy: LedgerPolicy): Decision => {
  const debtor = view.account(command.tenantId, command.from)
  if (debtor === undefined) return unknownAccount(command.from)
  const repeat = decideRepeat(view, command, policy)
  if (repeat !== undefined) return repeat
  if (command.from === command.to) return reject("INVALID_REQUEST", "a transfer needs two different accounts")
  // Another currency than the payment's, on either side, is converted at the tenant's rate.
  const rates = command.tenantPolicy?.rates
  const debitFx =
    debtor.currency === command.currency
      ? undefined
      : conversionInto(rates, debtor, command.amountMinor, command.currency)
  if (isRejection(debitFx)) return debitFx
  const creditor = command.creditorLocal ? view.account(command.tenantId, command.to) : undefined
  if (command.creditorLocal && creditor === undefined) return unknownAccount(command.to)
  const creditFx =
    creditor === undefined || creditor.currency === command.currency
      ? undefined
      : conversionInto(rates, creditor, command.amountMinor, command.currency)
  if (isRejection(creditFx)) return creditFx
  const sequence = debtor.sequence + 1
  const debitMinor = debitFx === undefined ? command.amountMinor : debitFx.amountMinor
  if (command.tenantPolicy !== undefined) {
    const base = envelope(command, command.from, command.paymentId, sequence)
    const screened = screenedDecision(debtor, command, base, debitFx)
    if (screened !== undefined) return screened
  }
  if (!coversDebit(debtor, debitMinor)) {
    const transfer = { to: command.to, amountMinor: command.amountMinor, currency: command.currency }
    const declined = { ...envelope(command, command.from, command.paymentId, sequence), ...transfer }
    return accept([{ _tag: "TransferDeclined", ...declined, reason: "INSUFFICIENT_FUNDS" }])
  }
  // The events of a paid transfer, the hot path, are built in one object each (no envelope to spread).
  const debited: TransferDebited = {
    _tag: "TransferDebited",
    schemaVersion: eventSchemaVersion,
    tenantId: command.tenantId,
    accountId: command.from,
    paymentId: command.paymentId,
    correlationId: command.correlationId,
    sequence,
    timestampMs: command.timestampMs,
    to: command.to,
    amountMinor: command.amountMinor,
    currency: command.currency,
    settled: creditor !== undefined,
  }
  const history = command.tenantPolicy?.history
  if (history === undefined && debitFx === undefined && creditFx === undefined)
    return decideDebited(command, debited, creditor, undefined, policy)
  const fx: PaymentFx | undefined =
    debitFx === undefined && creditFx === undefined
      ? undefined
      : {
          ...(debitFx === undefined ? {} : { debit: debitFx }),
          ...(creditFx === undefined ? {} : { credit: creditFx }),
        }
  const withPolicy: TransferDebited = {
    ...debited,
    ...(history === undefined ? {} : { history }),
    ...(fx === undefined ? {} : { fx }),
  }
  return decideDebited(command, withPolicy, creditor, creditFx?.amountMinor, policy)
}

const decideDebited = (
  command: Transfer,
  debited: TransferDebited,
  creditor: Account | undefined,
  creditMinor: bigint | undefined,
  policy: LedgerPolicy,
): Decision => {
  if (creditor === undefined) return startSaga(command, debited, policy)
  const credited: Event = {
    _tag: "TransferCredited",
    schemaVersion: eventSchemaVersion,
    tenantId: command.tenantId,
    accountId: command.to,
    paymentId: command.paymentId,
    correlationId: command.correlationId,
    sequence: creditor.sequence + 1,
    timestampMs: command.timestampMs,
    from: command.from,
    amountMinor: creditMinor ?? command.amountMinor,
    currency: creditor.currency,
    delivered: false,
  }
  return accept([debited, credited])
}

export const decide = (view: LedgerView, command: Command, policy: LedgerPolicy): Decision => {
  switch (command._tag) {
    case "OpenAccount":
      return decideOpenAccount(view, command)
    case "Deposit":
      return decideDeposit(view, command, policy)
    case "Transfer":
      return decideTransfer(view, command, policy)
    case "ApplyCredit":
      return decideApplyCredit(view, command, policy)
    case "SettleTransfer":
    case "ReverseTransfer":
      return decideSagaEnd(view, command)
    case "RedeliverCredit":
      return decideRedeliverCredit(view, command, policy)
    case "Authorize":
      return decideAuthorize(view, command, policy)
    case "Capture":
      return decideCapture(view, command, policy)
    case "Void":
      return decideVoid(view, command, policy)
    case "ExpireHold":
      return decideExpireHold(view, command)
    case "Refund":
      return decideRefund(view, command, policy)
    case "ReviewPayment":
      return decideReview(view, command, policy)
    default: {
      const _exhaustive: never = command
      return _exhaustive
    }
  }
}
