/**
 * A node: recovers the shards it owns as one incarnation (one journal writer for all of them),
 * serves them through a `CommandExecutor` over one node-wide group commit, carries out side
 * effects after commit, and is the `Processor` the edges call. When the journal fails or fences it,
 * or a snapshot store fences a shard, it drops the whole incarnation (memory may be ahead of the
 * log) and rebuilds it from snapshots and journal before it serves again.
 *
 * In the single-node deployment it owns every shard. `ownedShards` and `forward` let several
 * nodes share a deployment (the simulation tests do): a delivery to a shard this node does not own
 * is handed to `forward`, and `deliver` takes the deliveries other nodes forward here.
 */
import { Cause, Context, Effect, Exit, Layer, Option } from "effect"
import { type Command, commandAccount } from "../core/commands.ts"
import { reject } from "../core/errors.ts"
import { shardOf } from "../core/ids.ts"
import { type Entry, paymentKey } from "../core/ledger.ts"
import { pendingEffects } from "../core/pending-effects.ts"
import { Journal, JournalFenced, type JournalWriter } from "../persistence/journal.ts"
import { ShardLeases } from "../persistence/shard-leases.ts"
import { SnapshotStore } from "../persistence/snapshot-store.ts"
import { type RuntimeClock, systemClock } from "./clock.ts"
import { CommandExecutor } from "./command-executor.ts"
import { DurationHistogram } from "./duration-histogram.ts"
import type { RuntimeLimits } from "./limits.ts"
import { type AppendFlush, NodeCommit } from "./node-commit.ts"
import type { ClusterStatus, NodeMetrics, OutcomeCallback, Processor } from "./processor.ts"
import { type NodeIncarnation, type PersistencePorts, recoverNode } from "./recovery.ts"
import { Shard } from "./shard.ts"
import { SideEffectRunner } from "./side-effect-runner.ts"
import { SnapshotWriter } from "./snapshot-writer.ts"

/** The node as the edges and other nodes see it. */
export interface PaymentNodeHandle extends Processor {
  /** Runs a command another node delivered here (a saga step); its answer goes back as a delivery of its own. */
  readonly deliver: (command: Command) => void
  /**
   * Serves `shards` from now on (a new assignment of the cluster). `afterLapse`: this node's claim
   * lapsed before this assignment (another node may have written its shards meanwhile), so even an
   * unchanged set is recovered afresh rather than served from memory.
   */
  readonly reassign: (shards: ReadonlyArray<number>, afterLapse?: boolean) => void
}

export class PaymentNode extends Context.Service<PaymentNode, PaymentNodeHandle>()("payments/PaymentNode") {}

export interface NodeOptions {
  readonly clock?: RuntimeClock
  /** The shards this node owns; every shard when absent. */
  readonly ownedShards?: ReadonlyArray<number>
  /** Where deliveries to shards of other nodes go; required when `ownedShards` leaves any out. */
  readonly forward?: (command: Command) => void
  /** This node as other nodes know it: its id and the address they dial; for the cluster status. */
  readonly identity?: { readonly nodeId: string; readonly address: string }
  /**
   * False once this node cannot be sure it still owns its shards (its group session may have been
   * expired): from then on it serves nothing, reads included, until a new assignment.
   */
  readonly ownershipValid?: () => boolean
  /** The cluster's shard map as this node last received it, for the cluster status. */
  readonly clusterMap?: () =>
    | ReadonlyArray<{ readonly nodeId: string; readonly address: string; readonly shards: ReadonlyArray<number> }>
    | undefined
}

const ignoreOutcome: OutcomeCallback = () => {}

/** How long a request for a shard in transit waits for its new incarnation before UNAVAILABLE. */
const handOffWaitMs = 2_000
/** Requests that may wait on a hand-off at once; beyond, UNAVAILABLE at once. */
const handOffWaitersMax = 10_000

function* liveEntries(shard: Shard): Iterable<Entry> {
  for (const value of shard.live.values()) yield { kind: "payment", value }
}

/** One recovered incarnation being served. */
interface Serving {
  readonly incarnation: NodeIncarnation
  readonly shards: Array<Shard | undefined>
  readonly commit: NodeCommit
  readonly executor: CommandExecutor
  readonly effects: SideEffectRunner
}

