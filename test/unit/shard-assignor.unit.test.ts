/**
 * Given/when/then examples of the shard assignor at its edges: one shard and one node, more nodes
 * than shards, a 16-shard group growing from 3 nodes to 4 with exact shares, conflicting claims, a
 * node rejoining under a new member id, and the claim's bytes (round trip, and garbage read as an
 * empty claim).
 */
import { describe, expect, it } from "vitest"
import {
  assignShards,
  assignShardsByMember,
  decodeClaim,
  emptyClaim,
  encodeClaim,
  type GroupMember,
  generationNone,
  movedShards,
  type ShardAssignment,
} from "../../cluster/shard-assignor.ts"

const member = (nodeId: string, owned: ReadonlyArray<number> = [], generation = generationNone): GroupMember => ({
  memberId: `${nodeId}-session-1`,
  nodeId,
  owned,
  generation,
})

/** Every node reporting what it holds in `assignment`, as members do after the rebalance that gave it. */
const claimsOf = (assignment: ShardAssignment, generation: number): Array<GroupMember> =>
  [...assignment].map(([nodeId, owned]) => member(nodeId, owned, generation))

const range = (from: number, to: number): Array<number> => Array.from({ length: to - from }, (_, index) => from + index)

describe("one shard, one node", () => {
  it("gives the shard to the node, whatever it claimed", () => {
    // Given a single-shard group whose only member claims shards that do not exist
    const members = [member("node-a", [0, 0, 3, -1, 1.5], 4)]
    // When the leader assigns
    const assignment = assignShards(1, members)
    // Then the node holds the shard
    expect([...assignment]).toEqual([["node-a", [0]]])
  })
})

describe("more nodes than shards", () => {
  it("lists every node, the ones beyond the shard count with no shards, and claimants keep theirs", () => {
    // Given 2 shards and 5 nodes, node-d and node-e owning one shard each
    const members = [
      member("node-a"),
      member("node-b"),
      member("node-c"),
      member("node-d", [1], 3),
      member("node-e", [0], 3),
    ]
    // When the leader assigns
    const assignment = assignShards(2, members)
    // Then the owners keep their shard and the others appear with none
    expect([...assignment]).toEqual([
      ["node-a", []],
      ["node-b", []],
      ["node-c", []],
      ["node-d", [1]],
      ["node-e", [0]],
    ])
  })
})

describe("16 shards over 3 nodes, then a 4th", () => {
  const firstGeneration = assignShards(16, [member("node-c"), member("node-a"), member("node-b")])

  it("splits 6/5/5 in node id order when nobody claims anything", () => {
    expect([...firstGeneration]).toEqual([
      ["node-a", range(0, 6)],
      ["node-b", range(6, 11)],
      ["node-c", range(11, 16)],
    ])
  })

  it("moves 4 shards to the new node, all of them taken from the nodes above 4", () => {
    // Given the three nodes reporting their shards from generation 1, and a new node
    const members = [...claimsOf(firstGeneration, 1), member("node-d")]
    // When the leader assigns
    const secondGeneration = assignShards(16, members)
    // Then each node holds 4, the old nodes keep their lowest 4, and exactly the new node's 4 moved
    expect([...secondGeneration]).toEqual([
      ["node-a", [0, 1, 2, 3]],
      ["node-b", [6, 7, 8, 9]],
      ["node-c", [11, 12, 13, 14]],
      ["node-d", [4, 5, 10, 15]],
    ])
    expect(movedShards(firstGeneration, secondGeneration)).toEqual([4, 5, 10, 15])
  })

  it("moves only the departed node's shards when node-b leaves", () => {
    // Given node-a and node-c reporting their shards from generation 1, node-b gone
    const members = claimsOf(firstGeneration, 1).filter((claimant) => claimant.nodeId !== "node-b")
    // When the leader assigns
    const secondGeneration = assignShards(16, members)
    // Then node-b's five shards went to the others and no other shard moved
    expect([...secondGeneration]).toEqual([
      ["node-a", [...range(0, 6), 6, 7]],
      ["node-c", [8, 9, 10, ...range(11, 16)]],
    ])
    expect(movedShards(firstGeneration, secondGeneration)).toEqual(range(6, 11))
  })
})

describe("conflicting claims", () => {
  it("gives a shard claimed twice to the later generation", () => {
    // Given node-b, which missed a rebalance, still claiming shard 1 from generation 3
    const members = [member("node-a", [0, 1], 4), member("node-b", [1, 2], 3)]
    // When the leader assigns 4 shards
    const assignment = assignShards(4, members)
    // Then node-a keeps shard 1, and node-b keeps its uncontested shard 2
    expect(assignment.get("node-a")).toEqual([0, 1])
    expect(assignment.get("node-b")).toEqual([2, 3])
  })

  it("gives a shard claimed twice in one generation to the smaller node id", () => {
    const assignment = assignShards(2, [member("node-b", [0], 4), member("node-a", [0], 4)])
    expect([...assignment]).toEqual([
      ["node-a", [0]],
      ["node-b", [1]],
    ])
  })
})

