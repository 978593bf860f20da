/**
 * SnapshotStore on DynamoDB (aws mode). One table per tenant holds that tenant's segment parts,
 * keyed by (shard, part key); one shards table holds per shard the claimed epoch, the checkpoint
 * (nextOffset, savedEpoch, segment, base) and which tenants have parts in the shard.
 *
 * Each part is two items: `p#<segment>#<part>` with its sections (accounts, entries, live entries,
 * fingerprints) and `f#<segment>#<part>` with only its fingerprints and save time, so a claim
 * reads the fingerprints of every segment in the window without reading their entries. A save is
 * a few large puts (a part holds up to `partBytesMax` bytes of entities), however many payments it
 * covers, then the conditional move of the checkpoint. Parts are immutable and their keys carry
 * the segment id, which is epoch-major, so no two owners ever write the same item; the checkpoint
 * moves only while the shard's claimed epoch is the writer's. docs/snapshot-fencing.md argues why
 * that is enough without transactions (the local server, dynalite, has none).
 */
import {
  type AttributeValue,
  DeleteItemCommand,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  type QueryCommandOutput,
  UpdateItemCommand,
} from "@aws-sdk/client-dynamodb"
import { Effect, Layer } from "effect"
import {
  type ClaimedSnapshot,
  type SegmentFingerprints,
  type SegmentPart,
  type ShardCheckpoint,
  SnapshotFenced,
  SnapshotStore,
  type SnapshotUnavailable,
  type StoredSegment,
} from "../snapshot-store.ts"
import {
  type DynamoDbConfig,
  makeTables,
  request,
  requestPlain,
  scopedClient,
  shardsTableKey,
  shardsTableOf,
  type TableKey,
} from "./dynamodb-client.ts"

/** Bytes of sections per part: an item holds at most 400 KB, and fingerprints and keys come on top. */
const partBytesMax = 300 * 1024
/** Part puts (and deletes) in flight per save. */
const writesInFlightMax = 8
/** Tenant tables queried at once during a claim. */
const tenantQueriesInFlightMax = 4

const partsKey: TableKey = { partitionKey: { name: "shard", type: "N" }, sortKey: { name: "partKey", type: "S" } }

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

/** An absent attribute is an empty section: DynamoDB servers differ on empty binary values, so none is written. */
const readBytes = (item: Record<string, AttributeValue> | undefined, name: string): Uint8Array => {
  const value = item?.[name]
  return value !== undefined && "B" in value && value.B !== undefined ? value.B : new Uint8Array(0)
}

const bytesAttribute = (bytes: Uint8Array): AttributeValue | undefined =>
  bytes.byteLength === 0 ? undefined : { B: bytes }

/** Sort keys: zero-padded so segments and parts sort numerically. */
const segmentText = (segment: number): string => String(segment).padStart(16, "0")
const partKeyOf = (kind: "p" | "f", segment: number, part: number): string =>
  `${kind}#${segmentText(segment)}#${String(part).padStart(5, "0")}`

const parsePartKey = (key: string): { readonly segment: number; readonly part: number } => {
  const [, segment, part] = key.split("#")
  const parsed = { segment: Number(segment), part: Number(part) }
  if (!Number.isSafeInteger(parsed.segment) || !Number.isSafeInteger(parsed.part)) {
    throw new Error(`snapshot store: malformed part key ${key}`)
  }
  return parsed
}

