/**
 * Runs commands and reads against the shards of one node incarnation: admits a command (bounds),
 * makes sure the entry it reads is in memory (parking it behind a read-back when not), decides it
 * against its shard (and the creditor's shard, when this node holds both and can commit them
 * together), applies the events in memory at once, queues their records for the node's next flush,
 * and, once that flush is durable, releases the answer and carries out the decision's side effects.
 */
import type { Capture, Command, Refund, ReviewPayment, Transfer } from "../core/commands.ts"
import { commandAccount, entryKeyRead } from "../core/commands.ts"
import { decide } from "../core/decide.ts"
import type { Accepted } from "../core/decision.ts"
import { isRejection, type Rejection, reject } from "../core/errors.ts"
import type { Event } from "../core/events.ts"
import { evolve } from "../core/evolve.ts"
import { type AccountId, accountKey, type PaymentId, shardOf, type TenantId } from "../core/ids.ts"
import { entityKey, type LedgerView, paymentKey } from "../core/ledger.ts"
import { paymentExpired } from "../core/policy.ts"
import type { SideEffect } from "../core/side-effects.ts"
import type { RuntimeLimits } from "./limits.ts"
import type { NodeCommit, PendingCommand } from "./node-commit.ts"
import type { Outcome, OutcomeCallback } from "./processor.ts"
import type { Shard } from "./shard.ts"

export interface ExecutorContext {
  readonly limits: RuntimeLimits
  readonly commit: NodeCommit
  /** The serving shard at `index`, or undefined when this node does not serve it. */
  readonly shardAt: (index: number) => Shard | undefined
  /** True when this node owns shard `index`, serving or not (false: another node holds it). */
  readonly owns: (index: number) => boolean
  readonly runEffects: (effects: ReadonlyArray<SideEffect>) => void
  readonly nowMs: () => number
}

const unavailable = (shard: number, why: string): Rejection => reject("UNAVAILABLE", `shard ${shard} ${why}`)

/** A view over a debtor's and a creditor's shard, for a transfer decided and committed across both. */
class PairView implements LedgerView {
  constructor(
    private readonly debtor: Shard,
    private readonly creditor: Shard,
  ) {}
  account(tenantId: TenantId, accountId: AccountId) {
    return this.debtor.ledger.account(tenantId, accountId) ?? this.creditor.ledger.account(tenantId, accountId)
  }
  payment(tenantId: TenantId, from: AccountId, paymentId: PaymentId) {
    return this.debtor.ledger.payment(tenantId, from, paymentId)
  }
  deposit(...args: Parameters<LedgerView["deposit"]>) {
    return this.debtor.ledger.deposit(...args)
  }
  credit(...args: Parameters<LedgerView["credit"]>) {
    return this.creditor.ledger.credit(...args)
  }
}

/** Whether a transfer's tenant has a rule that may send it to review. */
const mayReview = (command: Transfer): boolean =>
  command.tenantPolicy?.rules.some((rule) => rule.outcome === "review") === true

/** False when work needs no parking: nothing of the shard is parked and its entry is new or in memory. */
const mayPark = (shard: Shard, key: string | undefined): boolean =>
  shard.hasParked || (key !== undefined && shard.needsLookup(key))

/** The transfer as one whose creditor this node commits with; a copy only when the caller said otherwise. */
const localTransfer = <C extends Transfer | Capture | Refund | ReviewPayment>(command: C): C =>
  command.creditorLocal ? command : { ...command, creditorLocal: true }

/** The answer a command gets once durable: the account it changed, or the payment. */
const outcomeAfter = (shard: Shard, creditor: Shard | undefined, command: Command): Outcome => {
  switch (command._tag) {
    case "OpenAccount":
    case "Deposit": {
      const account = shard.ledger.account(command.tenantId, command.accountId)
      return account === undefined ? reject("UNKNOWN_ACCOUNT", "account vanished") : { _tag: "Account", account }
    }
    case "ApplyCredit": {
      const account = (creditor ?? shard).ledger.account(command.tenantId, command.to)
      return account === undefined ? reject("UNKNOWN_ACCOUNT", "no such creditor") : { _tag: "Account", account }
    }
    case "Transfer":
    case "SettleTransfer":
    case "ReverseTransfer":
    case "RedeliverCredit":
    case "Authorize":
    case "Capture":
    case "Void":
    case "ExpireHold":
    case "Refund":
    case "ReviewPayment": {
      const payment = shard.ledger.payment(command.tenantId, command.from, command.paymentId)
      return payment === undefined ? reject("UNKNOWN_PAYMENT", "payment vanished") : { _tag: "Payment", payment }
    }
  }
}

export class CommandExecutor {
  constructor(private readonly context: ExecutorContext) {}

