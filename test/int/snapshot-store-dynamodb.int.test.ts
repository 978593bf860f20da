/**
 * The DynamoDB snapshot store against the local DynamoDB-API server (dynalite): the port's
 * contract, plus fencing of a stale owner, one table per tenant, few writes per save, and a large
 * exact round trip. Every test uses its own table prefix, so tests never see each other's shards.
 */
import { DynamoDBClient, ScanCommand } from "@aws-sdk/client-dynamodb"
import { Effect } from "effect"
import { beforeAll, describe, expect, it } from "vitest"
import { buildSegment } from "../../actors/segment-builder.ts"
import type { AccountId, PaymentId } from "../../core/ids.ts"
import type { Entity } from "../../core/ledger.ts"
import { layerDynamoDb } from "../../persistence/dynamodb/snapshot-store-dynamodb.ts"
import { type ShardCheckpoint, SnapshotStore } from "../../persistence/snapshot-store.ts"
import { stackUp } from "../../scripts/local-stack/stack.ts"
import { accountEntity, creditEntity, otherTenant, paymentEntity, tenant } from "../contract/fixtures.ts"
import {
  accountsOf,
  byKey,
  claimedAccounts,
  entriesOf,
  snapshotStoreContract,
} from "../contract/snapshot-store.contract.ts"

let endpoint = ""
const runId = `${Date.now().toString(36)}${process.pid.toString(36)}`
let prefixCount = 0
const nextPrefix = () => `snap-${runId}-${prefixCount++}`

beforeAll(async () => {
  endpoint = (await stackUp()).dynamodbEndpoint
})

const layerFor = (tablePrefix: string) => layerDynamoDb({ endpoint, region: "us-east-1", tablePrefix })

const runWith = <A, E>(tablePrefix: string, program: Effect.Effect<A, E, SnapshotStore>): Promise<A> =>
  Effect.runPromise(program.pipe(Effect.provide(layerFor(tablePrefix))) as Effect.Effect<A, unknown>)

/** Saves entities as one segment (accounts and final entries) and says how many parts it took. */
const saveEntities = (checkpoint: ShardCheckpoint, entities: ReadonlyArray<Entity>) =>
  Effect.gen(function* () {
    const store = yield* SnapshotStore
    const built = buildSegment(
      { accounts: accountsOf(entities), entries: entriesOf(entities), live: [] },
      store.partBytesMax,
    )
    yield* store.save(
      checkpoint,
      1_700_000_000_000,
      built.parts.map((part) => part.part),
    )
    return built.parts.length
  })

const checkpointOf = (shard: number, epoch: number, nextOffset: number, segment: number): ShardCheckpoint => ({
  shard,
  epoch,
  nextOffset,
  segment,
  base: segment,
})

/** Reads a whole table with a plain client, outside the adapter under test. */
const scanKeys = async (tableName: string): Promise<Array<string>> => {
  const client = new DynamoDBClient({
    endpoint,
    region: "us-east-1",
    credentials: { accessKeyId: "local", secretAccessKey: "local" },
  })
  try {
    const output = await client.send(new ScanCommand({ TableName: tableName, ConsistentRead: true }))
    return (output.Items ?? []).map((item) => item.partKey?.S ?? "").sort()
  } finally {
    client.destroy()
  }
}

snapshotStoreContract("dynamodb", () => layerFor(nextPrefix()), { timeoutMs: 60_000 })

