/**
 * The DynamoDB client of the snapshot store: bounded requests (per-request timeout, explicit retry
 * count), the mapping of SDK errors onto the port's errors, and tables created on demand.
 */
import {
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  type DynamoDBClientConfig,
  type DynamoDBServiceException,
} from "@aws-sdk/client-dynamodb"
import { Effect } from "effect"
import { SnapshotUnavailable } from "../snapshot-store.ts"

export interface DynamoDbConfig {
  /** Set for a local DynamoDB-API server; undefined in real AWS (endpoint from the region). */
  readonly endpoint: string | undefined
  readonly region: string
  readonly tablePrefix: string
  /** Upper bound on one HTTP request (connection included); a slower request is a failed attempt. */
  readonly requestTimeoutMs?: number
}

export const requestTimeoutMsDefault = 5_000
/**
 * Three attempts absorb a throttled or dropped request without hiding an outage: with the
 * per-request timeout, one operation is bounded by about 3 x timeout plus the SDK's backoff.
 */
const requestAttemptsMax = 3
/** Concurrent HTTP connections; above the save concurrency so table checks never queue behind puts. */
const socketsMax = 32
/** How long a created table may stay CREATING before the store reports itself unavailable. */
const tableActiveWaitMsMax = 60_000
const tableActivePollMs = 100

export const makeClient = (config: DynamoDbConfig): DynamoDBClient => {
  const requestTimeoutMs = config.requestTimeoutMs ?? requestTimeoutMsDefault
  const options: DynamoDBClientConfig = {
    region: config.region,
    maxAttempts: requestAttemptsMax,
    requestHandler: {
      connectionTimeout: requestTimeoutMs,
      requestTimeout: requestTimeoutMs,
      // Without this the SDK only logs a breached request timeout and keeps waiting.
      throwOnRequestTimeout: true,
      httpAgent: { keepAlive: true, maxSockets: socketsMax },
      httpsAgent: { keepAlive: true, maxSockets: socketsMax },
    },
  }
  if (config.endpoint !== undefined) {
    // A local server checks no signatures; real AWS takes the default credential provider chain.
    options.endpoint = config.endpoint
    options.credentials = { accessKeyId: "local", secretAccessKey: "local" }
  }
  return new DynamoDBClient(options)
}

/** A client for the scope's lifetime: destroyed (its sockets closed) when the scope closes. */
export const scopedClient = (config: DynamoDbConfig) =>
  Effect.acquireRelease(
    Effect.sync(() => makeClient(config)),
    (opened) => Effect.sync(() => opened.destroy()),
  )

/** The table of per-shard items (claim, checkpoint, writer, epoch counter), one item per shard. */
export const shardsTableOf = (config: DynamoDbConfig): string => `${config.tablePrefix}-shards`
export const shardsTableKey: TableKey = { partitionKey: { name: "shard", type: "N" } }

const errorName = (error: unknown): string =>
  typeof error === "object" && error !== null && "name" in error ? String((error as { name: unknown }).name) : ""

export const isConditionFailed = (error: unknown): boolean => errorName(error) === "ConditionalCheckFailedException"

/** The outcome of one request: its value, a failed condition (the caller decides what it means), or unavailable. */
export type Attempt<A> = { readonly _tag: "Done"; readonly value: A } | { readonly _tag: "ConditionFailed" }

/**
 * Runs one SDK request, interruptible (the abort signal cancels the HTTP request). Every error
 * but a failed condition is an operating error: throttling, timeouts, network, a missing table.
 */
export const request = <A>(
  shard: number,
  what: string,
  send: (abortSignal: AbortSignal) => Promise<A>,
): Effect.Effect<Attempt<A>, SnapshotUnavailable> =>
  Effect.tryPromise({
    try: (signal) => send(signal),
    catch: (error) => error,
  }).pipe(
    Effect.map((value): Attempt<A> => ({ _tag: "Done", value })),
    Effect.catch((error) =>
      isConditionFailed(error)
        ? Effect.succeed<Attempt<A>>({ _tag: "ConditionFailed" })
        : Effect.fail(new SnapshotUnavailable({ shard, message: `${what}: ${describeError(error)}` })),
    ),
  )

