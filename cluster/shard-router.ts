/**
 * Where a request goes in the cluster: the address of the node that owns its account's shard,
 * from the last shard map this node received, or undefined when this node owns it (or nobody is
 * known to, and this node answers for it itself). The map is indexed by shard once per generation.
 */
import { type AccountId, shardOf, type TenantId } from "../core/ids.ts"
import type { ClusterView } from "./group-membership.ts"

export const makeShardRouter = (currentView: () => ClusterView | undefined, selfNodeId: string, shardCount: number) => {
  let indexed: ClusterView | undefined
  let owners: Array<string | undefined> = []
  const ownersOf = (view: ClusterView | undefined): Array<string | undefined> => {
    if (view === indexed) return owners
    indexed = view
    owners = new Array<string | undefined>(shardCount).fill(undefined)
    for (const node of view?.nodes ?? []) {
      if (node.nodeId === selfNodeId) continue
      for (const shard of node.shards) owners[shard] = node.address
    }
    return owners
  }
  return {
    ownerAddressOfShard: (shard: number): string | undefined => ownersOf(currentView())[shard],
    ownerAddressOf: (tenantId: string, accountId: string): string | undefined =>
      ownersOf(currentView())[shardOf(tenantId as TenantId, accountId as AccountId, shardCount)],
  }
}
