/**
 * A node's membership of the cluster, on the Kafka group coordinator (the classic consumer group
 * protocol through @platformatic/kafka): the node joins the owners' group with static membership
 * (its node id is the group instance id, so a restart within the session timeout keeps its shards),
 * its member metadata says who it is (node id, the address other nodes dial) and what it owned, and
 * the group leader runs `assignShardsByMember` over every member. The node never consumes records
 * through the group: the group is the membership, the failure detector and the assignment.
 *
 * The coordinator delivers each member only its own assignment, yet every node needs the whole map
 * (to forward requests to owners). So the assignor puts the map in every member's assignment: next
 * to the journal topic with the member's own shards, one entry per node whose "topic" is a
 * `clusterMapTopicPrefix`-tagged JSON of the node's id and address and whose partitions are its
 * shards. The assignment is opaque bytes to the broker; nothing consumes those entries.
 *
 * The session is also a lease: the node may act on its shards only while it is sure the coordinator
 * has not expired its session, i.e. until the start of its last successful heartbeat (or join) plus
 * the session timeout, less a margin for clock rate. A node paused past that (SIGSTOP, a long GC, a
 * partition) sees its lease lapsed the moment it runs again, before anything it does could count.
 *
 * The client stops heartbeating for good after a heartbeat that fails without asking for a rejoin
 * (the coordinator unreachable: a broker restart) and after a rejoin that ran out of retries; the
 * membership then rejoins on its own, with backoff, until it is back or leaves. The view after such
 * a gap says the lease lapsed before it, so the node recovers its shards rather than trust memory.
 */
import {
  Consumer,
  type ExtendedGroupProtocolSubscription,
  type GroupAssignment,
  type GroupPartitionsAssignments,
} from "@platformatic/kafka"
import { assignShardsByMember, decodeClaim, encodeClaim, type GroupMember } from "./shard-assignor.ts"

export interface MembershipConfig {
  readonly brokers: ReadonlyArray<string>
  /** The owners' group: `KAFKA_GROUP_ID`, by default `<KAFKA_TOPIC>-owners`. */
  readonly groupId: string
  /** The journal topic, one partition per shard. */
  readonly topic: string
  readonly shardCount: number
  readonly nodeId: string
  /** `CLUSTER_ADVERTISE`: the host:port other nodes dial to reach this one. */
  readonly address: string
  /** The coordinator expires a member it has not heard from for this long: the failure detection bound. */
  readonly sessionTimeoutMs: number
  readonly heartbeatIntervalMs: number
  /** How long a rebalance waits for every member to rejoin. */
  readonly rebalanceTimeoutMs: number
  readonly requestTimeoutMs: number
}

export const defaultMembershipTimings = {
  sessionTimeoutMs: 6_000,
  heartbeatIntervalMs: 1_000,
  rebalanceTimeoutMs: 10_000,
} as const

export interface ClusterNode {
  readonly nodeId: string
  readonly address: string
  readonly shards: ReadonlyArray<number>
}

/** One generation's assignment as every member sees it. */
export interface ClusterView {
  readonly generation: number
  /** Every member, also those without shards, in node id order. */
  readonly nodes: ReadonlyArray<ClusterNode>
  /** This node's shards. */
  readonly owned: ReadonlyArray<number>
}

export const clusterMapTopicPrefix = "\u0000cluster-map\u0000"

/** A lease may be trusted until this much before the session could have expired at the coordinator. */
const leaseMarginMs = (sessionTimeoutMs: number): number => Math.max(500, Math.floor(sessionTimeoutMs / 5))

const protocolName = "payments-sticky-shards"
const metadataVersion = 1

interface MemberIdentity {
  readonly nodeId: string
  readonly address: string
}

/** Member metadata: the identity as JSON, then the claim's bytes (`encodeClaim`). */
const encodeMetadata = (identity: MemberIdentity, claim: Parameters<typeof encodeClaim>[0]): Buffer => {
  const head = Buffer.from(JSON.stringify({ v: metadataVersion, nodeId: identity.nodeId, address: identity.address }))
  const length = Buffer.alloc(4)
  length.writeUInt32BE(head.length)
  return Buffer.concat([length, head, Buffer.from(encodeClaim(claim))])
}

/** A member whose metadata does not decode (another version, damage) takes part with no claim, under its member id. */
const decodeMetadata = (memberId: string, metadata: Buffer | undefined): GroupMember & MemberIdentity => {
  const fallback = { memberId, nodeId: memberId, address: "", owned: [], generation: -1 }
  if (metadata === undefined || metadata.length < 4) return fallback
  try {
    const headLength = metadata.readUInt32BE(0)
    const head = JSON.parse(metadata.subarray(4, 4 + headLength).toString("utf8")) as Partial<MemberIdentity> & {
      v?: unknown
    }
    if (head.v !== metadataVersion || typeof head.nodeId !== "string" || typeof head.address !== "string")
      return fallback
    const claim = decodeClaim(new Uint8Array(metadata.subarray(4 + headLength)))
    return { memberId, nodeId: head.nodeId, address: head.address, ...claim }
  } catch {
    return fallback
  }
}

