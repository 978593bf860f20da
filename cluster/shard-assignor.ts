/**
 * `cluster/` holds cluster membership and shard ownership: which node owns which shard (journal
 * partition) while many nodes run as one Kafka consumer group. This module is the group's partition
 * assignor. The group leader runs it on every member's claim (what that member owned in the previous
 * generation, Kafka's sticky-assignor user data) and hands each member its shards. It is pure and
 * deterministic, so any member given the same members derives the same map: no clock, no randomness,
 * no dependence on the order of its input. It balances shards (every node gets the floor or the
 * ceiling of S/N), keeps a shard with its previous owner whenever balance allows, and moves only what
 * balance requires: adding a node moves only the shards the new node receives, removing one moves
 * only that node's shards.
 */
import { invariant } from "../core/invariants.ts"

/** Shard indexes travel as unsigned 16-bit words in an encoded claim, so a deployment has at most this many. */
export const shardCountMax = 65_536

/** Kafka's generation id for a member that has not received an assignment yet. */
export const generationNone = -1

/** What a member reports it owned: the shards of its last assignment and the group generation that gave them. */
export interface ShardClaim {
  readonly owned: ReadonlyArray<number>
  readonly generation: number
}

export interface GroupMember extends ShardClaim {
  /** The coordinator's id for this session; a node gets a new one every time it rejoins. */
  readonly memberId: string
  /** The node's own id, stable across restarts: shards are assigned to nodes, not to sessions. */
  readonly nodeId: string
}

/** Shards by node id, each list ascending, keys in node id order. */
export type ShardAssignment = ReadonlyMap<string, ReadonlyArray<number>>

export const emptyClaim: ShardClaim = { owned: [], generation: generationNone }

/** UTF-16 code unit order: the same on every node whatever its locale, which `localeCompare` is not. */
const compareText = (left: string, right: string): number => (left < right ? -1 : left > right ? 1 : 0)

const ascending = (left: number, right: number): number => left - right

/**
 * The claim as the assignor trusts it: distinct integer shards below the shard count, ascending. A
 * claim whose generation is not an integer cannot be ordered against others, so it claims nothing and
 * counts as a member that never received an assignment.
 */
const sanitizeClaim = <Claim extends ShardClaim>(claim: Claim, shardCount: number): Claim => {
  if (!Number.isSafeInteger(claim.generation)) return { ...claim, ...emptyClaim }
  const owned = [...new Set(claim.owned)].filter((shard) => Number.isInteger(shard) && shard >= 0 && shard < shardCount)
  return { ...claim, owned: owned.sort(ascending) }
}

/**
 * One session per node, by node id. A restarted node can rejoin before the coordinator has timed out
 * its old session, and then two members carry its node id. The node must count once for balance and
 * its shards must go to one session only, or two processes of one node would both serve them. The
 * session that last received an assignment (the higher generation) holds the freshest claim and is
 * kept; between equal generations the smaller member id is, which is arbitrary but the same on every
 * node. The other session gets nothing and leaves the group when its session times out.
 */
const electSessions = (shardCount: number, members: ReadonlyArray<GroupMember>): Array<GroupMember> => {
  invariant(Number.isInteger(shardCount), `shard count ${shardCount} is not an integer`)
  invariant(shardCount >= 1 && shardCount <= shardCountMax, `shard count ${shardCount} is out of range`)
  invariant(members.length >= 1, "a group has at least its leader as a member")
  invariant(new Set(members.map((member) => member.memberId)).size === members.length, "member ids repeat")
  const elected = new Map<string, GroupMember>()
  for (const member of members.map((candidate) => sanitizeClaim(candidate, shardCount))) {
    const current = elected.get(member.nodeId)
    const isStronger =
      current === undefined ||
      member.generation > current.generation ||
      (member.generation === current.generation && compareText(member.memberId, current.memberId) < 0)
    if (isStronger) elected.set(member.nodeId, member)
  }
  return [...elected.values()].sort((left, right) => compareText(left.nodeId, right.nodeId))
}

/**
 * The shards each node holds a winning claim on, ascending. Two nodes claiming one shard means one of
 * them missed a rebalance: the claim from the later generation is the current one, and between equal
 * generations the smaller node id wins so that every node resolves the conflict alike.
 */
const winningClaims = (shardCount: number, sessions: ReadonlyArray<GroupMember>): Map<string, Array<number>> => {
  const winners = new Array<GroupMember | undefined>(shardCount).fill(undefined)
  for (const session of sessions) {
    for (const shard of session.owned) {
      const current = winners[shard]
      const isStronger =
        current === undefined ||
        session.generation > current.generation ||
        (session.generation === current.generation && compareText(session.nodeId, current.nodeId) < 0)
      if (isStronger) winners[shard] = session
    }
  }
  const won = new Map<string, Array<number>>(sessions.map((session) => [session.nodeId, []]))
  winners.forEach((winner, shard) => {
    if (winner !== undefined) won.get(winner.nodeId)?.push(shard)
  })
  return won
}

/**
 * Assigns every shard 0..shardCount-1 to exactly one node, each node getting floor(S/N) or
 * ceil(S/N) shards (N = distinct node ids); every node appears, with no shards when N > S.
 */