  private shardIndexOf(tenantId: TenantId, accountId: AccountId): number {
    return shardOf(tenantId, accountId, this.context.limits.shardCount)
  }

  execute(command: Command, callback: OutcomeCallback): void {
    const accountId = commandAccount(command)
    const index = this.shardIndexOf(command.tenantId, accountId)
    const shard = this.context.shardAt(index)
    if (shard === undefined) {
      callback(unavailable(index, "is not serving on this node"))
      return
    }
    const key = entryKeyRead(command)
    // The common case (nothing parked, the key new or in memory) runs at once, without a closure.
    if (!mayPark(shard, key)) {
      this.run(shard, command, callback)
      return
    }
    this.park(shard, command.tenantId, accountId, key, () => this.run(shard, command, callback), callback)
  }

  /** Runs `proceed` at once, or parks it until the entry `key` of the account is read back. */
  private whenLoaded(
    shard: Shard,
    tenantId: TenantId,
    accountId: AccountId,
    key: string | undefined,
    proceed: () => void,
    callback: OutcomeCallback,
  ): void {
    if (!mayPark(shard, key)) {
      proceed()
      return
    }
    this.park(shard, tenantId, accountId, key, proceed, callback)
  }

  /** Parks work behind the account's earlier parked work, or behind a read-back of `key`. */
  private park(
    shard: Shard,
    tenantId: TenantId,
    accountId: AccountId,
    key: string | undefined,
    proceed: () => void,
    callback: OutcomeCallback,
  ): void {
    const account = accountKey(tenantId, accountId)
    if (!shard.isParked(account) && (key === undefined || !shard.needsLookup(key))) {
      proceed()
      return
    }
    const fail = () => callback(unavailable(shard.shard, "cannot read a saved entry back"))
    if (!shard.park(account, { key, tenantId, proceed, fail })) {
      callback(reject("OVERLOADED", `shard ${shard.shard} has too many reads of saved entries in flight`))
    }
  }

  /** Bounds a command must pass on a shard it writes to; undefined when admitted. */
  private refusal(shard: Shard, command: Command): Rejection | undefined {
    const { limits, commit } = this.context
    if (commit.depthOf(shard.shard) >= limits.shardQueueDepthMax) {
      return reject("OVERLOADED", `shard ${shard.shard} has ${commit.depthOf(shard.shard)} records waiting`)
    }
    if (shard.snapshot?.overfull === true) return unavailable(shard.shard, "cannot save snapshots")
    if (command._tag !== "OpenAccount" && shard.index.full) {
      return reject("OVERLOADED", `shard ${shard.shard} holds ${limits.idempotencyKeysMax} idempotency keys`)
    }
    return undefined
  }

  private run(shard: Shard, command: Command, callback: OutcomeCallback): void {
    const refused = this.refusal(shard, command)
    if (refused !== undefined) {
      callback(refused)
      return
    }
    // A payment that may end in review holds funds until reviewed: it counts against the live bound.
    const mayHold = command._tag === "Authorize" || (command._tag === "Transfer" && mayReview(command))
    if (mayHold && shard.live.size >= this.context.limits.pendingPaymentsMax) {
      callback(reject("OVERLOADED", `shard ${shard.shard} has ${shard.live.size} payments pending or held`))
      return
    }
    if (command._tag === "Transfer") {
      this.runTransfer(shard, command, command.to, callback)
      return
    }
    if (command._tag === "Capture" || command._tag === "Refund" || command._tag === "ReviewPayment") {
      // The payment was read into memory before this ran (`entryKeyRead`), if it exists: its
      // creditor says which shards the commit spans.
      const payment = shard.ledger.payment(command.tenantId, command.from, command.paymentId)
      if (payment !== undefined) {
        this.runTransfer(shard, command, payment.to, callback)
        return
      }
    }
    this.decideAndCommit(shard, undefined, command, callback)
  }

  /**
   * A transfer, a capture, a refund or a review (whose approval may capture): one commit with the
   * creditor's shard when this node holds it.
   */
  private runTransfer(
    shard: Shard,
    command: Transfer | Capture | Refund | ReviewPayment,
    to: AccountId,
    callback: OutcomeCallback,
  ): void {
    const creditorIndex = this.shardIndexOf(command.tenantId, to)
    if (creditorIndex === shard.shard) {
      this.decideAndCommit(shard, undefined, localTransfer(command), callback)
      return
    }
    const creditor = this.context.shardAt(creditorIndex)
    if (creditor !== undefined) {
      const refused = this.refusal(creditor, command)
      if (refused !== undefined) {
        callback(refused)
        return
      }
      this.decideAndCommit(shard, creditor, localTransfer(command), callback)
      return
    }
    if (this.context.owns(creditorIndex)) {
      callback(unavailable(creditorIndex, "is not serving"))
      return
    }
    // Another node holds the creditor: the credit becomes a saga step, and the payment stays live until it ends
    // (a captured authorization was live already).
    if (command._tag === "Transfer" && shard.live.size >= this.context.limits.pendingPaymentsMax) {
      callback(reject("OVERLOADED", `shard ${shard.shard} has ${shard.live.size} payments pending`))
      return
    }
    this.decideAndCommit(
      shard,
      undefined,
      command.creditorLocal ? { ...command, creditorLocal: false } : command,
      callback,
    )
  }

