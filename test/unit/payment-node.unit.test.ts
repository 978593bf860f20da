/**
 * The actor runtime on the memory adapters: group commit, cross-shard sagas, recovery from
 * journal and snapshots, rebuild after a failed append, fencing and overload.
 */
import { Effect } from "effect"
import { describe, expect, it } from "vitest"
import { defaultRuntimeLimits, type RuntimeLimits } from "../../actors/limits.ts"
import type { PaymentNodeHandle } from "../../actors/node.ts"
import type { Outcome, Processor } from "../../actors/processor.ts"
import type { Command } from "../../core/commands.ts"
import type { AccountId, PaymentId } from "../../core/ids.ts"
import type { Currency } from "../../core/money.ts"
import { makeMemoryJournal, memoryRecords } from "../../persistence/memory/journal-memory.ts"
import { makeMemoryShardLeases } from "../../persistence/memory/shard-leases-memory.ts"
import {
  accountInShard,
  deposit,
  eventually,
  getAccount,
  getPayment,
  open,
  submit,
  tenant,
  transfer,
} from "../support/commands.ts"
import { type MemoryStores, newMemoryStores, startMemoryNode } from "../support/memory-node.ts"

const limits: RuntimeLimits = {
  ...defaultRuntimeLimits,
  shardCount: 4,
  rebuildRetryDelayMs: 20,
  policy: { ...defaultRuntimeLimits.policy, creditRedeliveryDelayMs: 10, creditRedeliveryDelayMsMax: 50 },
}

const newStores = newMemoryStores
type Stores = MemoryStores

const startNode = (stores: Stores, nodeLimits: RuntimeLimits = limits) => startMemoryNode(stores, nodeLimits)

const balanceOf = async (processor: Processor, accountId: string): Promise<bigint> => {
  const outcome = await getAccount(processor, accountId)
  if (outcome._tag !== "Account") throw new Error(`no account ${accountId}: ${JSON.stringify(outcome)}`)
  return outcome.account.balanceMinor
}

const paymentStatus = async (processor: Processor, from: string, paymentId: string) => {
  const outcome: Outcome = await getPayment(processor, from, paymentId)
  return outcome._tag === "Payment" ? outcome.payment.status : outcome._tag
}

const a0 = accountInShard(0, 4, "a")
const b0 = accountInShard(0, 4, "b")
const c1 = accountInShard(1, 4, "c")

