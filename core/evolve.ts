/**
 * `evolve`: the pure function from (state, event) to the new versions of the entities the event
 * touches. It cannot fail on a valid journal: it runs in recovery too, so an event that does not
 * fit the state is a corrupt journal and is asserted, never tolerated.
 */
import type { Event } from "./events.ts"
import type { Account, Entity, Ledger, LedgerView, Payment } from "./ledger.ts"

const assert: (condition: boolean, message: string) => asserts condition = (condition, message) => {
  if (!condition) throw new Error(`assertion: ${message}`)
}

const existingAccount = (view: LedgerView, event: Event): Account => {
  const account = view.account(event.tenantId, event.accountId)
  assert(account !== undefined, `${event._tag} for unknown account ${event.accountId}`)
  assert(event.sequence === account.sequence + 1, `${event._tag} out of sequence for ${event.accountId}`)
  return account
}

const withBalance = (account: Account, balanceMinor: bigint, sequence: number): Account => ({
  ...account,
  balanceMinor,
  sequence,
})

/**
 * The payment a saga end refers to. During recovery a snapshot may already hold the payment's
 * later version (entities are saved before their account), so the status is checked against the
 * outcome, not required to be pending: settling a reversed payment, or the reverse, is corruption.
 */
const sagaPayment = (view: LedgerView, event: Event, outcome: "settled" | "declined"): Payment => {
  assert(event.paymentId !== null, `${event._tag} without payment id`)
  const payment = view.payment(event.tenantId, event.accountId, event.paymentId as Payment["paymentId"])
  assert(payment !== undefined, `${event._tag} for unknown payment ${event.paymentId}`)
  assert(payment.status === "pending" || payment.status === outcome, `${event._tag} for ${payment.status} payment`)
  return payment
}

export const evolve = (view: LedgerView, event: Event): ReadonlyArray<Entity> => {
  switch (event._tag) {
    case "AccountOpened": {
      assert(view.account(event.tenantId, event.accountId) === undefined, `account ${event.accountId} opened twice`)
      assert(event.sequence === 1, "AccountOpened must be the first event of its account")
      const account: Account = {
        tenantId: event.tenantId,
        accountId: event.accountId,
        currency: event.currency,
        floorMinor: event.floorMinor,
        balanceMinor: 0n,
        status: "open",
        sequence: 1,
      }
      return [{ kind: "account", value: account }]
    }
    case "FundsDeposited": {
      const account = existingAccount(view, event)
      assert(event.amountMinor > 0n, "deposit amount must be positive")
      const depositId = event.paymentId as string
      return [
        { kind: "account", value: withBalance(account, account.balanceMinor + event.amountMinor, event.sequence) },
        {
          kind: "deposit",
          value: {
            tenantId: event.tenantId,
            accountId: event.accountId,
            depositId: depositId as never,
            amountMinor: event.amountMinor,
            currency: event.currency,
          },
        },
      ]
    }
    case "TransferDebited": {
      const account = existingAccount(view, event)
      const balanceMinor = account.balanceMinor - event.amountMinor
      assert(event.amountMinor > 0n, "transfer amount must be positive")
      assert(balanceMinor >= account.floorMinor, `debit takes ${event.accountId} below its floor`)
      const payment: Payment = {
        tenantId: event.tenantId,
        paymentId: event.paymentId as Payment["paymentId"],
        from: event.accountId,
        to: event.to,
        amountMinor: event.amountMinor,
        currency: event.currency,
        status: event.settled ? "settled" : "pending",
        reason: null,
        createdAtMs: event.timestampMs,
      }
      return [
        { kind: "account", value: withBalance(account, balanceMinor, event.sequence) },
        { kind: "payment", value: payment },
      ]
    }
    case "TransferDeclined": {
      const account = existingAccount(view, event)
      const payment: Payment = {
        tenantId: event.tenantId,
        paymentId: event.paymentId as Payment["paymentId"],
        from: event.accountId,
        to: event.to,
        amountMinor: event.amountMinor,
        currency: event.currency,
        status: "declined",
        reason: event.reason,
        createdAtMs: event.timestampMs,
      }
      return [
        { kind: "account", value: withBalance(account, account.balanceMinor, event.sequence) },
        { kind: "payment", value: payment },
      ]
    }
    case "TransferCredited": {
      const account = existingAccount(view, event)
      const paymentId = event.paymentId as Payment["paymentId"]
      // A credit already present is the snapshot being ahead of its account during recovery;
      // live, `decide` never credits twice, so a present credit must be this very credit.
      const present = view.credit(event.tenantId, event.accountId, event.from, paymentId)
      assert(present === undefined || present.amountMinor === event.amountMinor, `conflicting credit ${paymentId}`)
      return [
        { kind: "account", value: withBalance(account, account.balanceMinor + event.amountMinor, event.sequence) },
        {
          kind: "credit",
          value: {
            tenantId: event.tenantId,
            paymentId,
            from: event.from,
            to: event.accountId,
            amountMinor: event.amountMinor,
          },
        },
      ]
    }
    case "TransferSettled": {
      const account = existingAccount(view, event)
      const payment = sagaPayment(view, event, "settled")
      return [
        { kind: "account", value: withBalance(account, account.balanceMinor, event.sequence) },
        { kind: "payment", value: { ...payment, status: "settled" } },
      ]
    }
    case "TransferReversed": {
      const account = existingAccount(view, event)
      const payment = sagaPayment(view, event, "declined")
      return [
        { kind: "account", value: withBalance(account, account.balanceMinor + payment.amountMinor, event.sequence) },
        { kind: "payment", value: { ...payment, status: "declined", reason: event.reason } },
      ]
    }
    default: {
      const _exhaustive: never = event
      return _exhaustive
    }
  }
}

/** Applies events in order to a ledger and returns every entity version they produced. */
export const applyEvents = (ledger: Ledger, events: ReadonlyArray<Event>): Array<Entity> => {
  const changed: Array<Entity> = []
  for (const event of events) {
    for (const entity of evolve(ledger, event)) {
      ledger.put(entity)
      changed.push(entity)
    }
  }
  return changed
}