  private decideAndCommit(
    shard: Shard,
    creditor: Shard | undefined,
    command: Command,
    callback: OutcomeCallback,
  ): void {
    const { commit, limits } = this.context
    const view = creditor === undefined ? shard.ledger : new PairView(shard, creditor)
    const decision = decide(view, command, limits.policy)
    if (isRejection(decision)) {
      commit.after((durable) => callback(durable ? decision : unavailable(shard.shard, "failed")))
      return
    }
    const pending = decision.events.length === 0 ? undefined : commit.begin(creditor === undefined ? 1 : 2)
    if (pending !== undefined) this.apply(pending, shard, creditor, decision.events)
    const outcome = outcomeAfter(shard, creditor, command)
    const release = (durable: boolean) => this.settle(durable, shard, outcome, decision, callback)
    // No events (an idempotent repeat), or a commit already abandoned (whose `after` fails at once).
    if (pending === undefined) commit.after(release)
    else commit.finish(pending, release)
  }

  private settle(durable: boolean, shard: Shard, outcome: Outcome, decision: Accepted, callback: OutcomeCallback) {
    callback(durable ? outcome : unavailable(shard.shard, "failed"))
    if (durable && decision.effects.length > 0) this.context.runEffects(decision.effects)
  }

  /** Applies the events in memory, each to its account's shard, and queues one journal record per shard touched. */
  private apply(
    pending: PendingCommand,
    shard: Shard,
    creditor: Shard | undefined,
    events: ReadonlyArray<Event>,
  ): void {
    if (creditor === undefined) {
      applyTo(this.context.commit, pending, shard, events)
      return
    }
    const own: Array<Event> = []
    const credited: Array<Event> = []
    for (const event of events) {
      if (creditor.ledger.account(event.tenantId, event.accountId) !== undefined) credited.push(event)
      else own.push(event)
    }
    if (own.length > 0) applyTo(this.context.commit, pending, shard, own)
    if (credited.length > 0) applyTo(this.context.commit, pending, creditor, credited)
  }

  getAccount(tenantId: TenantId, accountId: AccountId, callback: OutcomeCallback): void {
    const index = this.shardIndexOf(tenantId, accountId)
    const shard = this.context.shardAt(index)
    if (shard === undefined) {
      callback(unavailable(index, "is not serving on this node"))
      return
    }
    const account = shard.ledger.account(tenantId, accountId)
    const outcome: Outcome =
      account === undefined
        ? reject("UNKNOWN_ACCOUNT", `account ${accountId} does not exist`)
        : { _tag: "Account", account }
    this.context.commit.after((durable) => callback(durable ? outcome : unavailable(index, "failed")))
  }

  getPayment(tenantId: TenantId, from: AccountId, paymentId: PaymentId, callback: OutcomeCallback): void {
    const index = this.shardIndexOf(tenantId, from)
    const shard = this.context.shardAt(index)
    if (shard === undefined) {
      callback(unavailable(index, "is not serving on this node"))
      return
    }
    const answer = () => {
      const payment = shard.ledger.payment(tenantId, from, paymentId)
      // Past its window a payment is forgotten, in memory or not, as its segment soon is.
      const forgotten =
        payment === undefined || paymentExpired(payment, this.context.nowMs(), this.context.limits.policy)
      const outcome: Outcome =
        payment === undefined || forgotten
          ? reject("UNKNOWN_PAYMENT", `payment ${paymentId} of ${from} does not exist`)
          : { _tag: "Payment", payment }
      this.context.commit.after((durable) => callback(durable ? outcome : unavailable(index, "failed")))
    }
    this.whenLoaded(shard, tenantId, from, paymentKey(tenantId, from, paymentId), answer, callback)
  }
}

/** Applies events to one shard's ledger and queues their record with the versions (and keys) they produced. */
const applyTo = (commit: NodeCommit, pending: PendingCommand, shard: Shard, events: ReadonlyArray<Event>): void => {
  const batch = commit.record(pending, shard.shard, { events })
  for (const event of events) {
    for (const entity of evolve(shard.ledger, event)) {
      const key = entity.kind === "account" ? "" : entityKey(entity)
      shard.ledger.putKeyed(key, entity)
      batch.changed.push(entity)
      batch.changedKeys.push(key)
    }
  }
}
