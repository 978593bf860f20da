/**
 * `evolve`: the pure function from (state, event) to the new versions of the entities the event
 * touches. It cannot fail on a valid journal: it runs in recovery too, so an event that does not
 * fit the state is a corrupt journal (or a bug) and is asserted, never tolerated. Recovery replays
 * from exactly the state a snapshot saved, so the same assertions hold there as live.
 */
import type {
  CreditRefused,
  Event,
  HistoryBoundsRecorded,
  PaymentAuthorized,
  PaymentHeldForReview,
  PaymentRefunded,
  TransferCredited,
  TransferDebited,
  TransferDeclined,
} from "./events.ts"
import { checkEntity, invariant } from "./invariants.ts"
import type { Account, Credit, Entity, Ledger, LedgerView, Payment, PaymentStatus } from "./ledger.ts"
import { debitedFor, holdOf, partAtBookedRate } from "./payment-fx.ts"
import { emptyHistory, recordPayment } from "./risk.ts"

const existingAccount = (view: LedgerView, event: Event): Account => {
  const account = view.account(event.tenantId, event.accountId)
  invariant(account !== undefined, `${event._tag} for unknown account ${event.accountId}`)
  invariant(event.sequence === account.sequence + 1, `${event._tag} out of sequence for ${event.accountId}`)
  return account
}

const creditRecord = (
  event: TransferCredited | CreditRefused,
  outcome: Credit["outcome"],
  reason: Credit["reason"],
): Credit => ({
  tenantId: event.tenantId,
  paymentId: event.paymentId as Payment["paymentId"],
  from: event.from,
  to: event.accountId,
  amountMinor: event.amountMinor,
  outcome,
  reason,
  createdAtMs: event.timestampMs,
})

const withBalance = (account: Account, balanceMinor: bigint, sequence: number): Account => ({
  ...account,
  balanceMinor,
  sequence,
})

/**
 * The payment an event continues, which must be in one of `statuses`: settling a reversed payment,
 * capturing a voided authorization and the like are corruption.
 */
const paymentIn = (view: LedgerView, event: Event, ...statuses: ReadonlyArray<Payment["status"]>): Payment => {
  invariant(event.paymentId !== null, `${event._tag} without payment id`)
  const payment = view.payment(event.tenantId, event.accountId, event.paymentId as Payment["paymentId"])
  invariant(payment !== undefined, `${event._tag} for unknown payment ${event.paymentId}`)
  invariant(statuses.includes(payment.status), `${event._tag} for ${payment.status} payment`)
  return payment
}

/** The debtor's account with the payment in its recent history, when the event says its tenant keeps one. */
const withHistory = (
  account: Account,
  event: { readonly timestampMs: number; readonly to: Account["accountId"]; readonly amountMinor: bigint },
  currency: Account["currency"],
  bounds: HistoryBoundsRecorded | undefined,
): Account => {
  if (bounds === undefined) return account
  const recorded = { createdAtMs: event.timestampMs, amountMinor: event.amountMinor, currency, to: event.to }
  const recent = recordPayment(
    account.recent ?? emptyHistory,
    { ...recorded, status: "settled" },
    event.timestampMs,
    bounds,
  )
  return { ...account, recent }
}

/** A payment's first version, from the event that records it. */
const paymentOf = (
  event: TransferDebited | TransferDeclined | PaymentAuthorized | PaymentHeldForReview,
  status: PaymentStatus,
  rest: Pick<Payment, "reason" | "capturedAmountMinor" | "holdExpiresAtMs">,
): Payment => ({
  tenantId: event.tenantId,
  paymentId: event.paymentId as Payment["paymentId"],
  from: event.accountId,
  to: event.to,
  amountMinor: event.amountMinor,
  currency: event.currency,
  status,
  createdAtMs: event.timestampMs,
  captureId: null,
  updatedAtMs: event.timestampMs,
  refundedAmountMinor: 0n,
  refunds: [],
  ...rest,
})

/** A hold placed: an authorization, or a payment a fraud rule sent to review. */
const held = (account: Account, event: PaymentAuthorized | PaymentHeldForReview): ReadonlyArray<Entity> => {
  invariant(event.amountMinor > 0n, "authorization amount must be positive")
  const heldMinor = account.heldMinor + (event.fx?.debit?.amountMinor ?? event.amountMinor)
  invariant(account.balanceMinor - heldMinor >= account.floorMinor, `hold takes ${event.accountId} below its floor`)
  const first = paymentOf(event, event._tag === "PaymentAuthorized" ? "authorized" : "review", {
    reason: null,
    capturedAmountMinor: 0n,
    holdExpiresAtMs: event.holdExpiresAtMs,
  })
  const converted: Payment = event.fx === undefined ? first : { ...first, fx: event.fx }
  const payment: Payment =
    event._tag === "PaymentAuthorized"
      ? converted
      : {
          ...converted,
          risk: { outcome: "review", rule: event.rule },
          ...(event.captureOnApproval ? { captureOnApproval: true } : {}),
        }
  const holding = withHistory({ ...account, heldMinor, sequence: event.sequence }, event, event.currency, event.history)
  return [
    { kind: "account", value: holding },
    { kind: "payment", value: payment },
  ]
}

