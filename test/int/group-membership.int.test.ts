/**
 * Cluster membership on the real Kafka group coordinator: members of one owners' group each get a
 * disjoint share of the shards that together cover them all, every member reads the same map from
 * its own assignment, a joining member moves at most ceil(S/N)+1 shards, a leaving member's shards
 * go to the others while theirs stay put, and each member holds a valid lease while it heartbeats.
 */
import { randomUUID } from "node:crypto"
import { Admin } from "@platformatic/kafka"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  type ClusterView,
  defaultMembershipTimings,
  GroupMembership,
  type MembershipConfig,
} from "../../cluster/group-membership.ts"
import { stackUp } from "../../scripts/local-stack/stack.ts"

const shardCount = 8
let brokers: ReadonlyArray<string> = []
const topic = `membership-int-${randomUUID()}`
const groupId = `${topic}-owners`
const members: Array<GroupMembership> = []

beforeAll(async () => {
  brokers = (await stackUp()).kafkaBrokers.split(",")
  const admin = new Admin({ clientId: "membership-int", bootstrapBrokers: [...brokers], strict: false })
  await admin.createTopics({ topics: [topic], partitions: shardCount, replicas: 1 })
  await admin.close()
}, 120_000)

afterAll(async () => {
  await Promise.all(members.map((member) => member.leave()))
})

const configOf = (nodeId: string): MembershipConfig => ({
  brokers,
  groupId,
  topic,
  shardCount,
  nodeId,
  address: `127.0.0.1:${7000 + members.length}`,
  ...defaultMembershipTimings,
  requestTimeoutMs: 5_000,
})

const join = async (nodeId: string): Promise<GroupMembership> => {
  const member = new GroupMembership(configOf(nodeId), { assigned: () => {} })
  members.push(member)
  await member.join()
  return member
}

/** Waits until every given member sees the same generation with `nodeCount` nodes. */
const converged = async (group: ReadonlyArray<GroupMembership>, nodeCount: number): Promise<ClusterView> => {
  const deadline = Date.now() + 30_000
  for (;;) {
    const views = group.map((member) => member.view)
    const first = views[0]
    if (
      first !== undefined &&
      first.nodes.length === nodeCount &&
      views.every((view) => view?.generation === first.generation)
    )
      return first
    if (Date.now() > deadline) throw new Error(`no agreement: ${JSON.stringify(views.map((view) => view?.generation))}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

const ownersOf = (view: ClusterView): Map<number, string> =>
  new Map(view.nodes.flatMap((node) => node.shards.map((shard) => [shard, node.nodeId] as const)))

describe("group membership on the Kafka coordinator", () => {
  it("agrees on a covering, disjoint, sticky map as members join and leave", async () => {
    const [a, b, c] = await Promise.all(["node-a", "node-b", "node-c"].map(join))
    const three = [a, b, c] as Array<GroupMembership>
    const first = await converged(three, 3)
    for (const member of three) expect(member.view?.nodes).toEqual(first.nodes)
    const owners = ownersOf(first)
    expect([...owners.keys()].sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4, 5, 6, 7])
    expect(first.nodes.map((node) => node.shards.length).sort()).toEqual([2, 3, 3])
    for (const [index, member] of three.entries()) {
      const nodeId = ["node-a", "node-b", "node-c"][index]
      expect(member.view?.owned).toEqual(first.nodes.find((node) => node.nodeId === nodeId)?.shards)
      expect(member.leaseValid()).toBe(true)
    }

    const d = await join("node-d")
    const four = [...three, d]
    const second = await converged(four, 4)
    const moved = [...ownersOf(second)].filter(([shard, owner]) => owners.get(shard) !== owner)
    expect(moved.length).toBeLessThanOrEqual(Math.ceil(shardCount / 4) + 1)
    expect(second.nodes.every((node) => node.shards.length === 2)).toBe(true)

    // node-b leaves: only its shards move.
    const beforeLeave = ownersOf(second)
    await b?.leave()
    const rest = four.filter((member) => member !== b)
    const third = await converged(rest, 3)
    for (const [shard, owner] of beforeLeave) {
      if (owner !== "node-b") expect(ownersOf(third).get(shard)).toBe(owner)
    }
    expect([...ownersOf(third).values()]).not.toContain("node-b")
  }, 120_000)
})
