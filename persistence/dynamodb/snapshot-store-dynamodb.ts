/**
 * SnapshotStore on DynamoDB (aws mode). One table per tenant holds that tenant's entities, keyed
 * by (shard, entityKey); one shards table holds per shard the claimed epoch, the checkpoint
 * (nextOffset, savedEpoch) and which tenants have entities in the shard.
 *
 * No transactions (the local server, dynalite, has none): every write is fenced on its own. An
 * entity put succeeds only over an older epoch, or over the same epoch at an offset not newer; the
 * checkpoint moves only while the shard's claimed epoch is the writer's. docs/snapshot-fencing.md
 * argues why that is enough.
 */
import {
  type AttributeValue,
  GetItemCommand,
  type PutItemInput,
  QueryCommand,
  type QueryCommandOutput,
  UpdateItemCommand,
} from "@aws-sdk/client-dynamodb"
import { Effect, Layer } from "effect"
import { decodeEntity, encodeEntity } from "../../core/entity-codec.ts"
import { type Entity, entityKey } from "../../core/ledger.ts"
import {
  type ShardCheckpoint,
  type ShardSnapshot,
  SnapshotFenced,
  SnapshotStore,
  type SnapshotUnavailable,
} from "../snapshot-store.ts"
import {
  type DynamoDbConfig,
  makeClient,
  makeTables,
  request,
  requestPlain,
  requestTimeoutMsDefault,
  type TableKey,
} from "./dynamodb-client.ts"
import { makePutItemClient } from "./put-item-client.ts"

/**
 * Entity puts in flight per save. Enough to hide the round trip (a save of thousands of entities
 * takes seconds one by one) while staying well under a table's on-demand burst and the client's
 * socket pool.
 */
const putsInFlightMax = 16
/** Tenant tables queried at once during a claim. */
const tenantQueriesInFlightMax = 4

const shardsKey: TableKey = { partitionKey: { name: "shard", type: "N" } }
const entitiesKey: TableKey = { partitionKey: { name: "shard", type: "N" }, sortKey: { name: "entityKey", type: "S" } }

/** Table names allow [A-Za-z0-9_.-]; configuration already restricts tenant ids to fewer characters. */
const tableNameSafe = /^[A-Za-z0-9_.-]{3,255}$/

const numberValue = (value: number): AttributeValue => ({ N: String(value) })

const readNumber = (item: Record<string, AttributeValue> | undefined, name: string): number | undefined => {
  const text = item?.[name]?.N
  if (text === undefined) return undefined
  const value = Number(text)
  if (!Number.isSafeInteger(value)) throw new Error(`snapshot store: attribute ${name} is not an integer: ${text}`)
  return value
}

const tenantOf = (entity: Entity): string => entity.value.tenantId

/**
 * The conditional put of one entity, in the wire form and member order the SDK serializes. A newer
 * owner's version is never replaced by an older owner's; within one owner a delayed request of an
 * earlier save (timed out, still in flight) never replaces a later one (docs/snapshot-fencing.md).
 */
export const entityPutInput = (tableName: string, checkpoint: ShardCheckpoint, entity: Entity): PutItemInput => {
  const { shard, epoch, nextOffset } = checkpoint
  return {
    TableName: tableName,
    Item: {
      shard: numberValue(shard),
      entityKey: { S: entityKey(entity) },
      entity: { S: encodeEntity(entity) },
      epoch: numberValue(epoch),
      savedOffset: numberValue(nextOffset),
    },
    ConditionExpression:
      "attribute_not_exists(#epoch) OR #epoch < :epoch OR (#epoch = :epoch AND #savedOffset <= :offset)",
    ExpressionAttributeNames: { "#epoch": "epoch", "#savedOffset": "savedOffset" },
    ExpressionAttributeValues: { ":epoch": numberValue(epoch), ":offset": numberValue(nextOffset) },
  }
}

