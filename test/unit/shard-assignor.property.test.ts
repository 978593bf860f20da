/**
 * Properties of the shard assignor over generated groups whose claims are messy the way a real group's
 * can be: stale generations, two nodes claiming one shard, shards beyond the shard count, duplicates,
 * non-integers, and one node present under two member ids. Every result covers each shard exactly
 * once and is balanced; it does not depend on the order of members or of their claims; it keeps as
 * many winning claims in place as any balanced assignment could; adding a node to a stable assignment
 * moves at most ceil(S/N)+1 shards and removing one moves only its own. The claim's bytes round-trip
 * and garbage reads as an empty claim.
 */
import fc from "fast-check"
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
  type ShardClaim,
  shardCountMax,
} from "../../cluster/shard-assignor.ts"

const numRuns = 400

/** Node ids in code unit order, with a neighbour that sorts differently under a locale ("Node-b" < "node-a"). */
const nodeIdPool = ["node-a", "Node-b", "node-c", "node-d", "node-e", "node-f", "node-g", "node-h", "node-i", "node-j"]
const spareNodeIds = ["node-0", "node-k", "node-zz", "Node-0"]

/** A claimed shard: mostly real ones, some beyond the shard count, negative, or not integers at all. */
const claimedShard = (shardCount: number): fc.Arbitrary<number> =>
  fc.oneof(
    { weight: 12, arbitrary: fc.integer({ min: 0, max: shardCount - 1 }) },
    { weight: 1, arbitrary: fc.integer({ min: shardCount, max: shardCount + 8 }) },
    { weight: 1, arbitrary: fc.constantFrom(-1, -0, 1.5, Number.NaN, Number.POSITIVE_INFINITY) },
  )

/** Few generations, so that ties happen; now and then one that is no generation at all. */
const generation: fc.Arbitrary<number> = fc.oneof(
  { weight: 12, arbitrary: fc.integer({ min: -1, max: 5 }) },
  { weight: 1, arbitrary: fc.constantFrom(Number.NaN, 0.5, Number.NEGATIVE_INFINITY) },
)

interface Group {
  readonly shardCount: number
  readonly members: ReadonlyArray<GroupMember>
}

const messyGroup: fc.Arbitrary<Group> = fc.integer({ min: 1, max: 40 }).chain((shardCount) =>
  fc.record({
    shardCount: fc.constant(shardCount),
    members: fc.uniqueArray(
      fc.record({
        memberId: fc.string({ minLength: 1, maxLength: 4 }),
        nodeId: fc.constantFrom(...nodeIdPool),
        owned: fc.array(claimedShard(shardCount), { maxLength: Math.ceil(shardCount / 2) + 2 }),
        generation,
      }),
      { minLength: 1, maxLength: 9, selector: (member) => member.memberId },
    ),
  }),
)

/** Every node reporting what it holds in `assignment`, as members do after the rebalance that gave it. */
const claimsOf = (assignment: ShardAssignment, claimGeneration: number): Array<GroupMember> =>
  [...assignment].map(([nodeId, owned]) => ({ memberId: `${nodeId}#1`, nodeId, owned, generation: claimGeneration }))

/** A group after a rebalance: each node claims what the assignor gave it, all from the same generation. */
const stableGroup = fc.tuple(messyGroup, fc.integer({ min: 0, max: 1_000 })).map(([group, claimGeneration]) => {
  const assignment = assignShards(group.shardCount, group.members)
  return { shardCount: group.shardCount, assignment, members: claimsOf(assignment, claimGeneration) }
})

// The specification restated on its own, as the oracle for stickiness and for duplicated node ids.

const generationOf = (member: GroupMember): number =>
  Number.isSafeInteger(member.generation) ? member.generation : generationNone
const validShards = (member: GroupMember, shardCount: number): Set<number> =>
  Number.isSafeInteger(member.generation)
    ? new Set(member.owned.filter((shard) => Number.isInteger(shard) && shard >= 0 && shard < shardCount))
    : new Set()

/** The session kept for each node: the latest generation, then the smaller member id. */
const electedOf = (members: ReadonlyArray<GroupMember>): Map<string, GroupMember> => {
  const elected = new Map<string, GroupMember>()
  for (const member of members) {
    const current = elected.get(member.nodeId)
    if (
      current === undefined ||
      generationOf(member) > generationOf(current) ||
      (generationOf(member) === generationOf(current) && member.memberId < current.memberId)
    ) {
      elected.set(member.nodeId, member)
    }
  }
  return elected
}

/** The node whose claim on a shard wins: the latest generation, then the smaller node id. */
const claimWinners = (group: Group): Map<number, string> => {
  const winners = new Map<number, GroupMember>()
  for (const member of electedOf(group.members).values()) {
    for (const shard of validShards(member, group.shardCount)) {
      const current = winners.get(shard)
      if (
        current === undefined ||
        generationOf(member) > generationOf(current) ||
        (generationOf(member) === generationOf(current) && member.nodeId < current.nodeId)
      ) {
        winners.set(shard, member)
      }
    }
  }
  return new Map([...winners].map(([shard, member]) => [shard, member.nodeId]))
}

