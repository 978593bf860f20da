/**
 * Bounded memory with exact idempotency: a shard keeps only `recentEntriesMax` saved entries in
 * memory; older payments, deposits and credits are read back from the snapshot store when a
 * lookup or a retry needs them, and the answer is exactly what memory would have given, before and
 * after a restart. Keys expire after the window (they may then be reused), and segments past it
 * are deleted. Runs the real runtime on the memory adapters.
 */
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { type RuntimeClock, SimulatedClock } from "../../actors/clock.ts"
import { defaultRuntimeLimits, type RuntimeLimits } from "../../actors/limits.ts"
import type { PaymentNodeHandle } from "../../actors/node.ts"
import type { Outcome } from "../../actors/processor.ts"
import type { Command } from "../../core/commands.ts"
import { makeMemorySnapshotStore } from "../../persistence/memory/snapshot-store-memory.ts"
import { SnapshotStore } from "../../persistence/snapshot-store.ts"
import { deposit, eventually, getAccount, getPayment, open, submit, transfer } from "../support/commands.ts"
import { type MemoryStores, newMemoryStores, startMemoryNode } from "../support/memory-node.ts"

const recentEntriesMax = 10
const limits: RuntimeLimits = {
  ...defaultRuntimeLimits,
  shardCount: 2,
  recentEntriesMax,
  snapshotEveryEvents: 8,
  snapshotIntervalMs: 10,
  rebuildRetryDelayMs: 10,
}

const newStores = newMemoryStores
type Stores = MemoryStores

/** A snapshot store whose entry reads wait until `release` is called, to hold a lookup in flight. */
const gatedStore = (stores: Stores) => {
  const store = makeMemorySnapshotStore(stores.snapshots)
  let release: () => void = () => {}
  const gate = new Promise<void>((resolve) => {
    release = resolve
  })
  return {
    store: SnapshotStore.of({
      ...store,
      readEntries: (...args) => Effect.promise(() => gate).pipe(Effect.andThen(store.readEntries(...args))),
    }),
    release: () => release(),
  }
}

const startNode = (
  stores: Stores,
  nodeLimits: RuntimeLimits = limits,
  clock?: RuntimeClock,
  store = makeMemorySnapshotStore(stores.snapshots),
) => startMemoryNode(stores, nodeLimits, clock === undefined ? {} : { clock }, store)

const balanceOf = async (processor: PaymentNodeHandle, accountId: string): Promise<bigint> => {
  const outcome = await getAccount(processor, accountId)
  if (outcome._tag !== "Account") throw new Error(`no account ${accountId}: ${JSON.stringify(outcome)}`)
  return outcome.account.balanceMinor
}

const paymentOf = (outcome: Outcome) => (outcome._tag === "Payment" ? outcome.payment : outcome)

/** 60 deposits and 120 transfers between two accounts: far more entries than a shard keeps. */
const fill = async (processor: PaymentNodeHandle) => {
  await submit(processor, open("alice"))
  await submit(processor, open("bob"))
  const originals = new Map<string, Outcome>()
  for (let index = 0; index < 60; index++) await submit(processor, deposit("alice", `dep-${index}`, 1_000n))
  for (let index = 0; index < 120; index++) {
    originals.set(`pay-${index}`, await submit(processor, transfer(`pay-${index}`, "alice", "bob", BigInt(index + 1))))
  }
  await eventually(() => processor.metrics().snapshotUnsavedEntities === 0)
  return originals
}

/** Every original payment reads back exactly, and every retry returns it without moving money. */
const checkExact = async (processor: PaymentNodeHandle, originals: ReadonlyMap<string, Outcome>) => {
  const alice = await balanceOf(processor, "alice")
  for (const [paymentId, original] of originals) {
    expect(paymentOf(await getPayment(processor, "alice", paymentId))).toEqual(paymentOf(original))
  }
  for (const index of [0, 1, 57, 119]) {
    const retried = await submit(processor, transfer(`pay-${index}`, "alice", "bob", BigInt(index + 1)))
    expect(paymentOf(retried)).toEqual(paymentOf(originals.get(`pay-${index}`) as Outcome))
    const conflicting = await submit(processor, transfer(`pay-${index}`, "alice", "bob", 999n))
    expect(conflicting._tag === "Rejection" && conflicting.code).toBe("IDEMPOTENCY_CONFLICT")
  }
  const again = await submit(processor, deposit("alice", "dep-3", 1_000n))
  expect(again._tag === "Account" && again.account.balanceMinor).toBe(alice)
  const otherAmount = await submit(processor, deposit("alice", "dep-3", 1n))
  expect(otherAmount._tag === "Rejection" && otherAmount.code).toBe("IDEMPOTENCY_CONFLICT")
  expect(await balanceOf(processor, "alice")).toBe(alice)
}

const expectedAlice = 60n * 1_000n - (120n * 121n) / 2n

