/**
 * The composition root: reads the configuration, chooses the persistence layers of the mode
 * (embedded: LMDB under DATA_DIR; aws: Kafka journal, DynamoDB snapshots, Redis leases), recovers
 * the node's shards, then serves the wire contract. SIGTERM and SIGINT drain and stop it in order:
 * stop listening, stop the shards (their writers close), close the stores.
 */
import { Cause, Config, Effect, Exit, Fiber, Layer } from "effect"
import { layerPaymentNode, PaymentNode } from "./actors/node.ts"
import type { GroupMembership } from "./cluster/group-membership.ts"
import { joinCluster, type Peering, peeringOf } from "./cluster/node-membership.ts"
import { InvalidConfig, type NodeConfig, nodeConfig } from "./config.ts"
import { layerDynamoDbEpochs } from "./persistence/dynamodb/shard-epochs-dynamodb.ts"
import { layerDynamoDb } from "./persistence/dynamodb/snapshot-store-dynamodb.ts"
import type { Journal } from "./persistence/journal.ts"
import { layerKafka } from "./persistence/kafka/journal-kafka.ts"
import { layerLmdb } from "./persistence/lmdb/layer-lmdb.ts"
import { layerRedisLeases } from "./persistence/redis/shard-leases-redis.ts"
import type { ShardLeases } from "./persistence/shard-leases.ts"
import type { SnapshotStore } from "./persistence/snapshot-store.ts"
import { openTenantFile, type TenantFileSource } from "./tenancy/tenant-file-source.ts"
import { serverResource } from "./transport/server.ts"

const persistenceLayer = (config: NodeConfig): Layer.Layer<Journal | SnapshotStore | ShardLeases, unknown> =>
  config.mode === "embedded"
    ? layerLmdb({ dataDir: config.dataDir })
    : Layer.mergeAll(
        layerKafka({
          ...config.kafka,
          shardCount: config.limits.shardCount,
          clientId: config.nodeId,
          transactionalIdPrefix: "payments",
        }),
        layerDynamoDb({ ...config.dynamodb, requestTimeoutMs: config.kafka.requestTimeoutMs }),
        layerRedisLeases({ ...config.redis, nodeId: config.nodeId }).pipe(
          Layer.provide(layerDynamoDbEpochs({ ...config.dynamodb, requestTimeoutMs: config.kafka.requestTimeoutMs })),
        ),
      )

/**
 * The tenant file, watched until the scope closes. One that cannot be read or does not validate
 * at start stops the node, as an invalid variable does; later versions that do not validate are
 * logged and the one in force stays.
 */
const tenantFileResource = (filePath: string) =>
  Effect.acquireRelease(
    Effect.try({
      try: () =>
        openTenantFile(filePath, {
          taken: (directory) =>
            Effect.runSync(
              Effect.logInfo(`tenant file ${filePath} version ${directory.version} in force`, {
                tenants: directory.tenants.size,
                keys: directory.keys.size,
              }),
            ),
          refused: (message, kept) =>
            Effect.runSync(
              Effect.logWarning(`tenant file ${filePath} refused, version ${kept.version} stays: ${message}`),
            ),
        }),
      catch: (error) => new InvalidConfig({ message: `TENANTS_FILE ${filePath}: ${(error as Error).message}` }),
    }),
    (source) => Effect.sync(() => source.close()),
  )

const serve = (
  config: NodeConfig,
  tenantFile: TenantFileSource | undefined,
  membership: GroupMembership | undefined,
  peering: Peering | undefined,
) =>
  Layer.effectDiscard(
    Effect.gen(function* () {
      const processor = yield* PaymentNode
      if (membership !== undefined) {
        // Every later assignment moves shards; one that came between the join and now is taken at once.
        membership.listen({
          assigned: (view, afterLapse) => processor.reassign(view.owned, afterLapse),
          rejoining: (why) => Effect.runFork(Effect.logWarning(`cluster membership rejoining: ${why}`)),
        })
        if (membership.view !== undefined) processor.reassign(membership.view.owned)
      }
      const server = yield* serverResource({
        host: config.host,
        port: config.port,
        processor,
        tenants: config.tenants,
        ...(tenantFile === undefined ? {} : { tenantFile: tenantFile.current }),
        edge: config.edge,
        adminApiKey: config.adminApiKey,
        ...(peering === undefined
          ? {}
          : {
              cluster: {
                peers: peering.forwarding,
                port: peering.port,
                secret: peering.secret,
                deliver: processor.deliver,
              },
            }),
      })
      beginDrain = server.beginDrain
      const where = config.mode === "embedded" ? `data in ${config.dataDir}` : `journal ${config.kafka.topic}`
      console.log(
        `payments node ${config.nodeId} (${config.mode}, ${where}) listening on http://${config.host}:${server.port}`,
      )
    }),
  )

const program = Effect.gen(function* () {
  const config = yield* nodeConfig
  // Before recovery: a tenant file that does not validate stops the node at once.
  const tenantFile = config.tenantsFile === undefined ? undefined : yield* tenantFileResource(config.tenantsFile)
  // Before recovery too: the group's first assignment says which shards this node recovers.
  const membership = yield* joinCluster(config)
  const peering = membership === undefined ? undefined : yield* peeringOf(config, membership)
  const clusterOptions =
    membership === undefined || peering === undefined
      ? {}
      : {
          ownedShards: membership.view?.owned ?? [],
          ownershipValid: () => membership.leaseValid(),
          clusterMap: () => membership.view?.nodes,
          forward: peering.deliver,
        }
  return yield* Layer.launch(
    serve(config, tenantFile, membership, peering).pipe(
      Layer.provide(
        layerPaymentNode(config.limits, {
          identity: { nodeId: config.nodeId, address: config.cluster.advertise ?? "" },
          ...clusterOptions,
        }),
      ),
      Layer.provide(persistenceLayer(config)),
    ),
  )
}).pipe(Effect.scoped)

/** Set once the server listens: makes `/readyz` fail while the node still answers. */
let beginDrain: (() => void) | undefined

/**
 * How long a draining node keeps answering with `/readyz` failing before it stops: load balancers
 * notice and send elsewhere, then the node hands its shards over, answers what is in flight, leaves
 * the group and exits.
 */
const drainNoticeMs = 1_000

const fiber = Effect.runFork(program)
const stop = () => Effect.runFork(Fiber.interrupt(fiber))
process.once("SIGTERM", () => {
  beginDrain?.()
  setTimeout(stop, beginDrain === undefined ? 0 : drainNoticeMs)
})
process.once("SIGINT", stop)
fiber.addObserver((exit) => {
  if (Exit.isFailure(exit) && !Cause.hasInterruptsOnly(exit.cause)) {
    const error = Cause.squash(exit.cause)
    // A configuration mistake is the operator's to fix: say which variable, without a stack trace.
    const configurationError = error instanceof Config.ConfigError || error instanceof InvalidConfig
    console.error(
      configurationError
        ? `payments node: invalid configuration: ${(error as Error).message}`
        : `payments node stopped: ${Cause.pretty(exit.cause)}`,
    )
    process.exit(1)
  }
  process.exit(0)
})