const appendWith =
  (writer: JournalWriter): AppendFlush =>
  (batch, done) =>
    Effect.runCallback(writer.appendShards(batch), {
      onExit: (exit) => {
        if (Exit.isSuccess(exit)) done({ _tag: "Durable", nextOffsets: exit.value })
        else
          done({
            _tag: "Failed",
            failure: Option.getOrElse(Cause.findErrorOption(exit.cause), () => Cause.squash(exit.cause)),
          })
      },
    })

class NodeRuntime {
  status: "recovering" | "serving" | "stopped" = "recovering"
  private serving: Serving | undefined
  private rebuildCancel: (() => void) | undefined
  private owned: ReadonlyArray<number>
  private ownedSet: ReadonlySet<number>
  private readonly clock: RuntimeClock
  /** True from a new assignment until its shards serve: requests wait for them (bounded) rather than fail. */
  private handingOff = false
  private readonly waitingForHandOff = new Set<{ readonly run: () => void; readonly fail: () => void }>()
  /** When the hand-off under way began (its first assignment), for the hand-off pause it is measured as. */
  private handOffStartedMs: number | undefined
  private readonly handOffDurations = new DurationHistogram()
  private lastHandOffMs = Number.NaN
  /** Counters of incarnations gone, so the gauges keep counting across rebuilds. */
  private retired = { commits: 0, records: 0, partWrites: 0, segments: 0, lookups: 0 }
  private readonly retiredAppendDurations = new DurationHistogram()

  constructor(
    private readonly ports: PersistencePorts,
    private readonly limits: RuntimeLimits,
    private readonly options: NodeOptions,
  ) {
    this.clock = options.clock ?? systemClock
    this.owned = options.ownedShards ?? Array.from({ length: limits.shardCount }, (_, index) => index)
    this.ownedSet = new Set(this.owned)
  }

  readonly recover: Effect.Effect<void> = Effect.suspend(() => {
    const recovering = this.owned
    return recoverNode(this.ports, recovering, this.limits, this.clock.nowMs()).pipe(
      Effect.exit,
      Effect.flatMap((exit) => {
        if (this.status === "stopped") return Exit.isSuccess(exit) ? exit.value.release : Effect.void
        // The assignment changed while this recovery ran: give these shards back and recover the new set.
        if (Exit.isSuccess(exit) && recovering !== this.owned) {
          return exit.value.release.pipe(Effect.andThen(Effect.sync(() => this.scheduleRebuild(0))))
        }
        if (Exit.isSuccess(exit)) return Effect.sync(() => this.serve(exit.value))
        return Effect.logError("node recovery failed; retrying").pipe(
          Effect.annotateLogs({ cause: Cause.pretty(exit.cause) }),
          Effect.andThen(Effect.sync(() => this.scheduleRebuild())),
        )
      }),
    )
  })

  /**
   * Takes a new assignment: the shards this node serves from now on. Serving ones are handed over
   * (the incarnation is dropped: its writer and leases released, commands in flight answered
   * UNAVAILABLE) and the new set recovered; a set equal to the current one changes nothing unless
   * the claim lapsed before it (then a recovery under way is also started over, through the new array).
   */
  reassign(shards: ReadonlyArray<number>, afterLapse = false): void {
    const next = [...new Set(shards)].sort((a, b) => a - b)
    const unchanged = next.length === this.owned.length && next.every((shard, index) => shard === this.owned[index])
    if (unchanged && !afterLapse) return
    this.owned = next
    this.ownedSet = new Set(next)
    this.handingOff = true
    this.handOffStartedMs ??= this.clock.nowMs()
    const serving = this.serving
    if (serving !== undefined)
      // A hand-off is no failure: the rebuild starts as soon as the writer and leases are released.
      this.drop(serving.incarnation, unchanged ? "the claim on the shards lapsed" : "the shard assignment changed", 0)
  }

