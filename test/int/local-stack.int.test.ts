/**
 * The local stack's servers answer real requests: Kafka round-trips a record, the DynamoDB-API server
 * enforces a conditional put, Redis stores a value; and `stackUp` is idempotent.
 */
import { randomUUID } from "node:crypto"
import {
  ConditionalCheckFailedException,
  CreateTableCommand,
  DeleteTableCommand,
  GetItemCommand,
  PutItemCommand,
  waitUntilTableExists,
} from "@aws-sdk/client-dynamodb"
import {
  Admin,
  Consumer,
  MessagesStreamModes,
  ProduceAcks,
  Producer,
  stringDeserializers,
  stringSerializers,
} from "@platformatic/kafka"
import { Redis } from "ioredis"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { localDynamodbClient } from "../../scripts/local-stack/dynamodb.ts"
import { type StackEndpoints, stackUp } from "../../scripts/local-stack/stack.ts"

let endpoints: StackEndpoints

beforeAll(async () => {
  endpoints = await stackUp()
})

describe("local stack", () => {
  it("is idempotent: a second stackUp finds every server up and starts nothing", async () => {
    const again = await stackUp()
    expect(again.started).toEqual([])
    expect(again.kafkaBrokers).toBe(endpoints.kafkaBrokers)
  })

  describe("Kafka", () => {
    // Built when a test runs: the endpoints are known only after the stack is up.
    const clientOptions = () => ({
      clientId: "local-stack-test",
      bootstrapBrokers: [endpoints.kafkaBrokers],
      strict: false,
    })
    const topic = `local-stack-${randomUUID()}`

    afterAll(async () => {
      const admin = new Admin(clientOptions())
      await admin.deleteTopics({ topics: [topic] }).catch(() => {})
      await admin.close()
    })

    it("creates a topic and round-trips a record with acks=all", async () => {
      const admin = new Admin(clientOptions())
      await admin.createTopics({ topics: [topic], partitions: 2, replicas: 1 })
      await admin.close()

      const producer = new Producer({ ...clientOptions(), idempotent: true, serializers: stringSerializers })
      const sent = await producer.send({
        acks: ProduceAcks.ALL,
        messages: [{ topic, key: "k", value: "hello", partition: 1 }],
      })
      await producer.close()
      expect(sent.offsets?.[0]?.partition).toBe(1)

      const consumer = new Consumer({
        ...clientOptions(),
        groupId: `local-stack-${randomUUID()}`,
        deserializers: stringDeserializers,
      })
      const stream = await consumer.consume({ topics: [topic], mode: MessagesStreamModes.EARLIEST })
      let received: { partition: number; value: string } | undefined
      for await (const message of stream) {
        received = { partition: message.partition, value: message.value }
        break
      }
      await stream.close()
      await consumer.close()
      expect(received).toEqual({ partition: 1, value: "hello" })
    })

    it("refuses to create topics implicitly (auto.create.topics.enable=false)", async () => {
      // The client asks for the topic to be created; the broker must refuse.
      const producer = new Producer({
        ...clientOptions(),
        retries: 1,
        autocreateTopics: true,
        serializers: stringSerializers,
      })
      const send = producer.send({ messages: [{ topic: `missing-${randomUUID()}`, value: "x" }] })
      await expect(send).rejects.toThrow()
      await producer.close()
    })
  })

  describe("DynamoDB API", () => {
    const tableName = `local-stack-${randomUUID()}`

    afterAll(async () => {
      const client = localDynamodbClient(endpoints.dynamodbEndpoint)
      await client.send(new DeleteTableCommand({ TableName: tableName })).catch(() => {})
      client.destroy()
    })

    it("creates a table, puts an item and rejects a conditional put on an existing key", async () => {
      const client = localDynamodbClient(endpoints.dynamodbEndpoint)
      await client.send(
        new CreateTableCommand({
          TableName: tableName,
          AttributeDefinitions: [{ AttributeName: "pk", AttributeType: "S" }],
          KeySchema: [{ AttributeName: "pk", KeyType: "HASH" }],
          BillingMode: "PAY_PER_REQUEST",
        }),
      )
      await waitUntilTableExists({ client, maxWaitTime: 30, minDelay: 1 }, { TableName: tableName })

      const put = (epoch: string) =>
        new PutItemCommand({
          TableName: tableName,
          Item: { pk: { S: "shard-1" }, epoch: { N: epoch } },
          ConditionExpression: "attribute_not_exists(pk)",
        })
      await client.send(put("1"))
      await expect(client.send(put("2"))).rejects.toBeInstanceOf(ConditionalCheckFailedException)

      const stored = await client.send(new GetItemCommand({ TableName: tableName, Key: { pk: { S: "shard-1" } } }))
      expect(stored.Item?.epoch).toEqual({ N: "1" })
      client.destroy()
    })
  })

  describe("Redis", () => {
    it("sets and gets a value", async () => {
      const client = new Redis(endpoints.redisUrl, { maxRetriesPerRequest: 1 })
      const key = `local-stack:${randomUUID()}`
      expect(await client.set(key, "owner-a", "PX", 60_000, "NX")).toBe("OK")
      expect(await client.set(key, "owner-b", "PX", 60_000, "NX")).toBeNull()
      expect(await client.get(key)).toBe("owner-a")
      await client.del(key)
      client.disconnect()
    })
  })
})