describe("DynamoDB SnapshotStore", () => {
  it(
    "refuses a stale epoch's saves, and they change nothing the new owner's claim sees",
    () =>
      runWith(
        nextPrefix(),
        Effect.gen(function* () {
          const store = yield* SnapshotStore
          yield* store.claim(0, 1)
          yield* saveEntities(checkpointOf(0, 1, 5, 1001), [
            accountEntity("acc-1", 5n, 2),
            paymentEntity("pay-1", "settled"),
          ])
          const owned = yield* store.claim(0, 2)
          const sameTenant = yield* Effect.result(
            saveEntities(checkpointOf(0, 1, 9, 1002), [accountEntity("acc-1", 666n, 3), accountEntity("acc-7", 7n, 1)]),
          )
          const newTenant = yield* Effect.result(
            saveEntities(checkpointOf(0, 1, 9, 1003), [accountEntity("acc-8", 8n, 1, otherTenant)]),
          )
          for (const stale of [sameTenant, newTenant]) {
            expect(stale._tag).toBe("Failure")
            if (stale._tag === "Failure") expect(stale.failure).toMatchObject({ _tag: "SnapshotFenced", epoch: 2 })
          }
          const seen = yield* store.claim(0, 3)
          expect(seen?.checkpoint).toEqual(checkpointOf(0, 1, 5, 1001))
          expect(claimedAccounts(seen)).toEqual(claimedAccounts(owned))
          expect(claimedAccounts(seen)).toEqual([accountEntity("acc-1", 5n, 2)])
        }),
      ),
    60_000,
  )

  it("keeps each tenant's parts in that tenant's own table", async () => {
    const tablePrefix = nextPrefix()
    const ours = [accountEntity("acc-1", 10n, 1), paymentEntity("pay-1", "settled"), creditEntity("pay-2")]
    const theirs = [accountEntity("acc-1", 20n, 1, otherTenant), accountEntity("acc-2", 30n, 1, otherTenant)]
    await runWith(
      tablePrefix,
      Effect.gen(function* () {
        const store = yield* SnapshotStore
        yield* store.claim(4, 1)
        yield* saveEntities(checkpointOf(4, 1, 3, 2001), [...ours, ...theirs])
        const loaded = yield* store.claim(4, 2)
        expect(claimedAccounts(loaded)).toEqual(
          byKey([...accountsOf(ours), ...accountsOf(theirs)].map((value) => ({ kind: "account" as const, value }))),
        )
      }),
    )
    const partKeys = ["f#0000000000002001#00000", "p#0000000000002001#00000"]
    expect(await scanKeys(`${tablePrefix}-tenant-${tenant}`)).toEqual(partKeys)
    expect(await scanKeys(`${tablePrefix}-tenant-${otherTenant}`)).toEqual(partKeys)
  }, 60_000)

  it("answers SnapshotUnavailable, not a defect, when the server cannot be reached", async () => {
    const unreachable = layerDynamoDb({
      endpoint: "http://127.0.0.1:1",
      region: "us-east-1",
      tablePrefix: nextPrefix(),
    })
    const outcome = await Effect.runPromise(
      Effect.gen(function* () {
        const store = yield* SnapshotStore
        const claim = yield* Effect.result(store.claim(0, 1))
        const save = yield* Effect.result(saveEntities(checkpointOf(0, 1, 1, 1), [accountEntity("a", 1n, 1)]))
        return [claim, save]
      }).pipe(Effect.provide(unreachable)),
    )
    for (const result of outcome) {
      expect(result._tag).toBe("Failure")
      if (result._tag === "Failure") expect(result.failure).toMatchObject({ _tag: "SnapshotUnavailable", shard: 0 })
    }
  }, 60_000)

  it(
    "round-trips 12,000 accounts and 20,000 payments exactly in a few dozen writes, balances beyond 2^53 included",
    () =>
      runWith(
        nextPrefix(),
        Effect.gen(function* () {
          const store = yield* SnapshotStore
          const beyondSafe = 2n ** 53n
          const entities: Array<Entity> = []
          for (let index = 0; index < 12_000; index++) {
            const sign = index % 2 === 0 ? 1n : -1n
            const owner = index % 3 === 0 ? otherTenant : tenant
            const balance = sign === 1n ? beyondSafe * 1_000n + BigInt(index) : 0n
            entities.push(accountEntity(`acc-${index}`, balance, index + 1, owner))
          }
          for (let index = 0; index < 20_000; index++) {
            const payment = paymentEntity(`pay-${index}`, index % 2 === 0 ? "settled" : "declined")
            if (payment.kind !== "payment") throw new Error("fixture is not a payment")
            entities.push({
              kind: "payment",
              value: { ...payment.value, from: `acc-${index}` as AccountId, paymentId: `pay-${index}` as PaymentId },
            })
          }
          yield* store.claim(5, 1)
          const saveStartMs = performance.now()
          const parts = yield* saveEntities(checkpointOf(5, 1, 32_000, 3001), entities)
          const saveMs = performance.now() - saveStartMs
          const claimStartMs = performance.now()
          const loaded = yield* store.claim(5, 2)
          const claimMs = performance.now() - claimStartMs
          console.log(
            `dynalite: save of 32,000 entities in ${parts} parts ${saveMs.toFixed(0)} ms, claim ${claimMs.toFixed(0)} ms`,
          )
          // Two items per part: the writes of a save follow its bytes, not its count of payments.
          expect(parts).toBeLessThan(40)
          expect(loaded?.checkpoint).toEqual(checkpointOf(5, 1, 32_000, 3001))
          expect(claimedAccounts(loaded)).toEqual(byKey(entities.filter((entity) => entity.kind === "account")))
          expect(loaded?.parts.length).toBe(parts)
        }),
      ),
    180_000,
  )
})