  private serve(incarnation: NodeIncarnation): void {
    const shards: Array<Shard | undefined> = Array.from({ length: this.limits.shardCount }, () => undefined)
    const commit = new NodeCommit(
      this.limits.shardCount,
      this.limits.flushRecordsMax,
      incarnation.writer.appendsInFlightMax,
      appendWith(incarnation.writer),
      (batch) => shards[batch.shard]?.onDurable(batch),
      (failure) => this.onJournalFailure(incarnation, failure),
      this.clock,
    )
    const effects = new SideEffectRunner(
      this.clock,
      this.limits.pendingPaymentsMax * this.owned.length,
      (command) => this.route(command),
      (command) => {
        if (command._tag !== "ExpireHold" && command._tag !== "RedeliverCredit") return true
        const shard = shards[shardOfCommand(command, this.limits.shardCount)]
        return shard === undefined || shard.live.has(paymentKey(command.tenantId, command.from, command.paymentId))
      },
    )
    const executor = new CommandExecutor({
      limits: this.limits,
      commit,
      shardAt: (index) => (this.serving?.commit === commit ? shards[index] : undefined),
      owns: (index) => this.ownedSet.has(index),
      runEffects: (list) => effects.run(list),
      nowMs: this.clock.nowMs,
    })
    for (const recovered of incarnation.shards) {
      const shard = this.startShard(recovered, commit, incarnation)
      shard.onPaymentEnded = (payment) => effects.cancelTimersOf(payment)
      shards[recovered.shard] = shard
    }
    this.serving = { incarnation, shards, commit, executor, effects }
    this.status = "serving"
    this.endHandOff(true)
    for (const shard of shards) {
      if (shard !== undefined) effects.run(pendingEffects(shard.live.values(), this.clock.nowMs(), this.limits.policy))
    }
  }

  private startShard(
    recovered: NodeIncarnation["shards"][number],
    commit: NodeCommit,
    incarnation: NodeIncarnation,
  ): Shard {
    const shard = new Shard(
      recovered.shard,
      recovered.snapshot.epoch,
      recovered.ledger,
      recovered.index,
      this.ports.snapshots,
      this.limits,
    )
    shard.snapshot = new SnapshotWriter(
      recovered.shard,
      recovered.snapshot,
      recovered.ledger,
      recovered.index,
      this.ports.snapshots,
      this.limits,
      this.clock,
      {
        seal: () => commit.seal(),
        afterQueued: (settle) => commit.after(settle),
        discardJournalBefore: (offset) => this.discardJournal(recovered.shard, offset),
        onSaved: () => shard.evict(),
        onFenced: () => this.drop(incarnation, `the snapshot store of shard ${recovered.shard} has a newer owner`),
        live: () => liveEntries(shard),
      },
    )
    return shard
  }

  private discardJournal(shard: number, offset: number): void {
    Effect.runCallback(this.ports.journal.discardBefore(shard, offset), {
      onExit: (exit) => {
        if (Exit.isFailure(exit))
          Effect.runFork(Effect.logWarning("discarding journal records failed; kept for now", exit.cause))
      },
    })
  }

  /** Runs a command on this node if it owns the account's shard, else forwards it. */
  route(command: Command): void {
    const serving = this.serving
    if (serving === undefined) return // not serving: recovery resumes what is pending
    if (this.ownsCommand(command)) serving.executor.execute(command, ignoreOutcome)
    else this.options.forward?.(command)
  }

  private ownsCommand(command: Command): boolean {
    return this.ownedSet.has(shardOfCommand(command, this.limits.shardCount))
  }

  /** The executor while this node serves and is sure it owns its shards; undefined otherwise (answer UNAVAILABLE). */
  get executor(): CommandExecutor | undefined {
    if (this.status !== "serving") return undefined
    if (this.options.ownershipValid !== undefined && !this.options.ownershipValid()) return undefined
    return this.serving?.executor
  }

  get current(): Serving | undefined {
    return this.serving
  }

  /** A failure of an incarnation already dropped (its late appends fail too) changes nothing. */
  private onJournalFailure(incarnation: NodeIncarnation, failure: unknown): void {
    if (this.serving?.incarnation !== incarnation) return
    const why = failure instanceof JournalFenced ? "the journal fenced this writer" : "a journal append failed"
    Effect.runFork(
      Effect.logError(`${why}; dropping the node's shards for a rebuild`).pipe(
        Effect.annotateLogs({ cause: String(failure) }),
      ),
    )
    this.drop(incarnation, why)
  }

