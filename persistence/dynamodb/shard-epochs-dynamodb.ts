/**
 * ShardEpochs on DynamoDB (aws mode): a counter attribute, `epochIssued`, on each shard's item of the
 * snapshot store's shards table, moved only by single-item conditional updates, which DynamoDB
 * applies atomically and durably. The snapshot store never overwrites that item whole (it updates
 * named attributes), so the counter lives beside the claim without touching it.
 */
import { type AttributeValue, UpdateItemCommand } from "@aws-sdk/client-dynamodb"
import { Effect, Layer } from "effect"
import { ShardEpochs } from "../shard-epochs.ts"
import { LeaseUnavailable } from "../shard-leases.ts"
import {
  type DynamoDbConfig,
  makeTables,
  request,
  requestPlain,
  scopedClient,
  shardsTableKey,
  shardsTableOf,
} from "./dynamodb-client.ts"

/** Conditional raises lost to other nodes before giving up: each loss means another node took an epoch. */
const raiseAttemptsMax = 16

const numberValue = (value: number): AttributeValue => ({ N: String(value) })

const issuedOf = (attributes: Record<string, AttributeValue> | undefined): number => {
  const value = Number(attributes?.epochIssued?.N)
  if (!Number.isSafeInteger(value)) throw new Error(`shard epochs: epochIssued is not an integer: ${value}`)
  return value
}

export const makeDynamoDbShardEpochs = Effect.fnUntraced(function* (config: DynamoDbConfig) {
  const client = yield* scopedClient(config)
  const tables = makeTables(client)
  const shardsTable = shardsTableOf(config)

  const unavailable = (shard: number) => (error: { readonly message: string }) =>
    new LeaseUnavailable({ shard, message: `epoch counter: ${error.message}` })

  /** Counts one up from whatever the counter holds (0 when absent). */
  const increment = (shard: number) =>
    requestPlain(shard, "UpdateItem epochIssued + 1", (abortSignal) =>
      client.send(
        new UpdateItemCommand({
          TableName: shardsTable,
          Key: { shard: numberValue(shard) },
          UpdateExpression: "SET #issued = if_not_exists(#issued, :zero) + :one",
          ExpressionAttributeNames: { "#issued": "epochIssued" },
          ExpressionAttributeValues: { ":zero": numberValue(0), ":one": numberValue(1) },
          ReturnValues: "UPDATED_NEW",
        }),
        { abortSignal },
      ),
    ).pipe(Effect.map((output) => issuedOf(output.Attributes)))

  /** Sets the counter to `target` if it is still below it: then `target` is this caller's alone. */
  const raiseTo = (shard: number, target: number) =>
    request(shard, "UpdateItem epochIssued raise", (abortSignal) =>
      client.send(
        new UpdateItemCommand({
          TableName: shardsTable,
          Key: { shard: numberValue(shard) },
          UpdateExpression: "SET #issued = :target",
          ConditionExpression: "attribute_not_exists(#issued) OR #issued < :target",
          ExpressionAttributeNames: { "#issued": "epochIssued" },
          ExpressionAttributeValues: { ":target": numberValue(target) },
        }),
        { abortSignal },
      ),
    ).pipe(Effect.map((attempt) => attempt._tag === "Done"))

  const next = Effect.fn("ShardEpochs.next")(function* (shard: number, floor: number) {
    yield* tables.ensure(shard, shardsTable, shardsTableKey).pipe(Effect.mapError(unavailable(shard)))
    for (let attempt = 0; attempt < raiseAttemptsMax; attempt++) {
      const counted = yield* increment(shard).pipe(Effect.mapError(unavailable(shard)))
      if (counted > floor) return counted
      // The counter is behind the floor (an epoch claimed elsewhere is newer): jump past it. Losing
      // the condition means another node moved the counter meanwhile; the next increment is above it.
      if (yield* raiseTo(shard, floor + 1).pipe(Effect.mapError(unavailable(shard)))) return floor + 1
    }
    return yield* new LeaseUnavailable({ shard, message: `epoch counter contended ${raiseAttemptsMax} times` })
  })

  return ShardEpochs.of({ next })
})

/** DynamoDB epochs for this node; the client is destroyed when the layer's scope closes. */
export const layerDynamoDbEpochs = (config: DynamoDbConfig): Layer.Layer<ShardEpochs> =>
  Layer.effect(ShardEpochs)(makeDynamoDbShardEpochs(config))
