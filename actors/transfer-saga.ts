/**
 * Cross-shard transfers as a saga driven by journaled state. The debtor's shard has durably
 * debited the payment (status pending); this driver delivers the credit to the creditor's shard
 * at least once (the creditor applies it at most once, keyed by debtor and payment id), then
 * settles the payment on the debtor's shard, or reverses it if the credit cannot be applied.
 * Nothing here is durable on its own: pending payments in the ledgers are the saga's state, so
 * recovery resumes every saga by sweeping them.
 */
import type { Command } from "../core/commands.ts"
import { type ErrorCode, isRejection } from "../core/errors.ts"
import type { DeclineReason } from "../core/events.ts"
import { type Payment, paymentKey } from "../core/ledger.ts"
import type { RuntimeLimits } from "./limits.ts"
import type { Outcome } from "./processor.ts"

/** What the saga needs from the node: run a command on the shard that owns its account. */
export type RouteCommand = (command: Command, callback: (outcome: Outcome) => void) => void

/** Rejections that mean "try again later"; any other rejection of a credit is final. */
const transient: ReadonlySet<ErrorCode> = new Set(["UNAVAILABLE", "OVERLOADED"])

const reversalReason = (code: ErrorCode): DeclineReason =>
  code === "CURRENCY_MISMATCH" ? "CURRENCY_MISMATCH" : "UNKNOWN_ACCOUNT"

export class TransferSaga {
  private readonly inFlight = new Set<string>()
  private readonly timers = new Set<NodeJS.Timeout>()
  private stopped = false

  constructor(
    private readonly limits: RuntimeLimits,
    private readonly route: RouteCommand,
  ) {}

  get stepsInFlight(): number {
    return this.inFlight.size
  }

  /** Drives a durable pending payment to its end, unless it is already being driven. */
  drive(payment: Payment): void {
    const key = paymentKey(payment.tenantId, payment.from, payment.paymentId)
    if (this.stopped || this.inFlight.has(key)) return
    // Over the bound the payment stays pending in its ledger; the next sweep picks it up.
    if (this.inFlight.size >= this.limits.sagaStepsInFlightMax) return
    this.inFlight.add(key)
    this.credit(payment, key)
  }

  stop(): void {
    this.stopped = true
    for (const timer of this.timers) clearTimeout(timer)
    this.timers.clear()
    this.inFlight.clear()
  }

  private credit(payment: Payment, key: string): void {
    const meta = { tenantId: payment.tenantId, correlationId: `saga:${payment.paymentId}`, timestampMs: Date.now() }
    this.route(
      {
        _tag: "ApplyCredit",
        ...meta,
        paymentId: payment.paymentId,
        from: payment.from,
        to: payment.to,
        amountMinor: payment.amountMinor,
        currency: payment.currency,
      },
      (outcome) => {
        if (!isRejection(outcome)) return this.end(payment, key, undefined)
        if (transient.has(outcome.code)) return this.retry(() => this.credit(payment, key), key)
        this.end(payment, key, reversalReason(outcome.code))
      },
    )
  }

  /** Settles (no reason) or reverses (with the reason) the payment on the debtor's shard. */
  private end(payment: Payment, key: string, reason: DeclineReason | undefined): void {
    const meta = { tenantId: payment.tenantId, correlationId: `saga:${payment.paymentId}`, timestampMs: Date.now() }
    const command: Command =
      reason === undefined
        ? { _tag: "SettleTransfer", ...meta, paymentId: payment.paymentId, from: payment.from }
        : { _tag: "ReverseTransfer", ...meta, paymentId: payment.paymentId, from: payment.from, reason }
    this.route(command, (outcome) => {
      if (isRejection(outcome) && transient.has(outcome.code)) {
        this.retry(() => this.end(payment, key, reason), key)
        return
      }
      this.inFlight.delete(key)
    })
  }

  private retry(step: () => void, key: string): void {
    if (this.stopped) return
    const timer = setTimeout(() => {
      this.timers.delete(timer)
      if (this.inFlight.has(key)) step()
    }, this.limits.sagaRetryDelayMs)
    timer.unref()
    this.timers.add(timer)
  }
}