  /** Stops serving this incarnation (answers waiting fail UNAVAILABLE), releases it, and rebuilds. */
  drop(incarnation: NodeIncarnation, why: string, rebuildDelayMs = this.limits.rebuildRetryDelayMs): void {
    const serving = this.serving
    if (serving === undefined || serving.incarnation !== incarnation) return
    this.retire(serving)
    this.serving = undefined
    if (this.status !== "stopped") this.status = "recovering"
    Effect.runFork(
      incarnation.release.pipe(
        Effect.annotateLogs({ why }),
        Effect.andThen(Effect.sync(() => this.scheduleRebuild(rebuildDelayMs))),
      ),
    )
  }

  private retire(serving: Serving): void {
    serving.effects.stop()
    for (const shard of serving.shards) {
      shard?.snapshot?.stop()
      shard?.abandonParked()
      this.retired.partWrites += shard?.snapshot?.partWrites ?? 0
      this.retired.segments += shard?.snapshot?.segmentsSaved ?? 0
      this.retired.lookups += shard?.lookupsTotal ?? 0
    }
    this.retiredAppendDurations.addAll(serving.commit.appendDurations)
    this.retired.commits += serving.commit.commitsTotal
    this.retired.records += serving.commit.recordsTotal
    serving.commit.abandon()
  }

  /** Recovers again after `delayMs` (by default the retry delay after a failure). */
  private scheduleRebuild(delayMs = this.limits.rebuildRetryDelayMs): void {
    if (this.status === "stopped" || this.rebuildCancel !== undefined) return
    this.rebuildCancel = this.clock.after(delayMs, () => {
      this.rebuildCancel = undefined
      Effect.runFork(this.recover)
    })
  }

  /**
   * Runs `run` once the shards serve again when a hand-off is under way (answering `fail` after
   * `handOffWaitMs`, or at once when too many wait); otherwise answers `fail` at once.
   */
  whenHandedOff(run: () => void, fail: () => void): void {
    if (!this.handingOff || this.status === "stopped" || this.waitingForHandOff.size >= handOffWaitersMax) {
      fail()
      return
    }
    const waiter = {
      run: () => {
        cancel()
        run()
      },
      fail: () => {
        cancel()
        fail()
      },
    }
    const cancel = this.clock.after(handOffWaitMs, () => {
      this.waitingForHandOff.delete(waiter)
      fail()
    })
    this.waitingForHandOff.add(waiter)
  }

  private endHandOff(served: boolean): void {
    if (served && this.handOffStartedMs !== undefined) {
      this.lastHandOffMs = this.clock.nowMs() - this.handOffStartedMs
      this.handOffDurations.record(this.lastHandOffMs)
    }
    this.handOffStartedMs = undefined
    this.handingOff = false
    const waiters = [...this.waitingForHandOff]
    this.waitingForHandOff.clear()
    for (const waiter of waiters) (served ? waiter.run : waiter.fail)()
  }

  readonly stop: Effect.Effect<void> = Effect.suspend(() => {
    this.status = "stopped"
    this.endHandOff(false)
    this.rebuildCancel?.()
    const serving = this.serving
    if (serving === undefined) return Effect.void
    this.retire(serving)
    this.serving = undefined
    return serving.incarnation.release
  })

  private appendDurations(serving: Serving | undefined): DurationHistogram {
    const all = new DurationHistogram()
    all.addAll(this.retiredAppendDurations)
    if (serving !== undefined) all.addAll(serving.commit.appendDurations)
    return all
  }

  /**
   * The shard map as this node knows it: its own shards with their state here, the others' as the
   * last assignment gave them (`moving` while this node's own set differs from what it serves).
   */
  clusterStatus(): ClusterStatus {
    const identity = this.options.identity ?? { nodeId: "", address: "" }
    const serving = this.status === "serving" ? this.serving : undefined
    const nodes = this.options.clusterMap?.() ?? [{ ...identity, shards: [...this.owned] }]
    const owners = new Map(nodes.flatMap((node) => node.shards.map((shard) => [shard, node.nodeId] as const)))
    const shards = Array.from({ length: this.limits.shardCount }, (_, shard) => {
      const owner = owners.get(shard)
      if (owner === undefined) return { shard, owner: null, status: "unassigned" as const }
      if (owner !== identity.nodeId) return { shard, owner, status: "serving" as const }
      if (!this.ownedSet.has(shard)) return { shard, owner, status: "moving" as const }
      const status = serving?.shards[shard] !== undefined ? ("serving" as const) : ("recovering" as const)
      return { shard, owner, status }
    })
    return { nodes, shards }
  }

