/**
 * The node's configuration, read once from the environment at start. Every value has a default
 * that points at the embedded mode or the local stack; an invalid value stops the node with a
 * message that names the variable.
 */
import { hostname } from "node:os"
import { Config, Effect, Schema } from "effect"
import { defaultRuntimeLimits, type RuntimeLimits } from "./actors/limits.ts"

export type Mode = "embedded" | "aws"

export interface TenantKey {
  readonly tenantId: string
  readonly apiKey: string
}

export interface NodeConfig {
  readonly mode: Mode
  readonly host: string
  readonly port: number
  readonly dataDir: string
  readonly nodeId: string
  readonly tenants: ReadonlyArray<TenantKey>
  /** The tenant file (`TENANTS_FILE`): tenants and hashed, scoped keys, reloaded while the node runs. */
  readonly tenantsFile: string | undefined
  readonly limits: RuntimeLimits
  readonly edge: {
    readonly payloadBytesMax: number
    readonly wsInFlightMax: number
    readonly wsBackpressureBytesMax: number
    readonly httpInFlightMax: number
  }
  readonly kafka: {
    readonly brokers: ReadonlyArray<string>
    readonly topic: string
    readonly replicationFactor: number
    readonly requestTimeoutMs: number
  }
  readonly dynamodb: { readonly endpoint: string | undefined; readonly region: string; readonly tablePrefix: string }
  readonly redis: { readonly url: string; readonly keyPrefix: string; readonly leaseTtlMs: number }
  readonly cluster: {
    /** `CLUSTER_PORT`: where this node listens for other nodes; unset on a node that runs alone. */
    readonly port: number | undefined
    /** `CLUSTER_ADVERTISE`: the host:port other nodes dial to reach this one. */
    readonly advertise: string | undefined
    /** `KAFKA_GROUP_ID`: the owners' consumer group, `<KAFKA_TOPIC>-owners` by default. */
    readonly groupId: string
    /** `CLUSTER_SECRET`: the bearer key peers present on their links; unset, the peer port admits any connection. */
    readonly secret: string | undefined
  }
  /** `ADMIN_API_KEY`: the bearer key of the operator endpoints (`GET /v1/cluster`); they are off when unset. */
  readonly adminApiKey: string | undefined
}

/** The development tenant that embedded mode has when TENANTS is not set. */
const demoTenant: TenantKey = { tenantId: "demo", apiKey: "demo-key" }

const tenantIdPattern = /^[A-Za-z0-9_-]{1,64}$/

/** TENANTS is a comma-separated list of `tenantId:apiKey` pairs. */
const parseTenants = (text: string): ReadonlyArray<TenantKey> | string => {
  const tenants: Array<TenantKey> = []
  for (const pair of text
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item.length > 0)) {
    const separator = pair.indexOf(":")
    const tenantId = pair.slice(0, separator)
    const apiKey = pair.slice(separator + 1)
    if (separator <= 0 || apiKey.length < 8)
      return `"${pair}" is not tenantId:apiKey with a key of 8 or more characters`
    if (!tenantIdPattern.test(tenantId)) return `tenant id "${tenantId}" must be 1-64 of [A-Za-z0-9_-]`
    if (tenants.some((tenant) => tenant.apiKey === apiKey || tenant.tenantId === tenantId)) {
      return `tenant "${tenantId}" or its key appears twice`
    }
    tenants.push({ tenantId, apiKey })
  }
  return tenants
}

const PositiveInt = Schema.Int.check(Schema.isGreaterThan(0))

const positiveInt = (name: string, fallback: number): Config.Config<number> =>
  Config.schema(PositiveInt, name).pipe(Config.withDefault(fallback))

/** A configuration problem found after parsing, reported with the variable it concerns. */
export class InvalidConfig extends Schema.TaggedError<InvalidConfig>()("InvalidConfig", {
  message: Schema.String,
}) {}

