/**
 * The lean PutItem client against the AWS SDK and the local DynamoDB-API server (dynalite): it
 * signs exactly as the SDK does, sends the store's input byte for byte as the SDK would, and maps
 * outcomes onto the store's: done, condition failed, SnapshotUnavailable.
 */
import {
  DynamoDBClient,
  type DynamoDBClientConfig,
  GetItemCommand,
  PutItemCommand,
  type PutItemInput,
} from "@aws-sdk/client-dynamodb"
import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { Entity } from "../../core/ledger.ts"
import { makeClient, makeTables } from "../../persistence/dynamodb/dynamodb-client.ts"
import { makePutItemClient, type PutItemClient } from "../../persistence/dynamodb/put-item-client.ts"
import { entityPutInput } from "../../persistence/dynamodb/snapshot-store-dynamodb.ts"
import { stackUp } from "../../scripts/local-stack/stack.ts"
import { accountEntity, paymentEntity } from "../contract/fixtures.ts"

let endpoint = ""
const runId = `${Date.now().toString(36)}${process.pid.toString(36)}`
const cleanups: Array<() => void> = []

beforeAll(async () => {
  endpoint = (await stackUp()).dynamodbEndpoint
})

afterAll(() => {
  for (const cleanup of cleanups) cleanup()
})

const options = { requestTimeoutMs: 2_000, socketsMax: 4 }

const clientPair = (config: DynamoDBClientConfig): { sdk: DynamoDBClient; lean: PutItemClient } => {
  const sdk = new DynamoDBClient(config)
  const lean = makePutItemClient(sdk, options)
  cleanups.push(() => {
    lean.destroy()
    sdk.destroy()
  })
  return { sdk, lean }
}

interface Captured {
  readonly headers: Record<string, string>
  readonly body: string
}

class CapturedRequest extends Error {
  constructor(readonly captured: Captured) {
    super("captured")
  }
}

/** Sends the put through the SDK, up to and including its signature, and returns what it would have sent. */
const sdkSignedRequest = async (client: DynamoDBClient, input: PutItemInput): Promise<Captured> => {
  try {
    await client.send(new PutItemCommand(input))
  } catch (error) {
    if (error instanceof CapturedRequest) return error.captured
    throw error
  }
  throw new Error("the SDK request was not captured")
}

const installCapture = (client: DynamoDBClient) =>
  client.middlewareStack.add(
    () => async (args) => {
      const request = args.request as { headers: Record<string, string>; body: Uint8Array | string }
      const body =
        typeof request.body === "string"
          ? request.body
          : Buffer.from(request.body.buffer, request.body.byteOffset, request.body.byteLength).toString("utf8")
      throw new CapturedRequest({ headers: { ...request.headers }, body })
    },
    { step: "finalizeRequest", priority: "low", name: "captureSignedRequest" },
  )

/** `20261127T060010Z` as a Date. */
const parseAmzDate = (text: string): Date =>
  new Date(
    `${text.slice(0, 4)}-${text.slice(4, 6)}-${text.slice(6, 8)}T${text.slice(9, 11)}:${text.slice(11, 13)}:${text.slice(13, 15)}Z`,
  )

const fixedCredentials = {
  accessKeyId: "AKIDEXAMPLE",
  secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
  sessionToken: "session-token-example",
}

const checkpoint = { shard: 3, epoch: 7, nextOffset: 1234 }
const sampleInputs: ReadonlyArray<PutItemInput> = [
  entityPutInput("snap-tenant-a", checkpoint, paymentEntity("pay-1", "pending")),
  entityPutInput("snap-tenant-a", checkpoint, accountEntity("acc-1", 123_456_789_012_345_678_901n, 42)),
  {
    TableName: "snap-tenant-b",
    Item: { shard: { N: "0" }, entityKey: { S: 'quote " backslash \\ é 中 😀 \u0001' } },
    ConditionExpression: "attribute_not_exists(#epoch)",
    ExpressionAttributeNames: { "#epoch": "epoch" },
  },
]

describe("lean PutItem client", () => {
  const configs: ReadonlyArray<[string, DynamoDBClientConfig]> = [
    ["a local endpoint", { region: "us-east-1", endpoint: "http://127.0.0.1:4567", credentials: fixedCredentials }],
    ["real AWS", { region: "eu-west-1", credentials: fixedCredentials }],
  ]
  for (const [label, config] of configs) {
    it(`signs a put byte for byte as the SDK does (${label})`, async () => {
      const { sdk, lean } = clientPair({ ...config, maxAttempts: 1 })
      installCapture(sdk)
      for (const input of sampleInputs) {
        const fromSdk = await sdkSignedRequest(sdk, input)
        const amzDate = fromSdk.headers["x-amz-date"] ?? ""
        // The SDK also signs its per-request headers (an invocation id, attempt counter, user agent).
        const sdkOnly = ["amz-sdk-invocation-id", "amz-sdk-request", "x-amz-user-agent"]
        const extraHeaders = Object.fromEntries(
          sdkOnly.flatMap((name) => (fromSdk.headers[name] === undefined ? [] : [[name, fromSdk.headers[name]]])),
        )
        const ours = await lean.sign(input, parseAmzDate(amzDate), extraHeaders)
        expect(ours.body).toBe(fromSdk.body)
        for (const name of ["authorization", "x-amz-date", "x-amz-content-sha256", "x-amz-security-token", "host"]) {
          expect(fromSdk.headers[name]).toBeDefined()
          expect(ours.headers[name]).toBe(fromSdk.headers[name])
        }
        const own = await lean.sign(input, parseAmzDate(amzDate))
        expect(own.headers.authorization).toContain(
          "SignedHeaders=content-length;content-type;host;x-amz-content-sha256;x-amz-date;x-amz-security-token;x-amz-target,",
        )
      }
    })
  }

  it("targets the regional endpoint in real AWS and the configured one locally", async () => {
    const aws = clientPair({ region: "eu-west-1", credentials: fixedCredentials }).lean
    const local = clientPair({ region: "us-east-1", endpoint: "http://127.0.0.1:4567", credentials: fixedCredentials })
    const input = sampleInputs[0] as PutItemInput
    expect((await aws.sign(input, new Date())).url.href).toBe("https://dynamodb.eu-west-1.amazonaws.com/")
    expect((await local.lean.sign(input, new Date())).url.href).toBe("http://127.0.0.1:4567/")
  })
})