const mapTopicOf = (identity: MemberIdentity): string =>
  `${clusterMapTopicPrefix}${JSON.stringify({ nodeId: identity.nodeId, address: identity.address })}`

/**
 * The leader's assignor: every member gets its own shards of the journal topic and, as extra
 * entries, the whole map. Exported for its tests; the client calls it only with two or more members.
 */
export const clusterAssigner =
  (topic: string, shardCount: number) =>
  (_current: string, members: Map<string, ExtendedGroupProtocolSubscription>): GroupPartitionsAssignments[] => {
    const decoded = [...members.entries()].map(([memberId, member]) =>
      decodeMetadata(memberId, member.metadata === undefined ? undefined : Buffer.from(member.metadata)),
    )
    const byMember = assignShardsByMember(shardCount, decoded)
    const identities = new Map(decoded.map((member) => [member.nodeId, member]))
    const byNode = new Map<string, ReadonlyArray<number>>()
    for (const member of decoded) {
      const shards = byMember.get(member.memberId) ?? []
      if (shards.length > 0 || !byNode.has(member.nodeId)) byNode.set(member.nodeId, shards)
    }
    const mapEntries = [...byNode.entries()].map(([nodeId, shards]) => {
      const identity = identities.get(nodeId) as MemberIdentity
      const mapTopic = mapTopicOf(identity)
      const entry: GroupAssignment = { topic: mapTopic, partitions: [...shards] }
      return [mapTopic, entry] as const
    })
    return decoded.map((member) => ({
      memberId: member.memberId,
      assignments: new Map([[topic, { topic, partitions: [...(byMember.get(member.memberId) ?? [])] }], ...mapEntries]),
    }))
  }

/** The view a member reads from its assignment; alone in the group it has every shard and no map entries. */
export const viewOf = (
  generation: number,
  self: MemberIdentity,
  topic: string,
  assignments: ReadonlyArray<{ readonly topic: string; readonly partitions: ReadonlyArray<number> }>,
): ClusterView => {
  const owned = [...(assignments.find((entry) => entry.topic === topic)?.partitions ?? [])].sort((a, b) => a - b)
  const nodes: Array<ClusterNode> = []
  for (const entry of assignments) {
    if (!entry.topic.startsWith(clusterMapTopicPrefix)) continue
    const identity = JSON.parse(entry.topic.slice(clusterMapTopicPrefix.length)) as MemberIdentity
    nodes.push({ ...identity, shards: [...entry.partitions].sort((a, b) => a - b) })
  }
  if (nodes.length === 0) nodes.push({ ...self, shards: owned })
  nodes.sort((left, right) => (left.nodeId < right.nodeId ? -1 : left.nodeId > right.nodeId ? 1 : 0))
  return { generation, nodes, owned }
}

export interface MembershipListener {
  /**
   * A new generation's assignment (also when this node's own shards did not change). `afterLapse`:
   * the lease had lapsed before this join, so the coordinator may have given the shards away meanwhile.
   */
  readonly assigned: (view: ClusterView, afterLapse: boolean) => void
  /** The membership lost its session's heartbeat and is rejoining: for the operator's log. */
  readonly rejoining?: (why: string) => void
}

/** Backoff between the membership's own rejoin attempts. */
const rejoinDelayMs = { first: 250, max: 5_000 } as const

/** One node's membership: join, the current view, the lease, leave. */
export class GroupMembership {
  private readonly consumer: Consumer
  private readonly protocol: { name: string; version: number; metadata: Buffer }
  /** When this node last sent the coordinator something that restarts its session (a join, a heartbeat). */
  private lastSentAtMs = Number.NEGATIVE_INFINITY
  private leaseAnchorMs = Number.NEGATIVE_INFINITY
  private current: ClusterView | undefined
  /** When the client last showed it is taking part (a heartbeat sent, a join answered). */
  private lastActivityMs = Number.NEGATIVE_INFINITY
  private rejoinInFlight = false
  private leaving = false
  private watchdog: ReturnType<typeof setInterval> | undefined

