/**
 * Adding a fourth node to a three-node cluster under a stream of deposits: at most ceil(S/N)+1
 * shards change owner, the new map is agreed by every node, and no client sees an error other than
 * the UNAVAILABLE it retries; every account holds exactly its acknowledged deposits.
 */
import { beforeAll, describe, expect, it } from "vitest"
import { stackUp } from "../../scripts/local-stack/stack.ts"
import type { NodeProcess } from "../support/node-process.ts"
import {
  agreedMap,
  type ClusterStatus,
  expectDepositRounds,
  openAccounts,
  startClusterNode,
  streamDeposits,
} from "./support/cluster-nodes.ts"

const run = `scale${Date.now().toString(36)}`
const apiKey = "scale-test-key"
const shardCount = 8
const accounts = Array.from({ length: 16 }, (_, index) => `acct-${index}`)

beforeAll(async () => {
  await stackUp()
}, 180_000)

const startNode = (index: number) =>
  startClusterNode(run, String(index), 17440 + index, { shardCount, tenants: `bank:${apiKey}` })

const ownersOf = (status: ClusterStatus) => new Map(status.shards.map((shard) => [shard.shard, shard.owner]))

describe("adding a node", () => {
  it("moves at most ceil(S/N)+1 shards and loses or doubles no acknowledged deposit", async () => {
    const nodes: Array<NodeProcess> = []
    for (const index of [0, 1, 2]) nodes.push(await startNode(index))
    const ports = () => nodes.map((node) => node.port)
    try {
      const before = await agreedMap(nodes, 3)
      await openAccounts(nodes[0]?.port as number, apiKey, accounts)
      const deposits = streamDeposits(ports, apiKey, accounts)
      await new Promise((resolve) => setTimeout(resolve, 1_000))
      nodes.push(await startNode(3))
      const after = await agreedMap(nodes, 4, 60_000)
      const moved = [...ownersOf(after)].filter(([shard, owner]) => ownersOf(before).get(shard) !== owner)
      expect(moved.length).toBeGreaterThan(0)
      expect(moved.length).toBeLessThanOrEqual(Math.ceil(shardCount / 4) + 1)
      await new Promise((resolve) => setTimeout(resolve, 1_000))
      const sent = await deposits.stop()
      await expectDepositRounds(nodes[3]?.port as number, apiKey, accounts, sent)
    } finally {
      await Promise.all(nodes.map((node) => node.kill("SIGKILL")))
    }
  }, 300_000)
})