describe("PaymentNode", () => {
  it("settles transfers within a shard and across shards at once, each in one journal append", async () => {
    const stores = newStores()
    const node = await startNode(stores)
    for (const id of [a0, b0, c1]) expect((await submit(node.processor, open(id)))._tag).toBe("Account")
    await submit(node.processor, deposit(a0, "d1", 10_000n))
    const local = await submit(node.processor, transfer("p1", a0, b0, 2_500n))
    expect(local._tag === "Payment" && local.payment.status).toBe("settled")
    const appendsBefore = stores.journal.appendsTotal
    const across = await submit(node.processor, transfer("p2", a0, c1, 1_000n))
    expect(across._tag === "Payment" && across.payment.status).toBe("settled")
    // Debit on shard 0 and credit on shard 1: two records, one atomic append.
    expect(stores.journal.appendsTotal - appendsBefore).toBe(1)
    expect(
      memoryRecords(stores.journal, 1)
        .at(-1)
        ?.events.map((event) => event._tag),
    ).toEqual(["TransferCredited"])
    expect(await balanceOf(node.processor, a0)).toBe(6_500n)
    expect(await balanceOf(node.processor, b0)).toBe(2_500n)
    expect(await balanceOf(node.processor, c1)).toBe(1_000n)
    await node.stop()
  })

  it("rejects a transfer to an unknown account on another shard without recording a payment", async () => {
    const node = await startNode(newStores())
    await submit(node.processor, open(a0))
    await submit(node.processor, deposit(a0, "d1", 100n))
    const outcome = await submit(node.processor, transfer("p1", a0, c1, 10n))
    expect(outcome._tag === "Rejection" && outcome.code).toBe("UNKNOWN_ACCOUNT")
    expect(await paymentStatus(node.processor, a0, "p1")).toBe("Rejection")
    expect(await balanceOf(node.processor, a0)).toBe(100n)
    await node.stop()
  })

  it("answers many concurrent commands with few journal appends (group commit)", async () => {
    const stores = newStores()
    const node = await startNode(stores)
    await submit(node.processor, open(a0))
    const outcomes = await Promise.all(
      Array.from({ length: 200 }, (_, index) => submit(node.processor, deposit(a0, `d${index}`, 1n))),
    )
    expect(outcomes.every((outcome) => outcome._tag === "Account")).toBe(true)
    expect(await balanceOf(node.processor, a0)).toBe(200n)
    expect(stores.journal.logs.get(0)?.length).toBe(201)
    expect(stores.journal.appendsTotal).toBeLessThan(20)
    await node.stop()
  })

  it("recovers exactly the acknowledged state after a restart, from journal and from snapshots", async () => {
    const stores = newStores()
    const first = await startNode(stores, { ...limits, snapshotEveryEvents: 5, recentEntriesMax: 4 })
    for (const id of [a0, b0, c1]) await submit(first.processor, open(id))
    await submit(first.processor, deposit(a0, "d1", 5_000n))
    for (let index = 0; index < 20; index++) {
      await submit(first.processor, transfer(`p${index}`, a0, index % 2 === 0 ? b0 : c1, 100n))
    }
    expect(await paymentStatus(first.processor, a0, "p19")).toBe("settled")
    await first.stop()
    expect(stores.snapshots.checkpoints.size).toBeGreaterThan(0)
    const second = await startNode(stores)
    expect(await balanceOf(second.processor, a0)).toBe(3_000n)
    expect(await balanceOf(second.processor, b0)).toBe(1_000n)
    expect(await balanceOf(second.processor, c1)).toBe(1_000n)
    const retry = await submit(second.processor, deposit(a0, "d1", 5_000n))
    expect(retry._tag === "Account" && retry.account.balanceMinor).toBe(3_000n)
    for (let index = 0; index < 20; index++)
      expect(await paymentStatus(second.processor, a0, `p${index}`)).toBe("settled")
    await second.stop()
  })

  it("answers UNAVAILABLE while the journal is down, loses nothing acknowledged, and resumes", async () => {
    const stores = newStores()
    const node = await startNode(stores)
    await submit(node.processor, open(a0))
    await submit(node.processor, deposit(a0, "d1", 100n))
    stores.journal.outage = true
    const during = await submit(node.processor, deposit(a0, "d2", 50n))
    expect(during._tag === "Rejection" && during.code).toBe("UNAVAILABLE")
    expect(node.processor.isReady()).toBe(false)
    stores.journal.outage = false
    await eventually(() => node.processor.isReady())
    expect(await balanceOf(node.processor, a0)).toBe(100n)
    const retried = await submit(node.processor, deposit(a0, "d2", 50n))
    expect(retried._tag === "Account" && retried.account.balanceMinor).toBe(150n)
    await node.stop()
  })

  it("never acknowledges through a fenced writer, then takes a new ownership and serves again", async () => {
    const stores = newStores()
    const node = await startNode(stores)
    await submit(node.processor, open(a0))
    // Another writer opens the shard, as a new owner would (or as a broker aborting a stalled transaction).
    await Effect.runPromise(Effect.scoped(makeMemoryJournal(stores.journal).openWriter(0)))
    const stale = await submit(node.processor, deposit(a0, "d1", 1n))
    expect(stale._tag === "Rejection" && stale.code).toBe("UNAVAILABLE")
    // The lease is free (in-process leases), so the shard rebuilds from the journal under a new epoch.
    await eventually(() => node.processor.isReady())
    const retried = await submit(node.processor, deposit(a0, "d1", 1n))
    expect(retried._tag).toBe("Account")
    expect(await submit(node.processor, deposit(a0, "d1", 1n))).toEqual(retried)
    expect(await balanceOf(node.processor, a0)).toBe(1n)
    await node.stop()
  })

  it("answers OVERLOADED beyond the shard's queue bound and changes nothing for those", async () => {
    const stores = newStores()
    const node = await startNode(stores, { ...limits, shardQueueDepthMax: 10 })
    await submit(node.processor, open(a0))
    const outcomes = await Promise.all(
      Array.from({ length: 50 }, (_, index) => submit(node.processor, deposit(a0, `d${index}`, 1n))),
    )
    const accepted = outcomes.filter((outcome) => outcome._tag === "Account").length
    const overloaded = outcomes.filter(
      (outcome) => outcome._tag === "Rejection" && outcome.code === "OVERLOADED",
    ).length
    expect(overloaded).toBeGreaterThan(0)
    expect(accepted + overloaded).toBe(50)
    expect(await balanceOf(node.processor, a0)).toBe(BigInt(accepted))
    await node.stop()
  })

  it("keeps a timer per live hold only: a captured or voided authorization's expiry timer goes with it", async () => {
    const node = await startNode(newStores())
    for (const id of [a0, b0]) await submit(node.processor, open(id))
    await submit(node.processor, deposit(a0, "d1", 10_000n))
    const authorize = (paymentId: string): Command => ({
      _tag: "Authorize",
      tenantId: tenant,
      correlationId: paymentId,
      timestampMs: Date.now(),
      paymentId: paymentId as PaymentId,
      from: a0 as AccountId,
      to: b0 as AccountId,
      amountMinor: 100n,
      currency: "USD" as Currency,
      holdMs: 3_600_000,
    })
    const meta = (paymentId: string) => ({
      tenantId: tenant,
      correlationId: paymentId,
      timestampMs: Date.now(),
      paymentId: paymentId as PaymentId,
      from: a0 as AccountId,
    })
    for (const paymentId of ["h1", "h2", "h3"]) await submit(node.processor, authorize(paymentId))
    await eventually(() => node.processor.metrics().timersPending === 3)
    const captured = await submit(node.processor, {
      _tag: "Capture",
      ...meta("h1"),
      captureId: "c1",
      amount: null,
      creditorLocal: true,
    })
    expect(captured._tag === "Payment" && captured.payment.status).toBe("settled")
    await submit(node.processor, { _tag: "Void", ...meta("h2") })
    expect(node.processor.metrics().timersPending).toBe(1)
    // Authorized and captured in the same flush: its expiry is never scheduled.
    const [held, capture] = await Promise.all([
      submit(node.processor, authorize("h4")),
      submit(node.processor, { _tag: "Capture", ...meta("h4"), captureId: "c4", amount: null, creditorLocal: true }),
    ])
    expect([held._tag, capture._tag === "Payment" && capture.payment.status]).toEqual(["Payment", "settled"])
    expect(node.processor.metrics().timersPending).toBe(1)
    await node.stop()
  })

  it("fences the writer a previous owner registered for a shard, when it held the shard in another set", async () => {
    const stores = newStores()
    const fenced: Array<string> = []
    const journal = makeMemoryJournal(stores.journal)
    const spying = { ...journal, fence: (writerId: string) => Effect.sync(() => void fenced.push(writerId)) }
    const start = (ownedShards: ReadonlyArray<number>) =>
      startMemoryNode(stores, limits, { ownedShards, forward: () => {} }, undefined, spying)
    const first = await start([0, 1])
    await first.stop()
    // The same set again: the writer id is its own, opening the writer fences it; nothing else to fence.
    const again = await start([0, 1])
    await again.stop()
    expect(fenced).toEqual([])
    const taker = await start([0])
    expect(fenced).toEqual([journal.writerIdOf([0, 1])])
    await taker.stop()
  })

  it("holds requests during a hand-off until the new assignment serves, instead of failing them", async () => {
    const stores = newStores()
    const node = await startMemoryNode(stores, limits, { ownedShards: [0, 1], forward: () => {} })
    const handle = node.processor as PaymentNodeHandle
    await submit(handle, open(a0))
    await submit(handle, deposit(a0, "d1", 700n))
    handle.reassign([0])
    // Asked at once, while shard 0 is being recovered again: answered once it serves.
    expect(await balanceOf(handle, a0)).toBe(700n)
    const moved = await submit(handle, open(c1))
    expect(moved._tag === "Rejection" && moved.code).toBe("UNAVAILABLE")
    await node.stop()
  })

  it("measures each hand-off from the new assignment until it serves", async () => {
    const stores = newStores()
    const node = await startMemoryNode(stores, limits, { ownedShards: [0, 1], forward: () => {} })
    const handle = node.processor as PaymentNodeHandle
    expect(Number.isNaN(handle.metrics().lastHandOffMs)).toBe(true)
    handle.reassign([0])
    await eventually(() => handle.isReady())
    const metrics = handle.metrics()
    expect(metrics.handOffDurations.snapshot().count).toBe(1)
    expect(metrics.lastHandOffMs).toBeGreaterThanOrEqual(0)
    // An unchanged assignment is no hand-off.
    handle.reassign([0])
    expect(handle.metrics().handOffDurations.snapshot().count).toBe(1)
    await node.stop()
  })

  it("recovers an unchanged assignment afresh after its claim lapsed, rather than serve its memory", async () => {
    const stores = newStores()
    const node = await startMemoryNode(stores, limits, { ownedShards: [0, 1], forward: () => {} })
    const handle = node.processor as PaymentNodeHandle
    await submit(handle, open(a0))
    await submit(handle, deposit(a0, "d1", 700n))
    handle.reassign([0, 1], true)
    // Recovered again (a hand-off), from the journal and snapshots: what was acknowledged, and no more.
    expect(await balanceOf(handle, a0)).toBe(700n)
    expect(handle.metrics().handOffDurations.snapshot().count).toBe(1)
    await node.stop()
  })

  it("recovers in one retry when its lease store hands out epochs already claimed (its numbers were lost)", async () => {
    const stores = newStores()
    for (let restart = 0; restart < 5; restart++) await (await startNode(stores)).stop()
    // A lease store that lost its counters, as Redis can in a failover: it starts at 1 again.
    const fresh = makeMemoryShardLeases()
    const acquired = new Map<number, number>()
    const counting = {
      ...fresh,
      acquire: (shard: number, epochFloor?: number) => {
        acquired.set(shard, (acquired.get(shard) ?? 0) + 1)
        return fresh.acquire(shard, epochFloor)
      },
    }
    const node = await startMemoryNode({ ...stores, leases: counting }, limits)
    await eventually(() => node.processor.isReady())
    // Each shard: the repeated epoch was refused once, the next lease was above the claimed one.
    for (let shard = 0; shard < limits.shardCount; shard++) expect(acquired.get(shard)).toBe(2)
    await submit(node.processor, open(a0))
    expect(await balanceOf(node.processor, a0)).toBe(0n)
    await node.stop()
  })
})
