/**
 * The SnapshotStore port: per shard, the ledger entities as of a journal offset, so recovery
 * replays only what came after. Saves are incremental (only entities changed since the last save)
 * and conditional on the shard's ownership epoch, so a stale owner cannot overwrite a newer one.
 *
 * A save writes entries (payments, deposits, credits) before accounts and the checkpoint last, so
 * a save cut short leaves entities at most ahead of the checkpoint, never behind it; replay from
 * the checkpoint skips events an account already includes (by its sequence).
 */
import { Context, type Effect, Schema } from "effect"
import type { Entity } from "../core/ledger.ts"

export class SnapshotUnavailable extends Schema.TaggedError<SnapshotUnavailable>()("SnapshotUnavailable", {
  shard: Schema.Number,
  message: Schema.String,
}) {}

/** The shard's checkpoint carries a newer epoch: this process no longer owns the shard. */
export class SnapshotFenced extends Schema.TaggedError<SnapshotFenced>()("SnapshotFenced", {
  shard: Schema.Number,
  epoch: Schema.Number,
}) {}

export interface ShardCheckpoint {
  readonly shard: number
  readonly epoch: number
  /** Journal offset to replay from: every record before it is included in the saved entities. */
  readonly nextOffset: number
}

export interface ShardSnapshot {
  readonly checkpoint: ShardCheckpoint
  readonly entities: ReadonlyArray<Entity>
}

export class SnapshotStore extends Context.Service<
  SnapshotStore,
  {
    /**
     * Claims the shard for `epoch`: fails with SnapshotFenced if a newer epoch has claimed it,
     * and from then on saves with an older epoch fail. Returns the latest snapshot, if any.
     */
    readonly claim: (
      shard: number,
      epoch: number,
    ) => Effect.Effect<ShardSnapshot | undefined, SnapshotUnavailable | SnapshotFenced>
    /** Saves changed entities, then moves the checkpoint; conditional on `checkpoint.epoch`. */
    readonly save: (
      checkpoint: ShardCheckpoint,
      changed: ReadonlyArray<Entity>,
    ) => Effect.Effect<void, SnapshotUnavailable | SnapshotFenced>
  }
>()("payments/SnapshotStore") {}