describe("a node restarting", () => {
  const before = assignShards(8, [member("node-a"), member("node-b")])

  it("keeps its shards when it rejoins under a new member id with its claim", () => {
    // Given node-b's old session gone and the restarted process rejoining with node-b's claim
    const restarted: GroupMember = {
      memberId: "node-b-session-2",
      nodeId: "node-b",
      owned: [4, 5, 6, 7],
      generation: 1,
    }
    // When the leader assigns
    const after = assignShards(8, [member("node-a", [0, 1, 2, 3], 1), restarted])
    // Then nothing moved
    expect(before.get("node-b")).toEqual([4, 5, 6, 7])
    expect(movedShards(before, after)).toEqual([])
  })

  it("counts once while its old session lingers, the session with the later generation getting the shards", () => {
    // Given node-b's old session, still in the group, and its new session that holds no assignment yet
    const oldSession = member("node-b", [4, 5, 6, 7], 1)
    const newSession: GroupMember = { memberId: "node-b-session-2", nodeId: "node-b", owned: [], generation: -1 }
    const members = [member("node-a", [0, 1, 2, 3], 1), newSession, oldSession]
    // When the leader assigns
    const byNodeId = assignShards(8, members)
    const byMemberId = assignShardsByMember(8, members)
    // Then the shares are those of two nodes, and only the old session is handed node-b's shards
    expect([...byNodeId]).toEqual([...before])
    expect(byMemberId.get("node-b-session-1")).toEqual([4, 5, 6, 7])
    expect(byMemberId.get("node-b-session-2")).toEqual([])
    expect(byMemberId.get("node-a-session-1")).toEqual([0, 1, 2, 3])
  })
})

describe("refusals", () => {
  it("asserts a shard count from 1 to 65536, at least one member and distinct member ids", () => {
    expect(() => assignShards(0, [member("node-a")])).toThrow("shard count")
    expect(() => assignShards(65_537, [member("node-a")])).toThrow("shard count")
    expect(() => assignShards(2.5, [member("node-a")])).toThrow("shard count")
    expect(() => assignShards(4, [])).toThrow("at least its leader")
    expect(() => assignShards(4, [member("node-a"), member("node-a")])).toThrow("member ids repeat")
  })
})

describe("claim bytes", () => {
  it("round-trips a claim as 5 bytes plus 2 per shard, ascending and without duplicates", () => {
    const bytes = encodeClaim({ owned: [7, 0, 65_535, 7], generation: 12 })
    expect([...bytes]).toEqual([1, 0, 0, 0, 12, 0, 0, 0, 7, 0xff, 0xff])
    expect(decodeClaim(bytes)).toEqual({ owned: [0, 7, 65_535], generation: 12 })
    expect(decodeClaim(encodeClaim(emptyClaim))).toEqual(emptyClaim)
  })

  it("reads a claim inside a larger buffer, as Kafka's decoder hands out slices", () => {
    const framed = new Uint8Array([9, 9, ...encodeClaim({ owned: [3], generation: 2 }), 9])
    expect(decodeClaim(framed.subarray(2, framed.length - 1))).toEqual({ owned: [3], generation: 2 })
  })

  it("reads garbage as an empty claim", () => {
    const garbage = [
      new Uint8Array([]),
      new Uint8Array([1, 0, 0]),
      new Uint8Array([2, 0, 0, 0, 1, 0, 3]),
      new Uint8Array([1, 0, 0, 0, 1, 0, 3, 0]),
      new Uint8Array([1, 0, 0, 0, 1, 0, 5, 0, 3]),
      new Uint8Array([1, 0, 0, 0, 1, 0, 5, 0, 5]),
      new Uint8Array([1, 0xff, 0xff, 0xff, 0xfe, 0, 1]),
      new TextEncoder().encode('{"owned":[1,2],"generation":3}'),
    ]
    for (const bytes of garbage) expect(decodeClaim(bytes)).toEqual(emptyClaim)
  })

  it("refuses to encode what it could not read back", () => {
    expect(() => encodeClaim({ owned: [65_536], generation: 1 })).toThrow("cannot be encoded")
    expect(() => encodeClaim({ owned: [-1], generation: 1 })).toThrow("cannot be encoded")
    expect(() => encodeClaim({ owned: [], generation: 2 ** 31 })).toThrow("int32")
    expect(() => encodeClaim({ owned: [], generation: -2 })).toThrow("int32")
  })
})