export const makeDynamoDbSnapshotStore = Effect.fnUntraced(function* (config: DynamoDbConfig) {
  const client = yield* scopedClient(config)
  const tables = makeTables(client)
  const shardsTable = shardsTableOf(config)
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
    yield* tables.ensure(shard, shardsTable, shardsTableKey)
    const attempt = yield* request(shard, "UpdateItem claim", (abortSignal) =>
      client.send(
        new UpdateItemCommand({
          TableName: shardsTable,
          Key: { shard: numberValue(shard) },
          UpdateExpression: "SET #claimEpoch = :epoch",
          // Strictly newer: an epoch is claimed at most once, so two owners can never share one, even
          // if the epoch counter handed one out twice (restored from an old backup, say).
          ConditionExpression: "attribute_not_exists(#claimEpoch) OR #claimEpoch < :epoch",
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

  /** Records this ownership's journal writer on the shard's item, if `epoch` holds the claim; the writer before it. */
  const registerWriter = Effect.fn("SnapshotStore.registerWriter")(function* (
    shard: number,
    epoch: number,
    writer: string,
  ): Effect.fn.Return<string | undefined, SnapshotUnavailable | SnapshotFenced> {
    const attempt = yield* request(shard, "UpdateItem writer", (abortSignal) =>
      client.send(
        new UpdateItemCommand({
          TableName: shardsTable,
          Key: { shard: numberValue(shard) },
          UpdateExpression: "SET #writer = :writer",
          ConditionExpression: "#claimEpoch = :epoch",
          ExpressionAttributeNames: { "#writer": "writer", "#claimEpoch": "claimEpoch" },
          ExpressionAttributeValues: { ":writer": { S: writer }, ":epoch": numberValue(epoch) },
          // The writer replaced, read atomically with the replacement.
          ReturnValues: "UPDATED_OLD",
        }),
        { abortSignal },
      ),
    )
    if (attempt._tag === "ConditionFailed") return yield* fenced(shard, epoch)
    return attempt.value.Attributes?.writer?.S
  })

  /** Every item of a key range of one tenant's table for a shard, page by page. */
  const queryRange = Effect.fnUntraced(function* (
    shard: number,
    tenantId: string,
    from: string,
    to: string,
    projection: ReadonlyArray<string>,
  ) {
    const tableName = tenantTable(tenantId)
    const items: Array<Record<string, AttributeValue>> = []
    let startKey: Record<string, AttributeValue> | undefined
    do {
      const exclusiveStartKey = startKey
      const names = Object.fromEntries(projection.map((name, index) => [`#a${index}`, name]))
      const page: QueryCommandOutput = yield* requestPlain(shard, `Query ${tableName}`, (abortSignal) =>
        client.send(
          new QueryCommand({
            TableName: tableName,
            KeyConditionExpression: "#shard = :shard AND #partKey BETWEEN :from AND :to",
            ProjectionExpression: Object.keys(names).join(", "),
            ExpressionAttributeNames: { ...names, "#shard": "shard", "#partKey": "partKey" },
            ExpressionAttributeValues: { ":shard": numberValue(shard), ":from": { S: from }, ":to": { S: to } },
            ConsistentRead: true,
            ...(exclusiveStartKey === undefined ? {} : { ExclusiveStartKey: exclusiveStartKey }),
          }),
          { abortSignal },
        ),
      )
      items.push(...(page.Items ?? []))
      startKey = page.LastEvaluatedKey
    } while (startKey !== undefined)
    return items
  })

  /** One tenant's share of a claim: every part's fingerprints, and the sections the checkpoint needs. */
  const claimTenant = Effect.fnUntraced(function* (shard: number, tenantId: string, checkpoint: ShardCheckpoint) {
    const fingerprintItems = yield* queryRange(shard, tenantId, "f#", "f#~", ["partKey", "fingerprints", "savedAtMs"])
    const parts: Array<SegmentFingerprints> = fingerprintItems.map((item) => {
      const { segment, part } = parsePartKey(item.partKey?.S ?? "")
      return {
        segment,
        tenantId,
        part,
        savedAtMs: readNumber(item, "savedAtMs") ?? 0,
        fingerprints: readBytes(item, "fingerprints"),
      }
    })
    const sectionItems = yield* queryRange(
      shard,
      tenantId,
      partKeyOf("p", checkpoint.base, 0),
      partKeyOf("p", checkpoint.segment, 99_999),
      ["partKey", "accounts", "live"],
    )
    const accounts = sectionItems.map((item) => ({ key: item.partKey?.S ?? "", bytes: readBytes(item, "accounts") }))
    const live = sectionItems
      .filter((item) => parsePartKey(item.partKey?.S ?? "").segment === checkpoint.segment)
      .map((item) => readBytes(item, "live"))
    return { parts, accounts, live }
  })

  const claim = Effect.fn("SnapshotStore.claim")(function* (
    shard: number,
    epoch: number,
  ): Effect.fn.Return<ClaimedSnapshot | undefined, SnapshotUnavailable | SnapshotFenced> {
    const item = yield* claimShardItem(shard, epoch)
    const tenants = new Set(item.tenants?.SS ?? [])
    listedTenants.set(shard, tenants)
    const nextOffset = readNumber(item, "nextOffset")
    const savedEpoch = readNumber(item, "savedEpoch")
    const segment = readNumber(item, "segment")
    const base = readNumber(item, "base")
    if (nextOffset === undefined || savedEpoch === undefined || segment === undefined || base === undefined) {
      return undefined
    }
    const checkpoint: ShardCheckpoint = { shard, epoch: savedEpoch, nextOffset, segment, base }
    const perTenant = yield* Effect.forEach([...tenants], (tenantId) => claimTenant(shard, tenantId, checkpoint), {
      concurrency: tenantQueriesInFlightMax,
    })
    // Account sections in segment order across tenants: a later version of an account wins.
    const accounts = perTenant
      .flatMap((tenant) => tenant.accounts)
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
      .map((section) => section.bytes)
    return {
      checkpoint,
      accounts,
      live: perTenant.flatMap((tenant) => tenant.live),
      parts: perTenant.flatMap((tenant) => tenant.parts),
    }
  })

  /**
   * Refuses a save of an epoch that no longer holds the claim before any part is written, so a
   * stale owner that saves after the new owner claimed changes nothing.
   */
  const checkClaimed = (shard: number, epoch: number) =>
    readClaimedEpoch(shard).pipe(
      Effect.flatMap((claimed) =>
        claimed === epoch ? Effect.void : Effect.fail(new SnapshotFenced({ shard, epoch: claimed ?? epoch })),
      ),
    )

  /** Lists the save's new tenants on the shard item (their tables first, so a listed table exists), conditional on the claim. */
  const listTenants = Effect.fnUntraced(function* (checkpoint: ShardCheckpoint, parts: ReadonlyArray<SegmentPart>) {
    const { shard, epoch } = checkpoint
    const listed = listedTenants.get(shard) ?? new Set<string>()
    const added = [...new Set(parts.map((part) => part.tenantId))].filter((tenantId) => !listed.has(tenantId))
    if (added.length === 0) return yield* checkClaimed(shard, epoch)
    yield* Effect.forEach(added, (tenantId) => tables.ensure(shard, tenantTable(tenantId), partsKey), {
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

  const putItem = (shard: number, tableName: string, item: Record<string, AttributeValue | undefined>) =>
    requestPlain(shard, `PutItem ${tableName}`, (abortSignal) =>
      client.send(
        new PutItemCommand({
          TableName: tableName,
          Item: Object.fromEntries(Object.entries(item).filter(([, value]) => value !== undefined)) as Record<
            string,
            AttributeValue
          >,
        }),
        { abortSignal },
      ),
    )

  /** The part's two items: sections first, then the fingerprints that make a claim see it. */
  const putPart = (checkpoint: ShardCheckpoint, savedAtMs: number, part: SegmentPart) => {
    const { shard, segment, epoch } = checkpoint
    const tableName = tenantTable(part.tenantId)
    return putItem(shard, tableName, {
      shard: numberValue(shard),
      partKey: { S: partKeyOf("p", segment, part.part) },
      epoch: numberValue(epoch),
      accounts: bytesAttribute(part.accounts),
      entries: bytesAttribute(part.entries),
      live: bytesAttribute(part.live),
      fingerprints: bytesAttribute(part.fingerprints),
    }).pipe(
      Effect.andThen(
        putItem(shard, tableName, {
          shard: numberValue(shard),
          partKey: { S: partKeyOf("f", segment, part.part) },
          savedAtMs: numberValue(savedAtMs),
          fingerprints: bytesAttribute(part.fingerprints),
        }),
      ),
    )
  }

  const moveCheckpoint = (checkpoint: ShardCheckpoint) => {
    const { shard, epoch, nextOffset, segment, base } = checkpoint
    return request(shard, "UpdateItem checkpoint", (abortSignal) =>
      client.send(
        new UpdateItemCommand({
          TableName: shardsTable,
          Key: { shard: numberValue(shard) },
          UpdateExpression: "SET #nextOffset = :offset, #savedEpoch = :epoch, #segment = :segment, #base = :base",
          // Owned by this epoch, and never moved back by a delayed request of an earlier save.
          ConditionExpression: "#claimEpoch = :epoch AND (attribute_not_exists(#segment) OR #segment < :segment)",
          ExpressionAttributeNames: {
            "#claimEpoch": "claimEpoch",
            "#nextOffset": "nextOffset",
            "#savedEpoch": "savedEpoch",
            "#segment": "segment",
            "#base": "base",
          },
          ExpressionAttributeValues: {
            ":epoch": numberValue(epoch),
            ":offset": numberValue(nextOffset),
            ":segment": numberValue(segment),
            ":base": numberValue(base),
          },
        }),
        { abortSignal },
      ),
    ).pipe(Effect.flatMap((attempt) => (attempt._tag === "Done" ? Effect.void : fenced(shard, epoch))))
  }

  const save = Effect.fn("SnapshotStore.save")(function* (
    checkpoint: ShardCheckpoint,
    savedAtMs: number,
    parts: ReadonlyArray<SegmentPart>,
  ): Effect.fn.Return<void, SnapshotUnavailable | SnapshotFenced> {
    yield* tables.ensure(checkpoint.shard, shardsTable, shardsTableKey)
    yield* listTenants(checkpoint, parts)
    yield* Effect.forEach(parts, (part) => putPart(checkpoint, savedAtMs, part), {
      concurrency: writesInFlightMax,
      discard: true,
    })
    yield* moveCheckpoint(checkpoint)
  })

  const readEntries = (shard: number, segment: number, tenantId: string, part: number) =>
    requestPlain(shard, "GetItem part", (abortSignal) =>
      client.send(
        new GetItemCommand({
          TableName: tenantTable(tenantId),
          Key: { shard: numberValue(shard), partKey: { S: partKeyOf("p", segment, part) } },
          ProjectionExpression: "entries, fingerprints",
          ConsistentRead: true,
        }),
        { abortSignal },
      ),
    ).pipe(
      Effect.map((output) =>
        output.Item === undefined
          ? undefined
          : { entries: readBytes(output.Item, "entries"), fingerprints: readBytes(output.Item, "fingerprints") },
      ),
    )

  const deleteItem = (shard: number, tenantId: string, partKey: string) =>
    requestPlain(shard, "DeleteItem part", (abortSignal) =>
      client.send(
        new DeleteItemCommand({
          TableName: tenantTable(tenantId),
          Key: { shard: numberValue(shard), partKey: { S: partKey } },
        }),
        { abortSignal },
      ),
    )

  /** Deletes the fingerprints first: a claim then no longer sees a part whose sections may be going. */
  const deleteSegments = (shard: number, segments: ReadonlyArray<StoredSegment>) =>
    Effect.forEach(
      segments.flatMap(({ segment, parts }) => parts.map((part) => ({ segment, ...part }))),
      ({ segment, tenantId, part }) =>
        deleteItem(shard, tenantId, partKeyOf("f", segment, part)).pipe(
          Effect.andThen(deleteItem(shard, tenantId, partKeyOf("p", segment, part))),
        ),
      { concurrency: writesInFlightMax, discard: true },
    )

  return SnapshotStore.of({ partBytesMax, claim, registerWriter, save, readEntries, deleteSegments })
})

/** The DynamoDB snapshot store; the client is destroyed when the layer's scope closes. */
export const layerDynamoDb = (config: DynamoDbConfig): Layer.Layer<SnapshotStore, SnapshotUnavailable> =>
  Layer.effect(SnapshotStore)(makeDynamoDbSnapshotStore(config))