const policyConfig = Config.all({
  idempotencyRetentionMs: positiveInt("IDEMPOTENCY_RETENTION_MS", defaultRuntimeLimits.policy.idempotencyRetentionMs),
  creditRedeliveryDelayMs: positiveInt(
    "CREDIT_REDELIVERY_DELAY_MS",
    defaultRuntimeLimits.policy.creditRedeliveryDelayMs,
  ),
  creditRedeliveryDelayMsMax: positiveInt(
    "CREDIT_REDELIVERY_DELAY_MS_MAX",
    defaultRuntimeLimits.policy.creditRedeliveryDelayMsMax,
  ),
})

const nonNegativeInt = (name: string, fallback: number): Config.Config<number> =>
  Config.schema(Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)), name).pipe(Config.withDefault(fallback))

const limitsConfig = Config.all({
  shardCount: positiveInt("SHARD_COUNT", defaultRuntimeLimits.shardCount),
  shardQueueDepthMax: positiveInt("SHARD_QUEUE_DEPTH_MAX", defaultRuntimeLimits.shardQueueDepthMax),
  flushRecordsMax: positiveInt("FLUSH_RECORDS_MAX", defaultRuntimeLimits.flushRecordsMax),
  snapshotEveryEvents: positiveInt("SNAPSHOT_EVERY_EVENTS", defaultRuntimeLimits.snapshotEveryEvents),
  snapshotIntervalMs: positiveInt("SNAPSHOT_INTERVAL_MS", defaultRuntimeLimits.snapshotIntervalMs),
  snapshotDirtyEntitiesMax: positiveInt("SNAPSHOT_DIRTY_ENTITIES_MAX", defaultRuntimeLimits.snapshotDirtyEntitiesMax),
  recentEntriesMax: positiveInt("RECENT_ENTRIES_MAX", defaultRuntimeLimits.recentEntriesMax),
  idempotencyKeysMax: positiveInt("IDEMPOTENCY_KEYS_MAX", defaultRuntimeLimits.idempotencyKeysMax),
  entryLookupsInFlightMax: positiveInt("ENTRY_LOOKUPS_IN_FLIGHT_MAX", defaultRuntimeLimits.entryLookupsInFlightMax),
  pendingPaymentsMax: positiveInt("PENDING_PAYMENTS_MAX", defaultRuntimeLimits.pendingPaymentsMax),
  journalRetentionMs: nonNegativeInt("JOURNAL_RETENTION_MS", defaultRuntimeLimits.journalRetentionMs),
  rebuildRetryDelayMs: positiveInt("REBUILD_RETRY_DELAY_MS", defaultRuntimeLimits.rebuildRetryDelayMs),
  policy: policyConfig,
})

/** An admin key or cluster secret shorter than this is refused: they guard the cluster. */
const adminApiKeyLengthMin = 16

/** host:port, the host a DNS name or an IPv4 address. */
const advertisePattern = /^[A-Za-z0-9.-]{1,253}:[0-9]{1,5}$/

const clusterConfig = (topic: string) =>
  Effect.gen(function* () {
    const port = yield* Config.Port("CLUSTER_PORT").pipe(Config.option)
    const advertise = yield* Config.String("CLUSTER_ADVERTISE").pipe(Config.option)
    if (advertise._tag === "Some" && !advertisePattern.test(advertise.value)) {
      return yield* new InvalidConfig({ message: `CLUSTER_ADVERTISE "${advertise.value}" is not host:port` })
    }
    const secret = yield* Config.String("CLUSTER_SECRET").pipe(Config.option)
    if (secret._tag === "Some" && secret.value.length < adminApiKeyLengthMin) {
      return yield* new InvalidConfig({
        message: `CLUSTER_SECRET must have at least ${adminApiKeyLengthMin} characters`,
      })
    }
    return {
      port: port._tag === "Some" ? port.value : undefined,
      advertise: advertise._tag === "Some" ? advertise.value : undefined,
      groupId: yield* Config.String("KAFKA_GROUP_ID").pipe(Config.withDefault(`${topic}-owners`)),
      secret: secret._tag === "Some" ? secret.value : undefined,
    }
  })

