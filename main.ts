/**
 * The composition root: reads the configuration, chooses the persistence layers of the mode
 * (embedded: LMDB under DATA_DIR; aws: Kafka journal, DynamoDB snapshots, Redis leases), recovers
 * the node's shards, then serves the wire contract. SIGTERM and SIGINT drain and stop it in order:
 * stop listening, stop the shards (their writers close), close the stores.
 */
import { Cause, Config, Effect, Exit, Fiber, Layer } from "effect"
import { layerPaymentNode, PaymentNode } from "./actors/node.ts"
import { InvalidConfig, type NodeConfig, nodeConfig } from "./config.ts"
import { layerDynamoDb } from "./persistence/dynamodb/snapshot-store-dynamodb.ts"
import type { Journal } from "./persistence/journal.ts"
import { layerKafka } from "./persistence/kafka/journal-kafka.ts"
import { layerLmdb } from "./persistence/lmdb/layer-lmdb.ts"
import { layerRedisLeases } from "./persistence/redis/shard-leases-redis.ts"
import type { ShardLeases } from "./persistence/shard-leases.ts"
import type { SnapshotStore } from "./persistence/snapshot-store.ts"
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
        layerRedisLeases({ ...config.redis, nodeId: config.nodeId }),
      )

const serve = (config: NodeConfig) =>
  Layer.effectDiscard(
    Effect.gen(function* () {
      const processor = yield* PaymentNode
      const server = yield* serverResource({
        host: config.host,
        port: config.port,
        processor,
        tenants: config.tenants,
        edge: config.edge,
      })
      const where = config.mode === "embedded" ? `data in ${config.dataDir}` : `journal ${config.kafka.topic}`
      console.log(
        `payments node ${config.nodeId} (${config.mode}, ${where}) listening on http://${config.host}:${server.port}`,
      )
    }),
  )

const program = Effect.gen(function* () {
  const config = yield* nodeConfig
  return yield* Layer.launch(
    serve(config).pipe(Layer.provide(layerPaymentNode(config.limits)), Layer.provide(persistenceLayer(config))),
  )
})

const fiber = Effect.runFork(program)
const stop = () => Effect.runFork(Fiber.interrupt(fiber))
process.once("SIGTERM", stop)
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