const ownerOf = (assignment: ShardAssignment): Map<number, string> =>
  new Map([...assignment].flatMap(([nodeId, shards]) => shards.map((shard) => [shard, nodeId] as const)))

const nodeCountOf = (group: Group): number => new Set(group.members.map((member) => member.nodeId)).size

/** Coverage, disjointness, the node list, ascending lists and the floor/ceiling balance, each asserted. */
const expectValid = (group: Group, assignment: ShardAssignment): void => {
  const nodeCount = nodeCountOf(group)
  expect([...assignment.keys()].sort()).toEqual([...new Set(group.members.map((member) => member.nodeId))].sort())
  const all = [...assignment.values()].flat()
  expect(all.sort((left, right) => left - right)).toEqual(Array.from({ length: group.shardCount }, (_, shard) => shard))
  for (const shards of assignment.values()) {
    expect([...shards]).toEqual([...shards].sort((left, right) => left - right))
    expect(shards.length).toBeGreaterThanOrEqual(Math.floor(group.shardCount / nodeCount))
    expect(shards.length).toBeLessThanOrEqual(Math.ceil(group.shardCount / nodeCount))
  }
}

/** A permutation of the group's members and of each member's claim (by sort keys, ties kept in order). */
const permuted = (group: Group): fc.Arbitrary<Group> =>
  fc
    .tuple(
      fc.shuffledSubarray([...group.members], { minLength: group.members.length, maxLength: group.members.length }),
      fc.array(fc.integer({ min: 0, max: 7 }), { minLength: 32, maxLength: 32 }),
    )
    .map(([members, sortKeys]) => ({
      shardCount: group.shardCount,
      members: members.map((member) => {
        const keyed = member.owned.map((shard, index) => ({ shard, key: sortKeys[index % sortKeys.length] ?? 0 }))
        return { ...member, owned: keyed.sort((left, right) => left.key - right.key).map(({ shard }) => shard) }
      }),
    }))

describe("every shard exactly once, balanced", () => {
  it("holds for garbage, conflicting and stale claims, and the runs reach those paths", () => {
    const reached = { conflict: 0, staleClaimLost: 0, garbage: 0, duplicateNodeId: 0, claimDropped: 0, moreNodes: 0 }
    fc.assert(
      fc.property(messyGroup, (group) => {
        const assignment = assignShards(group.shardCount, group.members)
        expectValid(group, assignment)
        const elected = [...electedOf(group.members).values()]
        const claimCounts = new Map<number, Array<number>>()
        for (const member of elected) {
          for (const shard of validShards(member, group.shardCount)) {
            claimCounts.set(shard, [...(claimCounts.get(shard) ?? []), generationOf(member)])
          }
        }
        const claimGenerations = [...claimCounts.values()]
        const winners = claimWinners(group)
        const owners = ownerOf(assignment)
        if (claimGenerations.some((generations) => generations.length > 1)) reached.conflict++
        if (claimGenerations.some((generations) => new Set(generations).size > 1)) reached.staleClaimLost++
        if (group.members.some((member) => validShards(member, group.shardCount).size !== member.owned.length)) {
          reached.garbage++
        }
        if (elected.length < group.members.length) reached.duplicateNodeId++
        if ([...winners].some(([shard, nodeId]) => owners.get(shard) !== nodeId)) reached.claimDropped++
        if (elected.length > group.shardCount) reached.moreNodes++
      }),
      { numRuns: 1_000 },
    )
    for (const count of Object.values(reached)) expect(count).toBeGreaterThanOrEqual(50)
  })
})

describe("determinism", () => {
  it("does not depend on the order of members or of their claims", () => {
    fc.assert(
      fc.property(
        messyGroup.chain((group) => fc.tuple(fc.constant(group), permuted(group))),
        ([group, reordered]) => {
          const assignment = assignShards(group.shardCount, group.members)
          expect([...assignShards(reordered.shardCount, reordered.members)]).toEqual([...assignment])
        },
      ),
      { numRuns },
    )
  })

  it("gives the same map whichever member leads (each member's view lists itself first)", () => {
    fc.assert(
      fc.property(messyGroup, (group) => {
        const expected = [...assignShards(group.shardCount, group.members)]
        group.members.forEach((_, leader) => {
          const view = [...group.members.slice(leader), ...group.members.slice(0, leader)]
          expect([...assignShards(group.shardCount, view)]).toEqual(expected)
        })
      }),
      { numRuns },
    )
  })
})