export const makeDynamoDbSnapshotStore = Effect.fnUntraced(function* (config: DynamoDbConfig) {
  const client = yield* Effect.acquireRelease(
    Effect.sync(() => makeClient(config)),
    (opened) => Effect.sync(() => opened.destroy()),
  )
  const tables = makeTables(client)
  // Entity puts, the bulk of a save, bypass the SDK's per-request cost (see put-item-client.ts).
  const puts = yield* Effect.acquireRelease(
    Effect.sync(() =>
      makePutItemClient(client, {
        requestTimeoutMs: config.requestTimeoutMs ?? requestTimeoutMsDefault,
        socketsMax: putsInFlightMax,
      }),
    ),
    (opened) => Effect.sync(() => opened.destroy()),
  )
  const shardsTable = `${config.tablePrefix}-shards`
  /** Tenants known to be listed on each shard's item; one entry per shard, so bounded by the shard count. */
  const listedTenants = new Map<number, Set<string>>()

  const tenantTable = (tenantId: string): string => {
    const name = `${config.tablePrefix}-tenant-${tenantId}`
    if (!tableNameSafe.test(name)) throw new Error(`snapshot store: no valid table name for tenant ${tenantId}`)
    return name
  }

  /** The epoch that holds the shard's claim, read consistently. */
  const readClaimedEpoch = (shard: number) =>
    requestPlain(shard, "GetItem shards", (abortSignal) =>
      client.send(
        new GetItemCommand({ TableName: shardsTable, Key: { shard: numberValue(shard) }, ConsistentRead: true }),
        { abortSignal },
      ),
    ).pipe(Effect.map((output) => readNumber(output.Item, "claimEpoch")))

  /** After a failed condition: the epoch that fenced this writer (the shard's claimed epoch). */
  const fenced = (shard: number, epoch: number) =>
    readClaimedEpoch(shard).pipe(
      Effect.flatMap((claimed) => Effect.fail(new SnapshotFenced({ shard, epoch: Math.max(claimed ?? epoch, epoch) }))),
    )

  const claimShardItem = Effect.fnUntraced(function* (shard: number, epoch: number) {
    yield* tables.ensure(shard, shardsTable, shardsKey)
    const attempt = yield* request(shard, "UpdateItem claim", (abortSignal) =>
      client.send(
        new UpdateItemCommand({
          TableName: shardsTable,
          Key: { shard: numberValue(shard) },
          UpdateExpression: "SET #claimEpoch = :epoch",
          ConditionExpression: "attribute_not_exists(#claimEpoch) OR #claimEpoch <= :epoch",
          ExpressionAttributeNames: { "#claimEpoch": "claimEpoch" },
          ExpressionAttributeValues: { ":epoch": numberValue(epoch) },
          // The updated item is read atomically with the claim: the checkpoint as of this claim.
          ReturnValues: "ALL_NEW",
        }),
        { abortSignal },
      ),
    )
    if (attempt._tag === "ConditionFailed") return yield* fenced(shard, epoch)
    return attempt.value.Attributes ?? {}
  })

  const queryTenant = Effect.fnUntraced(function* (shard: number, tenantId: string) {
    const tableName = tenantTable(tenantId)
    const entities: Array<Entity> = []
    let startKey: Record<string, AttributeValue> | undefined
    do {
      const exclusiveStartKey = startKey
      const page: QueryCommandOutput = yield* requestPlain(shard, `Query ${tableName}`, (abortSignal) =>
        client.send(
          new QueryCommand({
            TableName: tableName,
            KeyConditionExpression: "#shard = :shard",
            ExpressionAttributeNames: { "#shard": "shard" },
            ExpressionAttributeValues: { ":shard": numberValue(shard) },
            ConsistentRead: true,
            ...(exclusiveStartKey === undefined ? {} : { ExclusiveStartKey: exclusiveStartKey }),
          }),
          { abortSignal },
        ),
      )
      for (const item of page.Items ?? []) entities.push(decodeItem(item, tenantId))
      startKey = page.LastEvaluatedKey
    } while (startKey !== undefined)
    return entities
  })

  const claim = Effect.fn("SnapshotStore.claim")(function* (
    shard: number,
    epoch: number,
  ): Effect.fn.Return<ShardSnapshot | undefined, SnapshotUnavailable | SnapshotFenced> {
    const item = yield* claimShardItem(shard, epoch)
    const tenants = new Set(item.tenants?.SS ?? [])
    listedTenants.set(shard, tenants)
    const nextOffset = readNumber(item, "nextOffset")
    const savedEpoch = readNumber(item, "savedEpoch")
    if (nextOffset === undefined || savedEpoch === undefined) return undefined
    const perTenant = yield* Effect.forEach([...tenants], (tenantId) => queryTenant(shard, tenantId), {
      concurrency: tenantQueriesInFlightMax,
    })
    return { checkpoint: { shard, epoch: savedEpoch, nextOffset }, entities: perTenant.flat() }
  })

  /**
   * Refuses a save of an epoch that no longer holds the claim before any entity is written, so a
   * stale owner that saves after the new owner claimed changes nothing. (One that passed this check
   * just before the claim may still write entities; docs/snapshot-fencing.md says why that is safe.)
   */
  const checkClaimed = (shard: number, epoch: number) =>
    readClaimedEpoch(shard).pipe(
      Effect.flatMap((claimed) =>
        claimed === epoch ? Effect.void : Effect.fail(new SnapshotFenced({ shard, epoch: claimed ?? epoch })),
      ),
    )

  /**
   * Lists the change set's new tenants on the shard item (their tables first, so a listed table
   * exists), conditional on the claim; with no new tenant, only checks the claim.
   */
  const listTenants = Effect.fnUntraced(function* (checkpoint: ShardCheckpoint, changed: ReadonlyArray<Entity>) {
    const { shard, epoch } = checkpoint
    const listed = listedTenants.get(shard) ?? new Set<string>()
    const added = [...new Set(changed.map(tenantOf))].filter((tenantId) => !listed.has(tenantId))
    if (added.length === 0) return yield* checkClaimed(shard, epoch)
    yield* Effect.forEach(added, (tenantId) => tables.ensure(shard, tenantTable(tenantId), entitiesKey), {
      concurrency: tenantQueriesInFlightMax,
      discard: true,
    })
    const attempt = yield* request(shard, "UpdateItem tenants", (abortSignal) =>
      client.send(
        new UpdateItemCommand({
          TableName: shardsTable,
          Key: { shard: numberValue(shard) },
          UpdateExpression: "ADD #tenants :tenants",
          ConditionExpression: "#claimEpoch = :epoch",
          ExpressionAttributeNames: { "#tenants": "tenants", "#claimEpoch": "claimEpoch" },
          ExpressionAttributeValues: { ":tenants": { SS: added }, ":epoch": numberValue(epoch) },
        }),
        { abortSignal },
      ),
    )
    if (attempt._tag === "ConditionFailed") return yield* fenced(shard, epoch)
    listedTenants.set(shard, new Set([...listed, ...added]))
  })

  const putEntity = (checkpoint: ShardCheckpoint, entity: Entity) => {
    const tableName = tenantTable(tenantOf(entity))
    return puts
      .put(checkpoint.shard, `PutItem ${tableName}`, entityPutInput(tableName, checkpoint, entity))
      .pipe(
        Effect.flatMap((attempt) =>
          attempt._tag === "Done" ? Effect.void : fenced(checkpoint.shard, checkpoint.epoch),
        ),
      )
  }

  const moveCheckpoint = (checkpoint: ShardCheckpoint) => {
    const { shard, epoch, nextOffset } = checkpoint
    return request(shard, "UpdateItem checkpoint", (abortSignal) =>
      client.send(
        new UpdateItemCommand({
          TableName: shardsTable,
          Key: { shard: numberValue(shard) },
          UpdateExpression: "SET #nextOffset = :offset, #savedEpoch = :epoch",
          // Owned by this epoch, and never moved back by a delayed request of an earlier save.
          ConditionExpression:
            "#claimEpoch = :epoch AND (attribute_not_exists(#nextOffset) OR #savedEpoch < :epoch OR #nextOffset <= :offset)",
          ExpressionAttributeNames: {
            "#claimEpoch": "claimEpoch",
            "#nextOffset": "nextOffset",
            "#savedEpoch": "savedEpoch",
          },
          ExpressionAttributeValues: { ":epoch": numberValue(epoch), ":offset": numberValue(nextOffset) },
        }),
        { abortSignal },
      ),
    ).pipe(Effect.flatMap((attempt) => (attempt._tag === "Done" ? Effect.void : fenced(shard, epoch))))
  }

  const save = Effect.fn("SnapshotStore.save")(function* (
    checkpoint: ShardCheckpoint,
    changed: ReadonlyArray<Entity>,
  ): Effect.fn.Return<void, SnapshotUnavailable | SnapshotFenced> {
    yield* tables.ensure(checkpoint.shard, shardsTable, shardsKey)
    yield* listTenants(checkpoint, changed)
    // Entries before accounts (see the port): a save cut short leaves no account ahead of its entries.
    const entries = changed.filter((entity) => entity.kind !== "account")
    const accounts = changed.filter((entity) => entity.kind === "account")
    for (const group of [entries, accounts]) {
      yield* Effect.forEach(group, (entity) => putEntity(checkpoint, entity), {
        concurrency: putsInFlightMax,
        discard: true,
      })
    }
    yield* moveCheckpoint(checkpoint)
  })

  return SnapshotStore.of({ claim, save })
})

/** Decodes a stored item; a damaged item is a bug or corruption, not an operating error, so it throws. */
const decodeItem = (item: Record<string, AttributeValue>, tenantId: string): Entity => {
  const text = item.entity?.S
  const key = item.entityKey?.S
  if (text === undefined || key === undefined) throw new Error(`snapshot store: item without entity in ${tenantId}`)
  const entity = decodeEntity(text)
  if (entityKey(entity) !== key) throw new Error(`snapshot store: entity stored under another key: ${key}`)
  if (tenantOf(entity) !== tenantId) throw new Error(`snapshot store: entity of another tenant in ${tenantId}`)
  return entity
}

/** The DynamoDB snapshot store; the client is destroyed when the layer's scope closes. */
export const layerDynamoDb = (config: DynamoDbConfig): Layer.Layer<SnapshotStore, SnapshotUnavailable> =>
  Layer.effect(SnapshotStore)(makeDynamoDbSnapshotStore(config))