  constructor(
    private readonly config: MembershipConfig,
    private listener: MembershipListener = { assigned: () => {} },
    private readonly nowMs: () => number = () => performance.now(),
  ) {
    this.consumer = new Consumer({
      clientId: `${config.nodeId}-membership`,
      bootstrapBrokers: [...config.brokers],
      groupId: config.groupId,
      groupInstanceId: config.nodeId,
      sessionTimeout: config.sessionTimeoutMs,
      heartbeatInterval: config.heartbeatIntervalMs,
      rebalanceTimeout: config.rebalanceTimeoutMs,
      timeout: config.requestTimeoutMs,
      requestTimeout: config.requestTimeoutMs,
      autocreateTopics: false,
      strict: false,
    })
    const identity = { nodeId: config.nodeId, address: config.address }
    this.protocol = {
      name: protocolName,
      version: 1,
      metadata: encodeMetadata(identity, { owned: [], generation: -1 }),
    }
    // The coordinator restarts a member's session when it receives a heartbeat, after it was sent:
    // the send time, once answered, is a safe anchor for the lease.
    // A rejoin the client makes on its own (after a heartbeat answered REBALANCE_IN_PROGRESS) is
    // sent after that heartbeat was, so the last send time stays a safe anchor for it too.
    let heartbeatSentAtMs = Number.NEGATIVE_INFINITY
    this.consumer.on("consumer:heartbeat:start", () => {
      heartbeatSentAtMs = this.nowMs()
      this.lastSentAtMs = heartbeatSentAtMs
      this.lastActivityMs = heartbeatSentAtMs
    })
    // The client schedules no further heartbeat after these: the membership takes over.
    this.consumer.on("consumer:heartbeat:error", (payload: { error?: unknown }) =>
      this.rejoin(`a heartbeat failed: ${String(payload?.error)}`),
    )
    this.consumer.on("error", (error: unknown) => {
      if (!this.consumer.isActive()) this.rejoin(`the client gave up rejoining: ${String(error)}`)
    })
    this.consumer.on("consumer:heartbeat:end", () => {
      this.leaseAnchorMs = Math.max(this.leaseAnchorMs, heartbeatSentAtMs)
    })
    this.consumer.on("consumer:group:join", (payload) =>
      this.joined(payload.generationId ?? -1, payload.assignments ?? []),
    )
  }

  /** Joins the group and resolves with the first view. */
  async join(): Promise<ClusterView> {
    this.consumer.topics.track(this.config.topic)
    this.lastSentAtMs = this.nowMs()
    await this.consumer.joinGroup(this.joinOptions())
    this.watchdog = setInterval(() => this.checkAlive(), this.config.heartbeatIntervalMs)
    this.watchdog.unref?.()
    return this.current as ClusterView
  }

  private joinOptions() {
    return {
      sessionTimeout: this.config.sessionTimeoutMs,
      heartbeatInterval: this.config.heartbeatIntervalMs,
      rebalanceTimeout: this.config.rebalanceTimeoutMs,
      protocols: [this.protocol],
      partitionAssigner: clusterAssigner(this.config.topic, this.config.shardCount),
    }
  }

  /**
   * A safety net for any other way the client could stop taking part: not heartbeating and nothing
   * heard of it for longer than a rebalance and a request could take.
   */
  private checkAlive(): void {
    if (this.leaving || this.rejoinInFlight || this.consumer.isActive()) return
    const quietMs = this.nowMs() - this.lastActivityMs
    if (quietMs > this.config.rebalanceTimeoutMs + 2 * this.config.requestTimeoutMs)
      this.rejoin(`no heartbeat for ${Math.round(quietMs)} ms`)
  }

  /** Joins again until it succeeds or the node leaves; one attempt chain at a time. */
  private rejoin(why: string): void {
    if (this.leaving || this.rejoinInFlight) return
    this.rejoinInFlight = true
    this.listener.rejoining?.(why)
    const attempt = (delayMs: number): void => {
      const timer = setTimeout(() => {
        if (this.leaving) {
          this.rejoinInFlight = false
          return
        }
        this.lastSentAtMs = this.nowMs()
        this.lastActivityMs = this.lastSentAtMs
        this.consumer.joinGroup(this.joinOptions()).then(
          () => {
            this.rejoinInFlight = false
          },
          () => attempt(Math.min(delayMs * 2, rejoinDelayMs.max)),
        )
      }, delayMs)
      timer.unref?.()
    }
    attempt(rejoinDelayMs.first)
  }

  private joined(generation: number, assignments: ReadonlyArray<{ topic: string; partitions: number[] }>): void {
    const afterLapse = !this.leaseValid()
    this.lastActivityMs = this.nowMs()
    // The join just answered was sent no earlier than the last send this node knows of.
    this.leaseAnchorMs = Math.max(this.leaseAnchorMs, this.lastSentAtMs)
    const view = viewOf(
      generation,
      { nodeId: this.config.nodeId, address: this.config.address },
      this.config.topic,
      assignments,
    )
    this.current = view
    // The next join (a rebalance) carries what this generation gave: the assignor keeps it here when it can.
    this.protocol.metadata = encodeMetadata(
      { nodeId: this.config.nodeId, address: this.config.address },
      { owned: view.owned, generation },
    )
    this.listener.assigned(view, afterLapse)
  }

  get view(): ClusterView | undefined {
    return this.current
  }

  /** Hears every later assignment (a node wires itself in once it exists; the first view is `join`'s). */
  listen(listener: MembershipListener): void {
    this.listener = listener
  }

  /** True while the coordinator cannot have expired this node's session: its shards are still its own. */
  leaseValid(): boolean {
    return (
      this.nowMs() < this.leaseAnchorMs + this.config.sessionTimeoutMs - leaseMarginMs(this.config.sessionTimeoutMs)
    )
  }

  /** Leaves the group (its shards are reassigned at once) and closes the client. */
  async leave(): Promise<void> {
    this.leaving = true
    if (this.watchdog !== undefined) clearInterval(this.watchdog)
    this.leaseAnchorMs = Number.NEGATIVE_INFINITY
    // Closing leaves the group first (LeaveGroup with the instance id), so the shards move at once.
    await this.consumer.close().catch(() => undefined)
  }
}