describe("stickiness", () => {
  it("keeps as many winning claims in place as any balanced assignment can", () => {
    fc.assert(
      fc.property(messyGroup, (group) => {
        const assignment = assignShards(group.shardCount, group.members)
        const winners = claimWinners(group)
        const owners = ownerOf(assignment)
        const nodeCount = nodeCountOf(group)
        const shareMin = Math.floor(group.shardCount / nodeCount)
        const largerShareCount = group.shardCount % nodeCount
        const wonCounts = [...assignment.keys()].map(
          (nodeId) => [...winners.values()].filter((id) => id === nodeId).length,
        )
        // Each node can keep up to its share; a larger share helps only a node that won more than the smaller one.
        const keptMax =
          wonCounts.reduce((sum, won) => sum + Math.min(won, shareMin), 0) +
          Math.min(largerShareCount, wonCounts.filter((won) => won > shareMin).length)
        const kept = [...winners].filter(([shard, nodeId]) => owners.get(shard) === nodeId).length
        expect(kept).toBe(keptMax)
        // A node that gave up a winning claim did so for balance, so it was handed nothing else.
        for (const [nodeId, shards] of assignment) {
          const gaveUpClaim = [...winners].some(([shard, winner]) => winner === nodeId && owners.get(shard) !== nodeId)
          if (gaveUpClaim) expect(shards.every((shard) => winners.get(shard) === nodeId)).toBe(true)
        }
      }),
      { numRuns },
    )
  })

  it("moves at most ceil(S/N)+1 shards when a node joins a stable assignment, each one to the new node", () => {
    const newNodeGroup = stableGroup.chain((group) =>
      fc.tuple(fc.constant(group), fc.constantFrom(...spareNodeIds.filter((nodeId) => !group.assignment.has(nodeId)))),
    )
    fc.assert(
      fc.property(newNodeGroup, ([group, newNodeId]) => {
        const joining: GroupMember = { memberId: `${newNodeId}#1`, nodeId: newNodeId, owned: [], generation: -1 }
        const after = assignShards(group.shardCount, [...group.members, joining])
        const moved = movedShards(group.assignment, after)
        expect(moved.length).toBeLessThanOrEqual(Math.ceil(group.shardCount / after.size) + 1)
        expect(moved).toEqual(after.get(newNodeId))
      }),
      { numRuns },
    )
  })

  it("moves only the departed node's shards when a node leaves a stable assignment", () => {
    fc.assert(
      fc.property(stableGroup, fc.nat(), (group, pick) => {
        fc.pre(group.members.length >= 2)
        const departed = group.members[pick % group.members.length] as GroupMember
        const remaining = group.members.filter((member) => member !== departed)
        const after = assignShards(group.shardCount, remaining)
        expect(movedShards(group.assignment, after)).toEqual(group.assignment.get(departed.nodeId))
      }),
      { numRuns },
    )
  })

  it("assigns nothing anew when a stable group rebalances unchanged", () => {
    fc.assert(
      fc.property(stableGroup, (group) => {
        expect(movedShards(group.assignment, assignShards(group.shardCount, group.members))).toEqual([])
      }),
      { numRuns },
    )
  })
})

describe("one node under two member ids", () => {
  it("counts the node once, as its elected session alone, and hands the other session nothing", () => {
    fc.assert(
      fc.property(messyGroup, (group) => {
        const elected = electedOf(group.members)
        const electedMembers = [...elected.values()]
        const byNodeId = assignShards(group.shardCount, group.members)
        expect([...byNodeId]).toEqual([...assignShards(group.shardCount, electedMembers)])
        const byMemberId = assignShardsByMember(group.shardCount, group.members)
        expect([...byMemberId.keys()].sort()).toEqual(group.members.map((member) => member.memberId).sort())
        for (const member of group.members) {
          const isElected = elected.get(member.nodeId) === member
          expect(byMemberId.get(member.memberId)).toEqual(isElected ? byNodeId.get(member.nodeId) : [])
        }
      }),
      { numRuns },
    )
  })
})

describe("claim bytes", () => {
  const claim: fc.Arbitrary<ShardClaim> = fc.record({
    owned: fc.array(fc.integer({ min: 0, max: shardCountMax - 1 }), { maxLength: 80 }),
    generation: fc.integer({ min: -1, max: 2 ** 31 - 1 }),
  })

  it("round-trips a claim as its distinct shards, ascending", () => {
    fc.assert(
      fc.property(claim, (original) => {
        expect(decodeClaim(encodeClaim(original))).toEqual({
          owned: [...new Set(original.owned)].sort((left, right) => left - right),
          generation: original.generation,
        })
      }),
      { numRuns },
    )
  })

  it("reads random and damaged bytes without throwing, as an empty claim or one that re-encodes to them", () => {
    const damaged = fc.oneof(
      fc.uint8Array({ maxLength: 48 }),
      fc.tuple(claim, fc.nat(), fc.integer({ min: 0, max: 255 })).map(([original, position, value]) => {
        const bytes = encodeClaim(original)
        bytes[position % bytes.length] = value
        return bytes
      }),
      fc.tuple(claim, fc.nat()).map(([original, cut]) => {
        const bytes = encodeClaim(original)
        return bytes.subarray(0, cut % bytes.length)
      }),
    )
    let nonEmpty = 0
    fc.assert(
      fc.property(damaged, (bytes) => {
        const decoded = decodeClaim(bytes)
        if (decoded !== emptyClaim) {
          nonEmpty++
          expect([...encodeClaim(decoded)]).toEqual([...bytes])
        }
      }),
      { numRuns: 1_000 },
    )
    // Damage that keeps a claim well formed (a changed shard or generation) must also be reached.
    expect(nonEmpty).toBeGreaterThanOrEqual(50)
  })
})