/** The payment as a refund leaves it, from the state the event carries. */
const refundedPayment = (event: PaymentRefunded): Payment => {
  invariant(event.paymentId !== null, "PaymentRefunded without payment id")
  invariant(event.amountMinor > 0n, "refund amount must be positive")
  const refundedAmountMinor = event.refunds.reduce((sum, refund) => sum + refund.amountMinor, 0n)
  invariant(refundedAmountMinor <= event.capturedAmountMinor, "refunds beyond what was captured")
  invariant(event.refunds.at(-1)?.refundId === event.refundId, "a refund event lists its own refund last")
  return {
    tenantId: event.tenantId,
    paymentId: event.paymentId as Payment["paymentId"],
    from: event.accountId,
    to: event.to,
    amountMinor: event.authorizedAmountMinor,
    currency: event.currency,
    status: refundedAmountMinor === event.capturedAmountMinor ? "refunded" : "partially_refunded",
    reason: null,
    createdAtMs: event.paymentCreatedAtMs,
    capturedAmountMinor: event.capturedAmountMinor,
    holdExpiresAtMs: event.holdExpiresAtMs,
    captureId: event.captureId,
    updatedAtMs: event.timestampMs,
    refundedAmountMinor,
    refunds: event.refunds,
    ...(event.fx === undefined ? {} : { fx: event.fx }),
  }
}

