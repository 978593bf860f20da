/**
 * A node's place in the cluster, from its configuration: in aws mode with `CLUSTER_ADVERTISE` set,
 * the node joins the owners' group before it recovers anything (its first assignment says which
 * shards to recover) and leaves it when its scope closes; otherwise it runs alone and owns every
 * shard.
 */
import { Effect, Schema } from "effect"
import type { NodeConfig } from "../config.ts"
import { ensureJournalTopic, makeAdmin } from "../persistence/kafka/kafka-clients.ts"
import { defaultMembershipTimings, GroupMembership } from "./group-membership.ts"

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
