/**
 * The DynamoDB snapshot store against the local DynamoDB-API server (dynalite): the port's
 * contract, plus fencing of a stale owner, one table per tenant, and a large exact round trip.
 * Every test uses its own table prefix, so tests never see each other's shards.
 */
import { DynamoDBClient, ScanCommand } from "@aws-sdk/client-dynamodb"
import { Effect } from "effect"
import { beforeAll, describe, expect, it } from "vitest"
import type { AccountId, PaymentId } from "../../core/ids.ts"
import { type Entity, entityKey } from "../../core/ledger.ts"
import { layerDynamoDb } from "../../persistence/dynamodb/snapshot-store-dynamodb.ts"
import { SnapshotStore } from "../../persistence/snapshot-store.ts"
import { stackUp } from "../../scripts/local-stack/stack.ts"
import { accountEntity, creditEntity, otherTenant, paymentEntity, tenant } from "../contract/fixtures.ts"
import { snapshotStoreContract } from "../contract/snapshot-store.contract.ts"

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

const byKey = (entities: ReadonlyArray<Entity>) =>
  [...entities].sort((left, right) => entityKey(left).localeCompare(entityKey(right)))

/** Reads a whole table with a plain client, outside the adapter under test. */
const scanKeys = async (tableName: string): Promise<Array<string>> => {
  const client = new DynamoDBClient({
    endpoint,
    region: "us-east-1",
    credentials: { accessKeyId: "local", secretAccessKey: "local" },
  })
  try {
    const output = await client.send(new ScanCommand({ TableName: tableName, ConsistentRead: true }))
    return (output.Items ?? []).map((item) => item.entityKey?.S ?? "").sort()
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
          yield* store.save({ shard: 0, epoch: 1, nextOffset: 5 }, [
            accountEntity("acc-1", 5n, 2),
            paymentEntity("pay-1", "pending"),
          ])
          const owned = yield* store.claim(0, 2)
          const sameTenant = yield* Effect.result(
            store.save({ shard: 0, epoch: 1, nextOffset: 9 }, [
              paymentEntity("pay-1", "settled"),
              accountEntity("acc-1", 666n, 3),
              accountEntity("acc-7", 7n, 1),
            ]),
          )
          const newTenant = yield* Effect.result(
            store.save({ shard: 0, epoch: 1, nextOffset: 9 }, [accountEntity("acc-8", 8n, 1, otherTenant)]),
          )
          for (const stale of [sameTenant, newTenant]) {
            expect(stale._tag).toBe("Failure")
            if (stale._tag === "Failure") expect(stale.failure).toMatchObject({ _tag: "SnapshotFenced", epoch: 2 })
          }
          const seen = yield* store.claim(0, 3)
          expect(seen?.checkpoint).toEqual({ shard: 0, epoch: 1, nextOffset: 5 })
          expect(byKey(seen?.entities ?? [])).toEqual(byKey(owned?.entities ?? []))
          expect(byKey(seen?.entities ?? [])).toEqual(
            byKey([accountEntity("acc-1", 5n, 2), paymentEntity("pay-1", "pending")]),
          )
        }),
      ),
    60_000,
  )

  it("keeps each tenant's entities in that tenant's own table", async () => {
    const tablePrefix = nextPrefix()
    const ours = [accountEntity("acc-1", 10n, 1), paymentEntity("pay-1", "settled"), creditEntity("pay-2")]
    const theirs = [accountEntity("acc-1", 20n, 1, otherTenant), accountEntity("acc-2", 30n, 1, otherTenant)]
    await runWith(
      tablePrefix,
      Effect.gen(function* () {
        const store = yield* SnapshotStore
        yield* store.claim(4, 1)
        yield* store.save({ shard: 4, epoch: 1, nextOffset: 3 }, [...ours, ...theirs])
        const loaded = yield* store.claim(4, 2)
        expect(byKey(loaded?.entities ?? [])).toEqual(byKey([...ours, ...theirs]))
      }),
    )
    expect(await scanKeys(`${tablePrefix}-tenant-${tenant}`)).toEqual(ours.map(entityKey).sort())
    expect(await scanKeys(`${tablePrefix}-tenant-${otherTenant}`)).toEqual(theirs.map(entityKey).sort())
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
        const save = yield* Effect.result(
          store.save({ shard: 0, epoch: 1, nextOffset: 1 }, [accountEntity("a", 1n, 1)]),
        )
        return [claim, save]
      }).pipe(Effect.provide(unreachable)),
    )
    for (const result of outcome) {
      expect(result._tag).toBe("Failure")
      if (result._tag === "Failure") expect(result.failure).toMatchObject({ _tag: "SnapshotUnavailable", shard: 0 })
    }
  }, 60_000)

  it(
    "round-trips a snapshot of 2,000 entities exactly, balances beyond 2^53 included",
    () =>
      runWith(
        nextPrefix(),
        Effect.gen(function* () {
          const store = yield* SnapshotStore
          const beyondSafe = 2n ** 53n
          const entities: Array<Entity> = []
          for (let index = 0; index < 1_500; index++) {
            const sign = index % 2 === 0 ? 1n : -1n
            const owner = index % 3 === 0 ? otherTenant : tenant
            entities.push(accountEntity(`acc-${index}`, sign * (beyondSafe * 1_000n + BigInt(index)), index + 1, owner))
          }
          for (let index = 0; index < 500; index++) {
            const payment = paymentEntity(`pay-${index}`, index % 2 === 0 ? "settled" : "declined")
            if (payment.kind !== "payment") throw new Error("fixture is not a payment")
            entities.push({
              kind: "payment",
              value: { ...payment.value, from: `acc-${index}` as AccountId, paymentId: `pay-${index}` as PaymentId },
            })
          }
          yield* store.claim(5, 1)
          const saveStartMs = performance.now()
          yield* store.save({ shard: 5, epoch: 1, nextOffset: 2_000 }, entities)
          const saveMs = performance.now() - saveStartMs
          const claimStartMs = performance.now()
          const loaded = yield* store.claim(5, 2)
          const claimMs = performance.now() - claimStartMs
          console.log(`dynalite: save of 2,000 entities ${saveMs.toFixed(0)} ms, claim ${claimMs.toFixed(0)} ms`)
          expect(loaded?.checkpoint).toEqual({ shard: 5, epoch: 1, nextOffset: 2_000 })
          expect(loaded?.entities.length).toBe(2_000)
          expect(byKey(loaded?.entities ?? [])).toEqual(byKey(entities))
        }),
      ),
    180_000,
  )
})
