/**
 * The ShardLeases port: which node serves which shard, and the fencing epoch of each ownership.
 * Epochs only grow, so every store that checks them can tell a stale owner from the current one.
 */
import { Context, type Effect, Schema } from "effect"

export class LeaseUnavailable extends Schema.TaggedError<LeaseUnavailable>()("LeaseUnavailable", {
  shard: Schema.Number,
  message: Schema.String,
}) {}

export interface ShardLease {
  readonly shard: number
  /** Strictly greater than the epoch of every earlier ownership of this shard. */
  readonly epoch: number
}

export class ShardLeases extends Context.Service<
  ShardLeases,
  {
    /**
     * Takes the shard for this node (waiting out another live node's lease) with a new epoch,
     * greater than `epochFloor` too: a recovery whose claim found a newer epoch (its store lost
     * numbers, say a Redis failover) asks again above it and converges in one retry.
     */
    readonly acquire: (shard: number, epochFloor?: number) => Effect.Effect<ShardLease, LeaseUnavailable>
    /** Gives the shard up so another node can take it at once. */
    readonly release: (lease: ShardLease) => Effect.Effect<void>
  }
>()("payments/ShardLeases") {}