export const assignShards = (shardCount: number, members: ReadonlyArray<GroupMember>): ShardAssignment => {
  const sessions = electSessions(shardCount, members)
  const won = winningClaims(shardCount, sessions)
  const wonBy = (session: GroupMember): ReadonlyArray<number> => won.get(session.nodeId) ?? []
  const shardCountMin = Math.floor(shardCount / sessions.length)
  const largerShareCount = shardCount % sessions.length
  // The larger shares go to the nodes that won the most claims: that keeps the most shards in place.
  // A node over its share keeps its lowest shards; the rest join the shards nobody won.
  const plans = [...sessions]
    .sort((left, right) => wonBy(right).length - wonBy(left).length || compareText(left.nodeId, right.nodeId))
    .map((session, rank) => {
      const quota = shardCountMin + (rank < largerShareCount ? 1 : 0)
      return { nodeId: session.nodeId, quota, kept: wonBy(session).slice(0, quota) }
    })
  const taken = new Set(plans.flatMap((plan) => plan.kept))
  const freeShards = Array.from({ length: shardCount }, (_, shard) => shard).filter((shard) => !taken.has(shard))
  const assignment = new Map<string, ReadonlyArray<number>>()
  for (const plan of plans.sort((left, right) => compareText(left.nodeId, right.nodeId))) {
    const given = freeShards.splice(0, plan.quota - plan.kept.length)
    assignment.set(plan.nodeId, [...plan.kept, ...given].sort(ascending))
  }
  checkAssignment(shardCount, assignment)
  return assignment
}

/**
 * The same assignment keyed by member id, which is what the coordinator delivers: the elected
 * session of each node gets the node's shards, every other member (a node's stale session) none.
 */
export const assignShardsByMember = (
  shardCount: number,
  members: ReadonlyArray<GroupMember>,
): ReadonlyMap<string, ReadonlyArray<number>> => {
  const byNodeId = assignShards(shardCount, members)
  const electedMemberIds = new Set(electSessions(shardCount, members).map((session) => session.memberId))
  return new Map(
    members.map((member) => [
      member.memberId,
      electedMemberIds.has(member.memberId) ? (byNodeId.get(member.nodeId) ?? []) : [],
    ]),
  )
}

/** Asserted on every result: each shard owned once, and shares differing by at most one. */
const checkAssignment = (shardCount: number, assignment: ShardAssignment): void => {
  const shardCountMin = Math.floor(shardCount / assignment.size)
  const owners = new Array<number>(shardCount).fill(0)
  for (const [nodeId, shards] of assignment) {
    invariant(shards.length >= shardCountMin, `node ${nodeId} holds fewer than ${shardCountMin} shards`)
    invariant(shards.length <= Math.ceil(shardCount / assignment.size), `node ${nodeId} holds too many shards`)
    for (const shard of shards) owners[shard] = (owners[shard] ?? 0) + 1
  }
  invariant(
    owners.every((ownerCount) => ownerCount === 1),
    "a shard has no owner or more than one",
  )
}

/** The shards whose owner differs between two assignments (a shard absent from one counts as moved), ascending. */
export const movedShards = (before: ShardAssignment, after: ShardAssignment): Array<number> => {
  const ownersBefore = ownersOf(before)
  const ownersAfter = ownersOf(after)
  const shards = new Set([...ownersBefore.keys(), ...ownersAfter.keys()])
  return [...shards].filter((shard) => ownersBefore.get(shard) !== ownersAfter.get(shard)).sort(ascending)
}

const ownersOf = (assignment: ShardAssignment): Map<number, string> => {
  const owners = new Map<number, string>()
  for (const [nodeId, shards] of assignment) for (const shard of shards) owners.set(shard, nodeId)
  return owners
}

/**
 * A claim as member metadata user data, version 1: one version byte, the generation as a big-endian
 * int32 (Kafka's generation id is one), then each shard as a big-endian uint16, strictly ascending.
 * Five bytes plus two per shard: 64 shards over 4 nodes cost 37 bytes a member.
 */
const claimVersion = 1
const claimHeaderBytes = 5
const generationMax = 0x7fffffff

export const encodeClaim = (claim: ShardClaim): Uint8Array => {
  invariant(Number.isInteger(claim.generation), `generation ${claim.generation} is not an integer`)
  invariant(claim.generation >= generationNone && claim.generation <= generationMax, "generation is not an int32 id")
  const owned = [...new Set(claim.owned)].sort(ascending)
  const bytes = new Uint8Array(claimHeaderBytes + owned.length * 2)
  const view = new DataView(bytes.buffer)
  view.setUint8(0, claimVersion)
  view.setInt32(1, claim.generation)
  owned.forEach((shard, index) => {
    invariant(Number.isInteger(shard) && shard >= 0 && shard < shardCountMax, `shard ${shard} cannot be encoded`)
    view.setUint16(claimHeaderBytes + index * 2, shard)
  })
  return bytes
}

/**
 * Reads a member's user data. Anything that is not a well-formed version-1 claim (another version, a
 * torn length, shards out of order, a generation below -1) is an empty claim: that member then
 * competes for shards with nothing kept, and the group still gets a valid assignment.
 */
export const decodeClaim = (bytes: Uint8Array): ShardClaim => {
  const shardBytes = bytes.byteLength - claimHeaderBytes
  if (shardBytes < 0 || shardBytes % 2 !== 0 || shardBytes > shardCountMax * 2) return emptyClaim
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (view.getUint8(0) !== claimVersion) return emptyClaim
  const generation = view.getInt32(1)
  if (generation < generationNone) return emptyClaim
  const owned: Array<number> = []
  for (let offset = claimHeaderBytes; offset < bytes.byteLength; offset += 2) {
    const shard = view.getUint16(offset)
    if (owned.length > 0 && shard <= (owned[owned.length - 1] ?? -1)) return emptyClaim
    owned.push(shard)
  }
  return { owned, generation }
}
