/**
 * A node: owns shards, routes each command to the shard of its account, runs the cross-shard
 * transfer saga, and is the `Processor` the edges call. In the single-node deployment it owns
 * every shard; the persistence ports it is given decide where state is durable.
 */
import { Context, Effect, Layer } from "effect"
import type { Command, Transfer } from "../core/commands.ts"
import { commandAccount } from "../core/commands.ts"
import { reject } from "../core/errors.ts"
import { shardOf } from "../core/ids.ts"
import { Journal } from "../persistence/journal.ts"
import { ShardLeases } from "../persistence/shard-leases.ts"
import { SnapshotStore } from "../persistence/snapshot-store.ts"
import type { RuntimeLimits } from "./limits.ts"
import type { Outcome, OutcomeCallback, Processor } from "./processor.ts"
import type { PersistencePorts } from "./recovery.ts"
import { Shard } from "./shard.ts"
import { TransferSaga } from "./transfer-saga.ts"

/** Shards recovered at once at start: bounds the memory and I/O of a cold start. */
const recoveryConcurrency = 4

export class PaymentNode extends Context.Service<PaymentNode, Processor>()("payments/PaymentNode") {}

const makeProcessor = (shards: ReadonlyArray<Shard>, limits: RuntimeLimits, saga: TransferSaga): Processor => {
  const shardFor = (command: Command): Shard =>
    shards[shardOf(command.tenantId, commandAccount(command), limits.shardCount)] as Shard

  const route = (command: Command, callback: OutcomeCallback): void => shardFor(command).execute(command, callback)

  /**
   * A transfer across shards is checked against the creditor first, so a request to an account
   * that does not exist (or holds another currency) never becomes a payment.
   */
  const submitTransfer = (command: Transfer, callback: OutcomeCallback): void => {
    const debtorShard = shardOf(command.tenantId, command.from, limits.shardCount)
    const creditorShard = shardOf(command.tenantId, command.to, limits.shardCount)
    const creditorLocal = debtorShard === creditorShard
    if (!creditorLocal) {
      const creditorLedger = (shards[creditorShard] as Shard).ledger
      if (creditorLedger === undefined) {
        callback(reject("UNAVAILABLE", `shard ${creditorShard} is not serving`))
        return
      }
      const creditor = creditorLedger.account(command.tenantId, command.to)
      const repeat = (shards[debtorShard] as Shard).ledger?.payment(command.tenantId, command.from, command.paymentId)
      if (repeat === undefined && creditor === undefined) {
        callback(reject("UNKNOWN_ACCOUNT", `account ${command.to} does not exist`))
        return
      }
      if (repeat === undefined && creditor !== undefined && creditor.currency !== command.currency) {
        callback(reject("CURRENCY_MISMATCH", `account ${command.to} holds ${creditor.currency}`))
        return
      }
    }
    ;(shards[debtorShard] as Shard).execute({ ...command, creditorLocal }, (outcome: Outcome) => {
      if (outcome._tag === "Payment" && outcome.payment.status === "pending") saga.drive(outcome.payment)
      callback(outcome)
    })
  }

  return {
    submit: (command, callback) => {
      if (command._tag === "Transfer") submitTransfer(command, callback)
      else route(command, callback)
    },
    getAccount: (tenantId, accountId, callback) =>
      (shards[shardOf(tenantId, accountId, limits.shardCount)] as Shard).read((ledger) => {
        const account = ledger.account(tenantId, accountId)
        return account === undefined
          ? reject("UNKNOWN_ACCOUNT", `account ${accountId} does not exist`)
          : { _tag: "Account", account }
      }, callback),
    getPayment: (tenantId, from, paymentId, callback) =>
      (shards[shardOf(tenantId, from, limits.shardCount)] as Shard).read((ledger) => {
        const payment = ledger.payment(tenantId, from, paymentId)
        return payment === undefined
          ? reject("UNKNOWN_PAYMENT", `payment ${paymentId} of ${from} does not exist`)
          : { _tag: "Payment", payment }
      }, callback),
    isReady: () => shards.every((shard) => shard.status === "serving"),
    metrics: () => {
      const sum = (gauge: (shard: Shard) => number) => shards.reduce((total, shard) => total + gauge(shard), 0)
      return {
        shards: shards.length,
        shardsServing: sum((shard) => (shard.status === "serving" ? 1 : 0)),
        accounts: sum((shard) => shard.accountCount),
        recordsWaiting: sum((shard) => shard.recordsWaiting),
        snapshotUnsavedEntities: sum((shard) => shard.snapshotUnsavedEntities),
        paymentsPending: sum((shard) => shard.pendingPayments.size),
      }
    },
  }
}

/** Builds the node, recovers every shard, and stops them (releasing writers) with the scope. */
export const makePaymentNode = (limits: RuntimeLimits) =>
  Effect.gen(function* () {
    const ports: PersistencePorts = {
      journal: yield* Journal,
      snapshots: yield* SnapshotStore,
      leases: yield* ShardLeases,
    }
    // The saga routes through the processor, which needs the shards: wire it through a late binding.
    let route: (command: Command, callback: OutcomeCallback) => void = (_command, callback) =>
      callback(reject("UNAVAILABLE", "the node is starting"))
    const saga = new TransferSaga(limits, (command, callback) => route(command, callback))
    const resumeSagas = (shard: Shard) => {
      for (const payment of shard.pendingPayments.values()) saga.drive(payment)
    }
    const shards = Array.from({ length: limits.shardCount }, (_, index) => new Shard(index, ports, limits, resumeSagas))
    const processor = makeProcessor(shards, limits, saga)
    route = processor.submit
    const sweep = setInterval(() => {
      for (const shard of shards) if (shard.status === "serving") resumeSagas(shard)
    }, limits.sagaSweepIntervalMs)
    sweep.unref()
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        clearInterval(sweep)
        saga.stop()
      }).pipe(Effect.andThen(Effect.forEach(shards, (shard) => shard.stop, { discard: true }))),
    )
    yield* Effect.forEach(shards, (shard) => shard.start, { concurrency: recoveryConcurrency, discard: true })
    return processor
  })

export const layerPaymentNode = (
  limits: RuntimeLimits,
): Layer.Layer<PaymentNode, never, Journal | SnapshotStore | ShardLeases> =>
  Layer.effect(PaymentNode)(makePaymentNode(limits))