export const nodeConfig = Effect.gen(function* () {
  const mode = yield* Config.Literals(["embedded", "aws"], "MODE").pipe(Config.withDefault("embedded" as const))
  const tenantsText = yield* Config.String("TENANTS").pipe(Config.option)
  const tenantsFile = yield* Config.String("TENANTS_FILE").pipe(Config.option)
  const tenants =
    tenantsText._tag === "Some"
      ? parseTenants(tenantsText.value)
      : tenantsFile._tag === "Some"
        ? []
        : mode === "embedded"
          ? [demoTenant]
          : "is required in aws mode (tenantId:apiKey,...), unless TENANTS_FILE is set"
  if (typeof tenants === "string") return yield* new InvalidConfig({ message: `TENANTS ${tenants}` })
  const config: NodeConfig = {
    mode,
    tenants,
    tenantsFile: tenantsFile._tag === "Some" ? tenantsFile.value : undefined,
    // A development node listens on loopback only; a production node (aws mode, in a pod) on every interface.
    host: yield* Config.String("HOST").pipe(Config.withDefault(mode === "embedded" ? "127.0.0.1" : "0.0.0.0")),
    port: yield* Config.Port("PORT").pipe(Config.withDefault(8080)),
    dataDir: yield* Config.String("DATA_DIR").pipe(Config.withDefault("./data")),
    nodeId: yield* Config.String("NODE_ID").pipe(Config.withDefault(hostname())),
    limits: yield* limitsConfig,
    edge: yield* Config.all({
      payloadBytesMax: positiveInt("PAYLOAD_BYTES_MAX", 64 * 1024),
      wsInFlightMax: positiveInt("WS_IN_FLIGHT_MAX", 1024),
      wsBackpressureBytesMax: positiveInt("WS_BACKPRESSURE_BYTES_MAX", 1024 * 1024),
      httpInFlightMax: positiveInt("HTTP_IN_FLIGHT_MAX", 4096),
    }),
    kafka: yield* Config.all({
      brokers: Config.String("KAFKA_BROKERS").pipe(
        Config.withDefault("127.0.0.1:19092"),
        Config.map((text) =>
          text
            .split(",")
            .map((broker) => broker.trim())
            .filter((broker) => broker.length > 0),
        ),
      ),
      topic: Config.String("KAFKA_TOPIC").pipe(Config.withDefault("payments-journal")),
      replicationFactor: positiveInt("KAFKA_REPLICATION_FACTOR", 1),
      requestTimeoutMs: positiveInt("KAFKA_REQUEST_TIMEOUT_MS", 5_000),
    }),
    dynamodb: yield* Config.all({
      endpoint: Config.String("DYNAMODB_ENDPOINT").pipe(
        Config.withDefault(mode === "aws" ? "http://127.0.0.1:18000" : ""),
        Config.map((text) => (text === "" ? undefined : text)),
      ),
      region: Config.String("AWS_REGION").pipe(Config.withDefault("us-east-1")),
      tablePrefix: Config.String("DYNAMODB_TABLE_PREFIX").pipe(Config.withDefault("payments")),
    }),
    redis: yield* Config.all({
      url: Config.String("REDIS_URL").pipe(Config.withDefault("redis://127.0.0.1:16379")),
      keyPrefix: Config.String("REDIS_KEY_PREFIX").pipe(Config.withDefault("payments")),
      // About the group session (6 s): a dead node's shards move once both have lapsed.
      leaseTtlMs: positiveInt("LEASE_TTL_MS", 5_000),
    }),
    cluster: { port: undefined, advertise: undefined, groupId: "", secret: undefined },
    adminApiKey: undefined,
  }
  const adminApiKey = yield* Config.String("ADMIN_API_KEY").pipe(Config.option)
  if (adminApiKey._tag === "Some" && adminApiKey.value.length < adminApiKeyLengthMin) {
    return yield* new InvalidConfig({ message: `ADMIN_API_KEY must have at least ${adminApiKeyLengthMin} characters` })
  }
  return {
    ...config,
    cluster: yield* clusterConfig(config.kafka.topic),
    adminApiKey: adminApiKey._tag === "Some" ? adminApiKey.value : undefined,
  } satisfies NodeConfig
})