describe("lean PutItem client against dynalite", () => {
  const tableName = `lean-put-${runId}`
  const storeClient = () => {
    const sdk = makeClient({ endpoint, region: "us-east-1", tablePrefix: "lean-put" })
    const lean = makePutItemClient(sdk, options)
    cleanups.push(() => {
      lean.destroy()
      sdk.destroy()
    })
    return { sdk, lean }
  }
  const ensureTable = (sdk: DynamoDBClient) =>
    Effect.runPromise(
      makeTables(sdk).ensure(0, tableName, {
        partitionKey: { name: "shard", type: "N" },
        sortKey: { name: "entityKey", type: "S" },
      }),
    )
  const readBack = async (sdk: DynamoDBClient, input: PutItemInput) => {
    const output = await sdk.send(
      new GetItemCommand({
        TableName: tableName,
        Key: { shard: input.Item?.shard ?? { N: "-1" }, entityKey: input.Item?.entityKey ?? { S: "" } },
        ConsistentRead: true,
      }),
    )
    return output.Item
  }
  const entity: Entity = accountEntity("acc-9", 987_654_321n, 5)

  it("puts an item that the SDK reads back, and maps a failed condition", { timeout: 60_000 }, async () => {
    const { sdk, lean } = storeClient()
    await ensureTable(sdk)
    const first = entityPutInput(tableName, { shard: 1, epoch: 2, nextOffset: 10 }, entity)
    expect(await Effect.runPromise(lean.put(1, "PutItem", first))).toEqual({ _tag: "Done", value: undefined })
    expect(await readBack(sdk, first)).toEqual(first.Item)

    const olderEpoch = entityPutInput(tableName, { shard: 1, epoch: 1, nextOffset: 99 }, accountEntity("acc-9", 1n, 6))
    expect(await Effect.runPromise(lean.put(1, "PutItem", olderEpoch))).toEqual({ _tag: "ConditionFailed" })
    const earlierOffset = entityPutInput(
      tableName,
      { shard: 1, epoch: 2, nextOffset: 9 },
      accountEntity("acc-9", 1n, 6),
    )
    expect(await Effect.runPromise(lean.put(1, "PutItem", earlierOffset))).toEqual({ _tag: "ConditionFailed" })
    expect(await readBack(sdk, first)).toEqual(first.Item)

    const later = entityPutInput(tableName, { shard: 1, epoch: 2, nextOffset: 11 }, accountEntity("acc-9", 2n, 6))
    expect(await Effect.runPromise(lean.put(1, "PutItem", later))).toEqual({ _tag: "Done", value: undefined })
    expect(await readBack(sdk, later)).toEqual(later.Item)
  })

  it("reports a missing table as SnapshotUnavailable with the error's name", async () => {
    const { lean } = storeClient()
    const input = entityPutInput(`lean-put-missing-${runId}`, { shard: 1, epoch: 1, nextOffset: 1 }, entity)
    const result = await Effect.runPromise(Effect.result(lean.put(1, "PutItem missing", input)))
    expect(result._tag).toBe("Failure")
    if (result._tag === "Failure") {
      expect(result.failure).toMatchObject({ _tag: "SnapshotUnavailable", shard: 1 })
      expect(result.failure.message).toMatch(/^PutItem missing: ResourceNotFoundException \(HTTP 400\): /)
    }
  })

  it("reports an unreachable endpoint as SnapshotUnavailable after its attempts", async () => {
    // Port 1 on loopback: nothing listens, every connection is refused.
    const sdk = makeClient({ endpoint: "http://127.0.0.1:1", region: "us-east-1", tablePrefix: "lean-put" })
    const lean = makePutItemClient(sdk, options)
    cleanups.push(() => {
      lean.destroy()
      sdk.destroy()
    })
    const input = entityPutInput(tableName, { shard: 4, epoch: 1, nextOffset: 1 }, entity)
    const result = await Effect.runPromise(Effect.result(lean.put(4, "PutItem down", input)))
    expect(result._tag).toBe("Failure")
    if (result._tag === "Failure") {
      expect(result.failure).toMatchObject({ _tag: "SnapshotUnavailable", shard: 4 })
      expect(result.failure.message).toMatch(/^PutItem down: .*ECONNREFUSED/)
    }
  })
})
