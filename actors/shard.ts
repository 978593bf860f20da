/**
 * A shard: the unit of ownership, recovery and fencing. It hosts the actors of its accounts; a
 * command is decided and applied to its account's in-memory state at once, in arrival order (one
 * at a time per account, on the event loop), and its answer waits in group commit until the
 * journal holds it. If an append fails the shard drops its memory and is rebuilt from snapshot and
 * journal before it serves again, so memory never runs ahead of the log for anything a client has
 * been told.
 */
import { Cause, Effect, Exit, Option } from "effect"
import type { Command } from "../core/commands.ts"
import { decide } from "../core/decide.ts"
import { isRejection, type Rejection, reject } from "../core/errors.ts"
import type { JournalRecord } from "../core/events.ts"
import { applyEvents } from "../core/evolve.ts"
import type { Entity, Ledger, Payment } from "../core/ledger.ts"
import { paymentKey } from "../core/ledger.ts"
import { JournalFenced } from "../persistence/journal.ts"
import { type AppendResult, type Batch, GroupCommit } from "./group-commit.ts"
import type { RuntimeLimits } from "./limits.ts"
import type { Outcome, OutcomeCallback } from "./processor.ts"
import { type Incarnation, type PersistencePorts, recoverShard } from "./recovery.ts"
import { SnapshotWriter } from "./snapshot-writer.ts"

export type ShardStatus = "recovering" | "serving" | "fenced" | "stopped"

const unavailable = (shard: number, why: string): Rejection => reject("UNAVAILABLE", `shard ${shard} ${why}`)

/** The answer a command gets once durable: the account it changed, or the payment. */
const outcomeAfter = (ledger: Ledger, command: Command): Outcome => {
  switch (command._tag) {
    case "OpenAccount":
    case "Deposit": {
      const account = ledger.account(command.tenantId, command.accountId)
      return account === undefined ? reject("UNKNOWN_ACCOUNT", "account vanished") : { _tag: "Account", account }
    }
    case "ApplyCredit": {
      const account = ledger.account(command.tenantId, command.to)
      return account === undefined ? reject("UNKNOWN_ACCOUNT", "account vanished") : { _tag: "Account", account }
    }
    case "Transfer":
    case "SettleTransfer":
    case "ReverseTransfer": {
      const payment = ledger.payment(command.tenantId, command.from, command.paymentId)
      return payment === undefined ? reject("UNKNOWN_PAYMENT", "payment vanished") : { _tag: "Payment", payment }
    }
  }
}

export class Shard {
  status: ShardStatus = "recovering"
  private incarnation: Incarnation | undefined
  private commits: GroupCommit | undefined
  private snapshotWriter: SnapshotWriter | undefined
  /** Durable cross-shard payments whose saga has not ended, by payment key. */
  readonly pendingPayments = new Map<string, Payment>()
  private rebuildTimer: NodeJS.Timeout | undefined

  constructor(
    readonly shard: number,
    private readonly ports: PersistencePorts,
    private readonly limits: RuntimeLimits,
    /** Told when the shard starts serving (after recovery or a rebuild): sagas resume from it. */
    private readonly onServing: (shard: Shard) => void,
  ) {}

  get accountCount(): number {
    return this.incarnation?.ledger.accounts.size ?? 0
  }

  get recordsWaiting(): number {
    return this.commits?.depth ?? 0
  }

  get snapshotUnsavedEntities(): number {
    return this.snapshotWriter?.unsaved ?? 0
  }

  get ledger(): Ledger | undefined {
    return this.status === "serving" ? this.incarnation?.ledger : undefined
  }

  /** Recovers the shard; on failure keeps retrying in the background until it serves. */
  readonly start: Effect.Effect<void> = Effect.suspend(() => this.recoverOnce()).pipe(Effect.asVoid)

  execute(command: Command, callback: OutcomeCallback): void {
    const incarnation = this.incarnation
    const commits = this.commits
    if (this.status !== "serving" || incarnation === undefined || commits === undefined) {
      callback(unavailable(this.shard, this.status))
      return
    }
    if (commits.depth >= this.limits.shardQueueDepthMax) {
      callback(reject("OVERLOADED", `shard ${this.shard} has ${commits.depth} commands waiting`))
      return
    }
    if (this.snapshotWriter?.overfull === true) {
      callback(unavailable(this.shard, "cannot save snapshots"))
      return
    }
    const decision = decide(incarnation.ledger, command)
    if (isRejection(decision)) {
      commits.after((durable) => callback(durable ? decision : unavailable(this.shard, "failed")))
      return
    }
    const changed = decision.length === 0 ? [] : applyEvents(incarnation.ledger, decision)
    const outcome = outcomeAfter(incarnation.ledger, command)
    const settle = (durable: boolean) => callback(durable ? outcome : unavailable(this.shard, "failed"))
    if (decision.length === 0) commits.after(settle)
    else commits.add({ events: decision }, changed, settle)
  }

  /** Answers from the ledger as of now, once everything before it is durable. */
  read(answer: (ledger: Ledger) => Outcome, callback: OutcomeCallback): void {
    const incarnation = this.incarnation
    if (this.status !== "serving" || incarnation === undefined || this.commits === undefined) {
      callback(unavailable(this.shard, this.status))
      return
    }
    const outcome = answer(incarnation.ledger)
    this.commits.after((durable) => callback(durable ? outcome : unavailable(this.shard, "failed")))
  }