const versionsAfter = (view: LedgerView, event: Event): ReadonlyArray<Entity> => {
  switch (event._tag) {
    case "AccountOpened": {
      invariant(view.account(event.tenantId, event.accountId) === undefined, `account ${event.accountId} opened twice`)
      invariant(event.sequence === 1, "AccountOpened must be the first event of its account")
      const account: Account = {
        tenantId: event.tenantId,
        accountId: event.accountId,
        currency: event.currency,
        floorMinor: event.floorMinor,
        balanceMinor: 0n,
        heldMinor: 0n,
        status: "open",
        sequence: 1,
      }
      return [{ kind: "account", value: account }]
    }
    case "FundsDeposited": {
      const account = existingAccount(view, event)
      invariant(event.amountMinor > 0n, "deposit amount must be positive")
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
            createdAtMs: event.timestampMs,
          },
        },
      ]
    }
    case "TransferDebited": {
      const account = existingAccount(view, event)
      const balanceMinor = account.balanceMinor - (event.fx?.debit?.amountMinor ?? event.amountMinor)
      invariant(event.amountMinor > 0n, "transfer amount must be positive")
      invariant(
        balanceMinor - account.heldMinor >= account.floorMinor,
        `debit takes ${event.accountId} below its floor`,
      )
      const debitedPayment = paymentOf(event, event.settled ? "settled" : "pending", {
        reason: null,
        capturedAmountMinor: event.amountMinor,
        holdExpiresAtMs: null,
      })
      const payment = event.fx === undefined ? debitedPayment : { ...debitedPayment, fx: event.fx }
      const debited = withHistory(
        withBalance(account, balanceMinor, event.sequence),
        event,
        event.currency,
        event.history,
      )
      return [
        { kind: "account", value: debited },
        { kind: "payment", value: payment },
      ]
    }
    case "TransferDeclined": {
      const account = existingAccount(view, event)
      const declined = paymentOf(event, "declined", {
        reason: event.reason,
        capturedAmountMinor: 0n,
        holdExpiresAtMs: null,
      })
      const payment: Payment =
        event.rule === undefined ? declined : { ...declined, risk: { outcome: "decline", rule: event.rule } }
      return [
        { kind: "account", value: withBalance(account, account.balanceMinor, event.sequence) },
        { kind: "payment", value: payment },
      ]
    }
    case "TransferCredited": {
      const account = existingAccount(view, event)
      invariant(event.amountMinor > 0n, "credit amount must be positive")
      const credited = {
        kind: "account" as const,
        value: withBalance(account, account.balanceMinor + event.amountMinor, event.sequence),
      }
      // A credit committed with its debit is never redelivered, so it needs no record.
      if (!event.delivered) return [credited]
      const paymentId = event.paymentId as Payment["paymentId"]
      // `decide` never applies a delivered credit twice; one on record here would be money created.
      invariant(
        view.credit(event.tenantId, event.accountId, event.from, paymentId) === undefined,
        `credit ${paymentId} applied twice`,
      )
      return [credited, { kind: "credit", value: creditRecord(event, "applied", null) }]
    }
    case "CreditRefused": {
      invariant(event.sequence === 0, "CreditRefused does not change the account")
      return [{ kind: "credit", value: creditRecord(event, "refused", event.reason) }]
    }
    case "TransferSettled": {
      const account = existingAccount(view, event)
      const payment = paymentIn(view, event, "pending")
      return [
        { kind: "account", value: withBalance(account, account.balanceMinor, event.sequence) },
        { kind: "payment", value: { ...payment, status: "settled", updatedAtMs: event.timestampMs } },
      ]
    }
    case "TransferReversed": {
      const account = existingAccount(view, event)
      const payment = paymentIn(view, event, "pending")
      return [
        {
          kind: "account",
          value: withBalance(
            account,
            account.balanceMinor + debitedFor(payment, payment.capturedAmountMinor),
            event.sequence,
          ),
        },
        {
          kind: "payment",
          value: { ...payment, status: "declined", reason: event.reason, updatedAtMs: event.timestampMs },
        },
      ]
    }
    case "PaymentAuthorized":
    case "PaymentHeldForReview":
      return held(existingAccount(view, event), event)
    case "PaymentReviewed": {
      const account = existingAccount(view, event)
      const payment = paymentIn(view, event, "review")
      if (event.decision === "approve") {
        return [
          { kind: "account", value: withBalance(account, account.balanceMinor, event.sequence) },
          { kind: "payment", value: { ...payment, status: "authorized", updatedAtMs: event.timestampMs } },
        ]
      }
      const released: Account = {
        ...account,
        heldMinor: account.heldMinor - holdOf(payment),
        sequence: event.sequence,
      }
      return [
        { kind: "account", value: released },
        {
          kind: "payment",
          value: { ...payment, status: "declined", reason: "RISK_DECLINED", updatedAtMs: event.timestampMs },
        },
      ]
    }
    case "PaymentCaptured": {
      const account = existingAccount(view, event)
      const payment = paymentIn(view, event, "authorized")
      invariant(event.amountMinor > 0n && event.amountMinor <= payment.amountMinor, "capture beyond its authorization")
      const released: Account = {
        ...account,
        balanceMinor: account.balanceMinor - debitedFor(payment, event.amountMinor),
        heldMinor: account.heldMinor - holdOf(payment),
        sequence: event.sequence,
      }
      const captured: Payment = {
        ...payment,
        status: event.settled ? "settled" : "pending",
        capturedAmountMinor: event.amountMinor,
        captureId: event.captureId,
        updatedAtMs: event.timestampMs,
        ...(event.creditFx === undefined ? {} : { fx: { ...payment.fx, credit: event.creditFx } }),
      }
      return [
        { kind: "account", value: released },
        { kind: "payment", value: captured },
      ]
    }
    case "AuthorizationVoided":
    case "AuthorizationExpired": {
      const account = existingAccount(view, event)
      // A payment in review lapses with its hold; only an authorization can be voided.
      const payment =
        event._tag === "AuthorizationExpired"
          ? paymentIn(view, event, "authorized", "review")
          : paymentIn(view, event, "authorized")
      const released: Account = {
        ...account,
        heldMinor: account.heldMinor - holdOf(payment),
        sequence: event.sequence,
      }
      const status = event._tag === "AuthorizationVoided" ? "voided" : "expired"
      return [
        { kind: "account", value: released },
        { kind: "payment", value: { ...payment, status, updatedAtMs: event.timestampMs } },
      ]
    }
    case "RefundDebited": {
      const account = existingAccount(view, event)
      invariant(event.amountMinor > 0n, "refund amount must be positive")
      const balanceMinor = account.balanceMinor - event.amountMinor
      invariant(
        balanceMinor - account.heldMinor >= account.floorMinor,
        `refund takes ${event.accountId} below its floor`,
      )
      return [{ kind: "account", value: withBalance(account, balanceMinor, event.sequence) }]
    }
    case "PaymentRefunded": {
      const account = existingAccount(view, event)
      const refunded = refundedPayment(event)
      // The payment may have left memory (recovery does not read it back); when it is here, the
      // event must continue it exactly.
      const previous = view.payment(event.tenantId, event.accountId, refunded.paymentId)
      if (previous !== undefined) {
        invariant(
          previous.status === "settled" || previous.status === "partially_refunded",
          `refund of a ${previous.status} payment`,
        )
        invariant(
          previous.refundedAmountMinor + event.amountMinor === refunded.refundedAmountMinor,
          `refund ${event.refundId} does not continue payment ${event.paymentId}`,
        )
      }
      // The debtor gets this refund's part at the rate its debit was booked at.
      const returnedMinor = partAtBookedRate(
        event.fx?.debit,
        refunded.refundedAmountMinor - event.amountMinor,
        event.amountMinor,
        event.currency,
      )
      return [
        { kind: "account", value: withBalance(account, account.balanceMinor + returnedMinor, event.sequence) },
        { kind: "payment", value: refunded },
      ]
    }
    default: {
      const _exhaustive: never = event
      return _exhaustive
    }
  }
}

export const evolve = (view: LedgerView, event: Event): ReadonlyArray<Entity> => {
  const versions = versionsAfter(view, event)
  for (const version of versions) checkEntity(version)
  return versions
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
