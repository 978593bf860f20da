/**
 * Micro-benchmark of the snapshot store's unit of work, one conditional PutItem, against the local
 * DynamoDB-API server (dynalite): client CPU per put (this process's user+system time, which in the
 * node competes with the hot path) and puts per second, through the AWS SDK as the store sends
 * them, and as a bare keep-alive HTTP POST of the same JSON (no SDK: what the protocol itself
 * costs the client, signature excluded). Starts the local stack.
 * Run: `node --import tsx bench/micro/dynamodb-put.ts [--puts 6000] [--concurrency 16]`
 */
import { Agent, request } from "node:http"
import { parseArgs } from "node:util"
import { CreateTableCommand, DescribeTableCommand, PutItemCommand } from "@aws-sdk/client-dynamodb"
import { makeClient } from "../../persistence/dynamodb/dynamodb-client.ts"
import { stackUp } from "../../scripts/local-stack/stack.ts"
import { describeMachine } from "../support/machine.ts"

const { values } = parseArgs({
  options: { puts: { type: "string", default: "6000" }, concurrency: { type: "string", default: "16" } },
})
const putCount = Number(values.puts)
const concurrency = Number(values.concurrency)

const endpoints = await stackUp()
const endpoint = endpoints.dynamodbEndpoint
const tableName = `bench-put-${Date.now()}`
const client = makeClient({ endpoint, region: "us-east-1", tablePrefix: "bench" })
await client.send(
  new CreateTableCommand({
    TableName: tableName,
    BillingMode: "PAY_PER_REQUEST",
    AttributeDefinitions: [
      { AttributeName: "shard", AttributeType: "N" },
      { AttributeName: "entityKey", AttributeType: "S" },
    ],
    KeySchema: [
      { AttributeName: "shard", KeyType: "HASH" },
      { AttributeName: "entityKey", KeyType: "RANGE" },
    ],
  }),
)

while ((await client.send(new DescribeTableCommand({ TableName: tableName }))).Table?.TableStatus !== "ACTIVE") {
  await new Promise((resolve) => setTimeout(resolve, 100))
}

/** A payment entity's encoded size is about 300 bytes; the condition is the store's own. */
const putInput = (index: number, round: string) => ({
  TableName: tableName,
  Item: {
    shard: { N: String(index % 16) },
    entityKey: { S: `p:${round}-${index}` },
    entity: { S: "x".repeat(300) },
    epoch: { N: "1" },
    savedOffset: { N: String(index) },
  },
  ConditionExpression:
    "attribute_not_exists(#epoch) OR #epoch < :epoch OR (#epoch = :epoch AND #savedOffset <= :offset)",
  ExpressionAttributeNames: { "#epoch": "epoch", "#savedOffset": "savedOffset" },
  ExpressionAttributeValues: { ":epoch": { N: "1" }, ":offset": { N: String(index) } },
})

const agent = new Agent({ keepAlive: true, maxSockets: 32 })
const url = new URL(endpoint)
const bareput = (body: string) =>
  new Promise<void>((resolve, reject) => {
    const outgoing = request(
      {
        agent,
        host: url.hostname,
        port: url.port,
        method: "POST",
        path: "/",
        headers: {
          "content-type": "application/x-amz-json-1.0",
          "x-amz-target": "DynamoDB_20120810.PutItem",
          "content-length": Buffer.byteLength(body),
          // dynalite wants a signature to be present, not valid; real DynamoDB would check it.
          "x-amz-date": "20260101T000000Z",
          authorization:
            "AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0",
        },
      },
      (response) => {
        response.resume()
        response.on("end", () =>
          response.statusCode === 200 ? resolve() : reject(new Error(`${response.statusCode}`)),
        )
      },
    )
    outgoing.on("error", reject)
    outgoing.end(body)
  })

const measure = async (label: string, put: (index: number) => Promise<unknown>) => {
  let next = 0
  const cpuBefore = process.cpuUsage()
  const started = performance.now()
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < putCount) await put(next++)
    }),
  )
  const elapsedMs = performance.now() - started
  const cpu = process.cpuUsage(cpuBefore)
  const cpuMicrosPerPut = (cpu.user + cpu.system) / putCount
  console.log(
    `${label.padEnd(10)} ${Math.round((putCount / elapsedMs) * 1000)} puts/s, client CPU ${cpuMicrosPerPut.toFixed(0)} us per put, concurrency ${concurrency}`,
  )
}

console.log(`machine: ${describeMachine()}`)
for (const round of ["warm", "1", "2"]) {
  await measure(`sdk ${round}`, (index) => client.send(new PutItemCommand(putInput(index, `sdk${round}`))))
  await measure(`bare ${round}`, (index) => bareput(JSON.stringify(putInput(index, `bare${round}`))))
}
client.destroy()
agent.destroy()
