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
import { Redis } from "ioredis"
import { Kafka, logLevel } from "kafkajs"
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
    const kafka = () =>
      new Kafka({ clientId: "local-stack-test", brokers: [endpoints.kafkaBrokers], logLevel: logLevel.NOTHING })
    const topic = `local-stack-${randomUUID()}`
    const admin = () => kafka().admin()

    afterAll(async () => {
      const client = admin()
      await client.connect()
      await client.deleteTopics({ topics: [topic] }).catch(() => {})
      await client.disconnect()
    })

    it("creates a topic and round-trips a record with acks=all", async () => {
      const client = admin()
      await client.connect()
      expect(await client.createTopics({ topics: [{ topic, numPartitions: 2, replicationFactor: 1 }] })).toBe(true)
      await client.disconnect()

      const producer = kafka().producer({ idempotent: true })
      await producer.connect()
      const [metadata] = await producer.send({
        topic,
        acks: -1,
        messages: [{ key: "k", value: "hello", partition: 1 }],
      })
      await producer.disconnect()
      expect(metadata?.partition).toBe(1)

      const consumer = kafka().consumer({ groupId: `local-stack-${randomUUID()}` })
      await consumer.connect()
      await consumer.subscribe({ topic, fromBeginning: true })
      const received = await new Promise<{ partition: number; value: string }>((resolve) => {
        void consumer.run({
          eachMessage: async ({ partition, message }) => resolve({ partition, value: message.value?.toString() ?? "" }),
        })
      })
      await consumer.disconnect()
      expect(received).toEqual({ partition: 1, value: "hello" })
    })

    it("refuses to create topics implicitly (auto.create.topics.enable=false)", async () => {
      const producer = kafka().producer({ retry: { retries: 1 } })
      await producer.connect()
      const send = producer.send({ topic: `missing-${randomUUID()}`, messages: [{ value: "x" }] })
      await expect(send).rejects.toThrow()
      await producer.disconnect()
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