  metrics(): NodeMetrics {
    const serving = this.serving
    const shards = serving?.shards.filter((shard): shard is Shard => shard !== undefined) ?? []
    const sum = (gauge: (shard: Shard) => number) => shards.reduce((total, shard) => total + gauge(shard), 0)
    return {
      shards: this.owned.length,
      shardsServing: this.status === "serving" ? shards.length : 0,
      accounts: sum((shard) => shard.ledger.accounts.size),
      entriesInMemory: sum((shard) => shard.ledger.entries.size),
      idempotencyKeysIndexed: sum((shard) => shard.index.size),
      idempotencyIndexBytes: sum((shard) => shard.index.bytes),
      recordsWaiting: serving?.commit.depth ?? 0,
      snapshotUnsavedEntities: sum((shard) => shard.snapshot?.unsaved ?? 0),
      paymentsPending: sum((shard) => shard.live.size),
      journalCommitsTotal: this.retired.commits + (serving?.commit.commitsTotal ?? 0),
      journalRecordsTotal: this.retired.records + (serving?.commit.recordsTotal ?? 0),
      snapshotPartWritesTotal: this.retired.partWrites + sum((shard) => shard.snapshot?.partWrites ?? 0),
      snapshotSegmentsTotal: this.retired.segments + sum((shard) => shard.snapshot?.segmentsSaved ?? 0),
      entryLookupsTotal: this.retired.lookups + sum((shard) => shard.lookupsTotal),
      timersPending: serving?.effects.timersPending ?? 0,
      journalAppendDurations: this.appendDurations(serving),
      handOffDurations: this.handOffDurations,
      lastHandOffMs: this.lastHandOffMs,
    }
  }
}

const shardOfCommand = (command: Command, shardCount: number): number =>
  shardOf(command.tenantId, commandAccount(command), shardCount)

const unavailable = (callback: OutcomeCallback) => callback(reject("UNAVAILABLE", "the node's shards are recovering"))

/** Runs `use` with the executor now, or once a hand-off under way has ended; UNAVAILABLE otherwise. */
const withExecutor = (runtime: NodeRuntime, callback: OutcomeCallback, use: (executor: CommandExecutor) => void) => {
  const executor = runtime.executor
  if (executor !== undefined) {
    use(executor)
    return
  }
  runtime.whenHandedOff(
    () => {
      const served = runtime.executor
      if (served === undefined) unavailable(callback)
      else use(served)
    },
    () => unavailable(callback),
  )
}

const handleOf = (runtime: NodeRuntime): PaymentNodeHandle => ({
  submit: (command, callback) => withExecutor(runtime, callback, (executor) => executor.execute(command, callback)),
  getAccount: (tenantId, accountId, callback) =>
    withExecutor(runtime, callback, (executor) => executor.getAccount(tenantId, accountId, callback)),
  getPayment: (tenantId, from, paymentId, callback) =>
    withExecutor(runtime, callback, (executor) => executor.getPayment(tenantId, from, paymentId, callback)),
  deliver: (command) => runtime.route(command),
  reassign: (shards, afterLapse) => runtime.reassign(shards, afterLapse),
  isReady: () => runtime.status === "serving",
  metrics: () => runtime.metrics(),
  clusterStatus: () => runtime.clusterStatus(),
})

/** Builds the node, recovers its shards, and stops them (releasing the writer and leases) with the scope. */
export const makePaymentNode = (limits: RuntimeLimits, options: NodeOptions = {}) =>
  Effect.gen(function* () {
    const ports: PersistencePorts = {
      journal: yield* Journal,
      snapshots: yield* SnapshotStore,
      leases: yield* ShardLeases,
    }
    const runtime = new NodeRuntime(ports, limits, options)
    yield* Effect.addFinalizer(() => runtime.stop)
    yield* runtime.recover
    return handleOf(runtime)
  })

export const layerPaymentNode = (
  limits: RuntimeLimits,
  options: NodeOptions = {},
): Layer.Layer<PaymentNode, never, Journal | SnapshotStore | ShardLeases> =>
  Layer.effect(PaymentNode)(makePaymentNode(limits, options))
