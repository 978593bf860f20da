/**
 * The Processor: what the edges (WebSocket, HTTP, Kafka inbound) call to run a command or read
 * state. Callback-based because it sits on the hot path between uWebSockets.js callbacks and the
 * shard actors, where an Effect per request would only add allocation.
 *
 * Every outcome is final and durable: a callback fires only after the journal confirmed the batch
 * holding the command's events (or, for a read, every batch that changed what it reads).
 */
import type { Command } from "../core/commands.ts"
import type { Rejection } from "../core/errors.ts"
import type { AccountId, PaymentId, TenantId } from "../core/ids.ts"
import type { Account, Payment } from "../core/ledger.ts"
import type { DurationHistogram } from "./duration-histogram.ts"

export type Outcome =
  | { readonly _tag: "Account"; readonly account: Account }
  | { readonly _tag: "Payment"; readonly payment: Payment }
  | Rejection

export type OutcomeCallback = (outcome: Outcome) => void

export interface Processor {
  /**
   * Runs an OpenAccount, Deposit or Transfer. Answers OpenAccount and Deposit with the account,
   * Transfer with the payment (a declined payment is a success), or a rejection (OVERLOADED when
   * the shard's mailbox is full, UNAVAILABLE while the shard recovers or its journal is down).
   */
  readonly submit: (command: Command, callback: OutcomeCallback) => void
  readonly getAccount: (tenantId: TenantId, accountId: AccountId, callback: OutcomeCallback) => void
  readonly getPayment: (tenantId: TenantId, from: AccountId, paymentId: PaymentId, callback: OutcomeCallback) => void
  /** True when every owned shard has recovered and serves. */
  readonly isReady: () => boolean
  /** Gauges of the node's shards, for operators and benchmarks (cheap: sums over the shards). */
  readonly metrics: () => NodeMetrics
  /** Which node owns which shard, and in what state, as this node knows it (`GET /v1/cluster`). */
  readonly clusterStatus: () => ClusterStatus
}

/**
 * serving: answers commands; recovering: its owner is rebuilding it; moving: changing owners;
 * unassigned: no live node owns it.
 */
export type ShardStatus = "serving" | "recovering" | "moving" | "unassigned"

export interface ClusterStatus {
  /** Every live member, also one with no shards. `address` is what other nodes dial (CLUSTER_ADVERTISE). */
  readonly nodes: ReadonlyArray<{
    readonly nodeId: string
    readonly address: string
    readonly shards: ReadonlyArray<number>
  }>
  readonly shards: ReadonlyArray<{
    readonly shard: number
    readonly owner: string | null
    readonly status: ShardStatus
  }>
}

export interface NodeMetrics {
  readonly shards: number
  readonly shardsServing: number
  readonly accounts: number
  /** Payments, deposits and credits held in memory (the recent set and the live payments). */
  readonly entriesInMemory: number
  /** Idempotency keys of saved entries in the window, and the bytes of their index. */
  readonly idempotencyKeysIndexed: number
  readonly idempotencyIndexBytes: number
  /** Journal records accepted and not yet durable, over every shard. */
  readonly recordsWaiting: number
  /** Entity versions the snapshot store does not have yet: how far snapshots lag. */
  readonly snapshotUnsavedEntities: number
  /** Cross-node payments whose saga has not ended. */
  readonly paymentsPending: number
  /** Journal appends (node flushes) and records made durable since the node started. */
  readonly journalCommitsTotal: number
  readonly journalRecordsTotal: number
  /** Snapshot writes since the node started: segment parts written, and segments saved. */
  readonly snapshotPartWritesTotal: number
  readonly snapshotSegmentsTotal: number
  /** Entries read back from the snapshot store since the node started. */
  readonly entryLookupsTotal: number
  /** Scheduled side effects waiting on their timers. */
  readonly timersPending: number
  /** Journal append durations since the node started. */
  readonly journalAppendDurations: DurationHistogram
  /**
   * Hand-offs since the node started, each from the new assignment until its shards serve: the
   * pause of the shards a hand-off moves (and, while a hand-off re-recovers every shard, of all).
   */
  readonly handOffDurations: DurationHistogram
  /** The latest hand-off's duration; NaN before the first. */
  readonly lastHandOffMs: number
}
