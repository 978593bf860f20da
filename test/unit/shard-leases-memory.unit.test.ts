/**
 * The in-process ShardLeases against the lease contract (one node by design), plus its epoch floor:
 * a restarted process seeded from durable state still gives epochs above what it gave before.
 */
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { layerMemory, makeMemoryShardLeases } from "../../persistence/memory/shard-leases-memory.ts"
import { shardLeasesContract } from "../contract/shard-leases.contract.ts"

shardLeasesContract("memory", () => layerMemory(), { multiNode: false })

describe("memory ShardLeases", () => {
  it("starts epochs above the floor it is given", () => {
    const leases = makeMemoryShardLeases(41)
    const lease = Effect.runSync(leases.acquire(7))
    expect(lease).toEqual({ shard: 7, epoch: 42 })
  })
})