/** Like `request`, for requests that carry no condition. */
export const requestPlain = <A>(
  shard: number,
  what: string,
  send: (abortSignal: AbortSignal) => Promise<A>,
): Effect.Effect<A, SnapshotUnavailable> =>
  request(shard, what, send).pipe(
    Effect.flatMap((attempt) =>
      attempt._tag === "Done"
        ? Effect.succeed(attempt.value)
        : Effect.fail(new SnapshotUnavailable({ shard, message: `${what}: unexpected condition failure` })),
    ),
  )

const describeError = (error: unknown): string => {
  const name = errorName(error)
  const message = error instanceof Error ? error.message : String(error)
  const status = (error as Partial<DynamoDBServiceException> | undefined)?.$metadata?.httpStatusCode
  return `${name === "" ? "error" : name}${status === undefined ? "" : ` (HTTP ${status})`}: ${message}`
}

export interface TableKey {
  readonly partitionKey: { readonly name: string; readonly type: "N" | "S" }
  readonly sortKey?: { readonly name: string; readonly type: "N" | "S" }
}

/**
 * Makes sure tables exist and are ACTIVE, creating them (on-demand billing) when missing. Tables
 * known to exist are cached, so this costs one request per table per process. Another process
 * creating the same table at the same time is fine (ResourceInUseException).
 */
export const makeTables = (client: DynamoDBClient) => {
  const active = new Set<string>()

  const describe = (shard: number, tableName: string) =>
    request(shard, `DescribeTable ${tableName}`, (abortSignal) =>
      client.send(new DescribeTableCommand({ TableName: tableName }), { abortSignal }).then(
        (output) => output.Table?.TableStatus ?? "MISSING",
        (error: unknown) => {
          if (errorName(error) === "ResourceNotFoundException") return "MISSING"
          throw error
        },
      ),
    ).pipe(Effect.flatMap((attempt) => (attempt._tag === "Done" ? Effect.succeed(attempt.value) : Effect.die(attempt))))

  const create = (shard: number, tableName: string, key: TableKey) => {
    const keys = key.sortKey === undefined ? [key.partitionKey] : [key.partitionKey, key.sortKey]
    return requestPlain(shard, `CreateTable ${tableName}`, (abortSignal) =>
      client
        .send(
          new CreateTableCommand({
            TableName: tableName,
            BillingMode: "PAY_PER_REQUEST",
            AttributeDefinitions: keys.map((item) => ({ AttributeName: item.name, AttributeType: item.type })),
            KeySchema: keys.map((item, index) => ({
              AttributeName: item.name,
              KeyType: index === 0 ? "HASH" : "RANGE",
            })),
          }),
          { abortSignal },
        )
        .then(
          () => undefined,
          (error: unknown) => {
            if (errorName(error) === "ResourceInUseException") return undefined
            throw error
          },
        ),
    )
  }

  const waitActive = Effect.fnUntraced(function* (shard: number, tableName: string) {
    const deadline = Date.now() + tableActiveWaitMsMax
    while (Date.now() < deadline) {
      const status = yield* describe(shard, tableName)
      if (status === "ACTIVE") return
      yield* Effect.sleep(tableActivePollMs)
    }
    return yield* new SnapshotUnavailable({
      shard,
      message: `table ${tableName} not ACTIVE after ${tableActiveWaitMsMax} ms`,
    })
  })

  const ensure = Effect.fnUntraced(function* (shard: number, tableName: string, key: TableKey) {
    if (active.has(tableName)) return
    const status = yield* describe(shard, tableName)
    if (status === "MISSING") yield* create(shard, tableName, key)
    if (status !== "ACTIVE") yield* waitActive(shard, tableName)
    active.add(tableName)
  })

  return { ensure }
}