  /** Stops serving and releases this ownership (journal writer, timers); used at shutdown. */
  readonly stop: Effect.Effect<void> = Effect.suspend(() => {
    this.status = "stopped"
    if (this.rebuildTimer !== undefined) clearTimeout(this.rebuildTimer)
    return this.dropIncarnation("the node is stopping")
  })

  private recoverOnce(): Effect.Effect<boolean> {
    this.status = "recovering"
    return recoverShard(this.ports, this.shard).pipe(
      Effect.exit,
      Effect.flatMap((exit) => {
        if (this.status === "stopped") {
          return Exit.isSuccess(exit) ? Effect.as(exit.value.release, false) : Effect.succeed(false)
        }
        if (Exit.isSuccess(exit)) {
          this.serve(exit.value)
          return Effect.succeed(true)
        }
        return Effect.logError("shard recovery failed; retrying").pipe(
          Effect.annotateLogs({ shard: this.shard, cause: String(exit.cause) }),
          Effect.andThen(Effect.sync(() => this.scheduleRebuild())),
          Effect.as(false),
        )
      }),
    )
  }

  private serve(incarnation: Incarnation): void {
    this.incarnation = incarnation
    this.commits = new GroupCommit(
      this.limits.batchRecordsMax,
      incarnation.writer.appendsInFlightMax ?? 1,
      (records, done) => this.appendBatch(incarnation, records, done),
      (batch) => this.onDurable(batch),
      (failure) => this.onAppendFailure(incarnation, failure),
    )
    this.snapshotWriter = new SnapshotWriter(this.shard, incarnation, this.ports.snapshots, this.limits, () =>
      this.fence(incarnation, "a newer owner claimed the snapshot store"),
    )
    this.pendingPayments.clear()
    for (const payment of incarnation.ledger.payments.values()) {
      if (payment.status === "pending")
        this.pendingPayments.set(paymentKey(payment.tenantId, payment.from, payment.paymentId), payment)
    }
    this.status = "serving"
    this.onServing(this)
  }

  private appendBatch(
    incarnation: Incarnation,
    records: ReadonlyArray<JournalRecord>,
    done: (result: AppendResult) => void,
  ): void {
    Effect.runCallback(incarnation.writer.append(records), {
      onExit: (exit) => {
        if (Exit.isSuccess(exit)) done({ _tag: "Durable", nextOffset: exit.value.nextOffset })
        else {
          const failure = Option.getOrElse(Cause.findErrorOption(exit.cause), () => Cause.squash(exit.cause))
          done({ _tag: "Failed", failure })
        }
      },
    })
  }

  /** Runs in log order: the snapshot's offset and its entities advance together, batch by batch. */
  private onDurable(batch: Batch): void {
    for (const entity of batch.changed) this.trackPending(entity)
    this.snapshotWriter?.changed(batch.changed, batch.eventCount, batch.nextOffset)
  }

  private trackPending(entity: Entity): void {
    if (entity.kind !== "payment") return
    const payment = entity.value
    const key = paymentKey(payment.tenantId, payment.from, payment.paymentId)
    if (payment.status === "pending") this.pendingPayments.set(key, payment)
    else this.pendingPayments.delete(key)
  }

  private onAppendFailure(incarnation: Incarnation, failure: unknown): void {
    if (this.incarnation !== incarnation) return
    if (failure instanceof JournalFenced) {
      this.fence(incarnation, "the journal fenced this writer")
      return
    }
    Effect.runFork(
      Effect.logError("journal append failed; dropping shard for rebuild").pipe(
        Effect.annotateLogs({ shard: this.shard, cause: String(failure) }),
        Effect.andThen(this.dropIncarnation("journal append failed")),
        Effect.andThen(Effect.sync(() => this.scheduleRebuild())),
      ),
    )
  }

  /**
   * This ownership was fenced: never write with it again. The shard then tries to take a new
   * ownership, which waits on the lease while another node holds it. Fencing is not always another
   * node: the broker also aborts a transaction that stalled past its timeout, and a single node
   * must come back from that by itself.
   */
  private fence(incarnation: Incarnation, why: string): void {
    if (this.incarnation !== incarnation) return
    if (this.status !== "stopped") this.status = "fenced"
    Effect.runFork(
      Effect.logError("shard fenced; no longer serving this ownership").pipe(
        Effect.annotateLogs({ shard: this.shard, why }),
        Effect.andThen(this.dropIncarnation(why)),
        Effect.andThen(Effect.sync(() => this.scheduleRebuild())),
      ),
    )
  }

  private dropIncarnation(why: string): Effect.Effect<void> {
    const incarnation = this.incarnation
    const commits = this.commits
    const snapshotWriter = this.snapshotWriter
    this.incarnation = undefined
    this.commits = undefined
    this.snapshotWriter = undefined
    this.pendingPayments.clear()
    if (this.status === "serving") this.status = "recovering"
    commits?.abandon()
    snapshotWriter?.stop()
    if (incarnation === undefined) return Effect.void
    return incarnation.release.pipe(Effect.annotateLogs({ shard: this.shard, why }))
  }

  private scheduleRebuild(): void {
    if (this.status === "stopped" || this.rebuildTimer !== undefined) return
    this.status = "recovering"
    this.rebuildTimer = setTimeout(() => {
      this.rebuildTimer = undefined
      Effect.runFork(this.recoverOnce())
    }, this.limits.rebuildRetryDelayMs)
  }
}
