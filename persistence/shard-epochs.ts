/**
 * The ShardEpochs port: hands out each shard's ownership epochs. Every epoch it returns for a shard
 * is greater than every epoch it returned for that shard before, to any node, and than the floor the
 * caller names; that is what lets the journal and snapshot fences tell a stale owner from the current
 * one. It must be linearizable and durable (aws mode keeps the counter in DynamoDB, not in Redis,
 * whose asynchronous replication could hand a number out twice after a failover).
 */
import { Context, type Effect } from "effect"
import type { LeaseUnavailable } from "./shard-leases.ts"

export class ShardEpochs extends Context.Service<
  ShardEpochs,
  {
    /** A new epoch for `shard`, above every earlier one and above `floor`. */
    readonly next: (shard: number, floor: number) => Effect.Effect<number, LeaseUnavailable>
  }
>()("payments/ShardEpochs") {}
