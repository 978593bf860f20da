/**
 * Carries out the side effects of durable decisions: a delivery goes to the shard that owns the
 * command's account (here, or through the node-to-node link when another node holds it); a
 * scheduled command waits on the runtime clock and is then delivered the same way. Timers are kept
 * per key (one redelivery per payment: a newer schedule replaces the older), so they are bounded
 * by the live payments they serve, and capped by `timersMax` all the same.
 */
import { Effect } from "effect"
import type { Command } from "../core/commands.ts"
import { type Payment, paymentKey } from "../core/ledger.ts"
import type { SideEffect } from "../core/side-effects.ts"
import type { RuntimeClock } from "./clock.ts"

const redeliveryTimerKey = (payment: string): string => `redeliver\u0000${payment}`
const expiryTimerKey = (payment: string): string => `expire\u0000${payment}`

/** The one timer a command may have: a later schedule of the same key replaces it. */
const timerKeyOf = (command: Command): string => {
  switch (command._tag) {
    case "RedeliverCredit":
      return redeliveryTimerKey(paymentKey(command.tenantId, command.from, command.paymentId))
    case "ExpireHold":
      return expiryTimerKey(paymentKey(command.tenantId, command.from, command.paymentId))
    default:
      return `${command._tag}\u0000${command.correlationId}`
  }
}

export class SideEffectRunner {
  private readonly timers = new Map<string, () => void>()
  private stopped = false
  /** Effects carried out since the node started, by kind: gauges. */
  deliveries = 0
  schedules = 0

  constructor(
    private readonly clock: RuntimeClock,
    private readonly timersMax: number,
    private readonly deliver: (command: Command) => void,
    /**
     * False for a timer whose payment ended before its schedule ran (an authorization captured in
     * the same flush as itself): scheduling it would keep a timer for nothing until it fires.
     */
    private readonly stillLive: (command: Command) => boolean = () => true,
  ) {}

  get timersPending(): number {
    return this.timers.size
  }

  run(effects: ReadonlyArray<SideEffect>): void {
    for (const effect of effects) {
      if (this.stopped) return
      if (effect._tag === "Deliver") {
        this.deliveries++
        this.deliver(effect.command)
      } else this.schedule(effect.atMs, effect.command)
    }
  }

  private schedule(atMs: number, command: Command): void {
    const key = timerKeyOf(command)
    this.timers.get(key)?.()
    this.timers.delete(key)
    if (atMs <= this.clock.nowMs()) {
      // Already due (a hold that lapsed while the node was down): now, so that it is in line
      // before anything the node serves after its recovery.
      this.schedules++
      this.deliver(command)
      return
    }
    if (!this.stillLive(command)) return
    if (this.timers.size >= this.timersMax) {
      // The payment stays pending in its journaled state; the next recovery resumes it.
      Effect.runFork(Effect.logWarning("timer bound reached; a scheduled command waits for the next recovery"))
      return
    }
    this.schedules++
    const cancel = this.clock.after(atMs - this.clock.nowMs(), () => {
      this.timers.delete(key)
      if (!this.stopped) this.deliver(command)
    })
    this.timers.set(key, cancel)
  }

  /**
   * Cancels the timers of a payment whose story ended (a captured or voided authorization's expiry,
   * a settled payment's redelivery): otherwise every authorization would keep a timer for its whole
   * hold, days, and the timers would fill their bound with holds long gone.
   */
  cancelTimersOf(payment: Pick<Payment, "tenantId" | "from" | "paymentId">): void {
    const key = paymentKey(payment.tenantId, payment.from, payment.paymentId)
    for (const timerKey of [expiryTimerKey(key), redeliveryTimerKey(key)]) {
      const cancel = this.timers.get(timerKey)
      if (cancel === undefined) continue
      cancel()
      this.timers.delete(timerKey)
    }
  }

  /** Cancels every timer: the incarnation that scheduled them is gone; recovery recomputes what is pending. */
  stop(): void {
    this.stopped = true
    for (const cancel of this.timers.values()) cancel()
    this.timers.clear()
  }
}
