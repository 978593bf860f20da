/**
 * A node's place in the cluster, from its configuration: in aws mode with `CLUSTER_ADVERTISE` set,
 * the node joins the owners' group before it recovers anything (its first assignment says which
 * shards to recover) and leaves it when its scope closes; otherwise it runs alone and owns every
 * shard.
 */
import { Effect, Schema } from "effect"
import { InvalidConfig, type NodeConfig } from "../config.ts"
import { type Command, commandAccount } from "../core/commands.ts"
import { ensureJournalTopic, makeAdmin } from "../persistence/kafka/kafka-clients.ts"
import type { PeerForwarding } from "../transport/edge-state.ts"
import { defaultMembershipTimings, GroupMembership } from "./group-membership.ts"
import { defaultPeerLinksConfig, PeerLinks } from "./peer-links.ts"
import { isPeerCommand } from "./peer-protocol.ts"
import { makeShardRouter } from "./shard-router.ts"

export class ClusterJoinFailed extends Schema.TaggedError<ClusterJoinFailed>()("ClusterJoinFailed", {
  message: Schema.String,
}) {}

const ensureTopic = async (config: NodeConfig): Promise<void> => {
  const journalConfig = {
    ...config.kafka,
    shardCount: config.limits.shardCount,
    clientId: `${config.nodeId}-membership-admin`,
    transactionalIdPrefix: "payments",
  }
  const admin = makeAdmin(journalConfig)
  try {
    await Effect.runPromise(ensureJournalTopic(admin, journalConfig))
  } finally {
    await admin.close().catch(() => undefined)
  }
}

/** The joined membership, or undefined for a node that runs alone. */
export const joinCluster = (config: NodeConfig) => {
  const address = config.cluster.advertise
  if (config.mode !== "aws" || address === undefined) return Effect.succeed(undefined)
  return Effect.acquireRelease(
    Effect.tryPromise({
      try: async () => {
        const membership = new GroupMembership({
          brokers: config.kafka.brokers,
          groupId: config.cluster.groupId,
          topic: config.kafka.topic,
          shardCount: config.limits.shardCount,
          nodeId: config.nodeId,
          address,
          ...defaultMembershipTimings,
          requestTimeoutMs: config.kafka.requestTimeoutMs,
        })
        // The group assigns the journal topic's partitions: it must exist before the first join.
        await ensureTopic(config)
        await membership.join()
        return membership
      },
      catch: (cause) => new ClusterJoinFailed({ message: `joining group ${config.cluster.groupId}: ${String(cause)}` }),
    }),
    (membership) => Effect.promise(() => membership.leave()),
  )
}

/** How this node reaches its peers: forwarding of partner requests and delivery of saga steps. */
export interface Peering {
  readonly port: number
  /** What peers must present on their links; undefined admits any. */
  readonly secret: string | undefined
  readonly forwarding: PeerForwarding
  /** Sends a saga step for a shard another node owns (deliveries are at least once: a lost one is redelivered). */
  readonly deliver: (command: Command) => void
}

export const peeringOf = (config: NodeConfig, membership: GroupMembership) =>
  Effect.gen(function* () {
    const port = config.cluster.port
    if (port === undefined) {
      return yield* new InvalidConfig({ message: "CLUSTER_PORT is required with CLUSTER_ADVERTISE: peers dial it" })
    }
    const router = makeShardRouter(() => membership.view, config.nodeId, config.limits.shardCount)
    const links = yield* Effect.acquireRelease(
      Effect.sync(() => new PeerLinks({ ...defaultPeerLinksConfig, secret: config.cluster.secret })),
      (links) => Effect.sync(() => links.close()),
    )
    const forwarding: PeerForwarding = {
      ownerAddressOf: router.ownerAddressOf,
      forwardFrame: (address, tenantId, frame) => links.forwardFrame(address, tenantId, frame),
      forwardHttp: (address, tenantId, op, fields) => links.forwardHttp(address, tenantId, op, fields),
    }
    const deliver = (command: Command) => {
      if (!isPeerCommand(command)) return
      const address = router.ownerAddressOf(command.tenantId, commandAccount(command))
      if (address !== undefined) links.deliver(address, command)
    }
    if (config.cluster.secret === undefined) {
      yield* Effect.logWarning(
        `CLUSTER_SECRET is not set: the peer port ${port} admits any connection; keep it inside the cluster's network`,
      )
    }
    return { port, secret: config.cluster.secret, forwarding, deliver } satisfies Peering
  })