describe("bounded memory with exact idempotency", () => {
  it("evicts old entries, then answers lookups and retries exactly from the store, also after a restart", async () => {
    const stores = newStores()
    const first = await startNode(stores)
    const originals = await fill(first.processor)
    // Two shards, each over its bound only by the entries of its last save.
    expect(first.processor.metrics().entriesInMemory).toBeLessThanOrEqual(
      2 * recentEntriesMax + limits.snapshotEveryEvents,
    )
    expect(first.processor.metrics().idempotencyKeysIndexed).toBeGreaterThanOrEqual(180)
    const lookupsBefore = first.processor.metrics().entryLookupsTotal
    await checkExact(first.processor, originals)
    expect(first.processor.metrics().entryLookupsTotal).toBeGreaterThan(lookupsBefore)
    expect(await balanceOf(first.processor, "alice")).toBe(expectedAlice)
    await first.stop()

    const second = await startNode(stores)
    expect(second.processor.metrics().entriesInMemory).toBeLessThanOrEqual(2 * recentEntriesMax)
    await checkExact(second.processor, originals)
    expect(await balanceOf(second.processor, "alice")).toBe(expectedAlice)
    expect(await balanceOf(second.processor, "bob")).toBe((120n * 121n) / 2n)
    await second.stop()
  })

  it("keeps memory bounded by the recent set, not by how many payments were made", async () => {
    const node = await startNode(newStores())
    await submit(node.processor, open("alice"))
    await submit(node.processor, open("bob"))
    await submit(node.processor, deposit("alice", "dep", 10n ** 9n))
    for (let round = 0; round < 10; round++) {
      await Promise.all(
        Array.from({ length: 200 }, (_, index) =>
          submit(node.processor, transfer(`pay-${round}-${index}`, "alice", "bob", 1n)),
        ),
      )
      await eventually(() => node.processor.metrics().snapshotUnsavedEntities === 0)
      expect(node.processor.metrics().entriesInMemory).toBeLessThanOrEqual(
        2 * recentEntriesMax + limits.snapshotEveryEvents,
      )
    }
    expect(node.processor.metrics().idempotencyKeysIndexed).toBeGreaterThanOrEqual(2_000)
    await node.stop()
  })

  it("lets a key be reused after the window, and deletes segments past it", async () => {
    const clock = new SimulatedClock()
    const retentionMs = 60_000
    const stores = newStores()
    const windowed: RuntimeLimits = { ...limits, policy: { ...limits.policy, idempotencyRetentionMs: retentionMs } }
    const node = await startNode(stores, windowed, clock)
    const at = (command: Command): Command => ({ ...command, timestampMs: clock.nowMs() }) as Command
    const run = async (command: Command): Promise<Outcome> => {
      const answer = submit(node.processor, at(command))
      clock.runDeferred()
      return answer
    }
    await run(open("alice"))
    await run(deposit("alice", "dep-1", 5n))
    for (let index = 0; index < 30; index++) await run(deposit("alice", `fill-${index}`, 1n))
    clock.advance(limits.snapshotIntervalMs * 4)
    const within = await run(deposit("alice", "dep-1", 7n))
    expect(within._tag === "Rejection" && within.code).toBe("IDEMPOTENCY_CONFLICT")
    const segmentsBefore = stores.snapshots.segments.get(0)?.size ?? 0
    clock.advance(retentionMs)
    const reused = await run(deposit("alice", "dep-1", 7n))
    expect(reused._tag === "Account" && reused.account.balanceMinor).toBe(5n + 30n + 7n)
    // A credit may be kept twice the window; past that (and behind a newer base) segments go.
    for (let step = 0; step < 4; step++) {
      await run(deposit("alice", `late-${step}`, 1n))
      clock.advance(retentionMs)
    }
    expect(stores.snapshots.segments.get(0)?.size ?? 0).toBeLessThan(segmentsBefore)
    await node.stop()
  })

  it("refuses work parked behind a read-back when the node rebuilds, and the late read changes nothing", async () => {
    const stores = newStores()
    const first = await startNode(stores)
    const originals = await fill(first.processor)
    await first.stop()
    const gated = gatedStore(stores)
    const node = await startNode(stores, limits, undefined, gated.store)
    const parked = submit(node.processor, transfer("pay-0", "alice", "bob", 1n))
    // The journal fails under the node: it drops its shards (the parked retry with them) and rebuilds.
    stores.journal.outage = true
    const during = await submit(node.processor, deposit("bob", "dep-new", 1n))
    expect(during._tag === "Rejection" && during.code).toBe("UNAVAILABLE")
    const refused = await parked
    expect(refused._tag === "Rejection" && refused.code).toBe("UNAVAILABLE")
    stores.journal.outage = false
    await eventually(() => node.processor.isReady())
    gated.release()
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(node.processor.isReady()).toBe(true)
    expect(paymentOf(await submit(node.processor, transfer("pay-0", "alice", "bob", 1n)))).toEqual(
      paymentOf(originals.get("pay-0") as Outcome),
    )
    expect(await balanceOf(node.processor, "alice")).toBe(expectedAlice)
    await node.stop()
  })
})
