/**
 * The cross-node transfer saga, end to end in the real runtime, under a seeded deterministic
 * simulation: two nodes split four shards, deliveries between them are dropped, duplicated and
 * delayed (so reordered), and nodes crash and restart between any two steps. After the network
 * heals, every acknowledged payment must have ended (settled or declined), no credit may have been
 * applied twice, money is conserved, and every balance is exactly its deposits plus the settled
 * credits minus the settled debits.
 */
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { defaultRuntimeLimits, type RuntimeLimits } from "../../actors/limits.ts"
import type { Command } from "../../core/commands.ts"
import type { AccountId, DepositId, PaymentId } from "../../core/ids.ts"
import type { Payment } from "../../core/ledger.ts"
import type { Currency } from "../../core/money.ts"
import { memoryRecords } from "../../persistence/memory/journal-memory.ts"
import { accountInShard, tenant } from "../support/commands.ts"
import { reliableNetwork, Simulation } from "../support/simulation.ts"

const shardCount = 4
const limits: RuntimeLimits = {
  ...defaultRuntimeLimits,
  shardCount,
  rebuildRetryDelayMs: 5,
  snapshotIntervalMs: 200,
  recentEntriesMax: 8,
  policy: { ...defaultRuntimeLimits.policy, creditRedeliveryDelayMs: 20, creditRedeliveryDelayMsMax: 200 },
}
const usd = "USD" as Currency
const funding = 1_000n

/** Three accounts on node 0's shards (0, 1), three on node 1's (2, 3), and an id on shard 2 that never opens. */
const accounts = [0, 1, 0, 2, 3, 2].map((shard, index) => accountInShard(shard, shardCount, `sim${index}`))
const ghost = accountInShard(2, shardCount, "ghost")

type Step =
  | { readonly _tag: "Transfer"; readonly from: number; readonly to: number; readonly amount: number }
  | { readonly _tag: "Retry"; readonly pick: number }
  | { readonly _tag: "Crash"; readonly node: number; readonly downMs: number }
  | { readonly _tag: "Advance"; readonly ms: number }

const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      _tag: fc.constant("Transfer" as const),
      from: fc.nat({ max: accounts.length - 1 }),
      to: fc.nat({ max: accounts.length }),
      amount: fc.integer({ min: 1, max: 400 }),
    }),
  },
  { weight: 2, arbitrary: fc.record({ _tag: fc.constant("Retry" as const), pick: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({
      _tag: fc.constant("Crash" as const),
      node: fc.nat({ max: 1 }),
      downMs: fc.integer({ min: 0, max: 300 }),
    }),
  },
  { weight: 3, arbitrary: fc.record({ _tag: fc.constant("Advance" as const), ms: fc.integer({ min: 0, max: 150 }) }) },
)

const faults = fc.record({
  dropRate: fc.double({ min: 0, max: 0.5, noNaN: true }),
  duplicateRate: fc.double({ min: 0, max: 0.5, noNaN: true }),
  delayMsMax: fc.integer({ min: 1, max: 100 }),
})

const meta = (sim: Simulation) => ({ tenantId: tenant, correlationId: "sim", timestampMs: sim.clock.nowMs() })

const transferCommand = (
  sim: Simulation,
  paymentId: string,
  from: string,
  to: string,
  amountMinor: bigint,
): Command => ({
  _tag: "Transfer",
  ...meta(sim),
  paymentId: paymentId as PaymentId,
  from: from as AccountId,
  to: to as AccountId,
  amountMinor,
  currency: usd,
  creditorLocal: false,
})

const setUp = async (sim: Simulation) => {
  await sim.start(0)
  await sim.start(1)
  for (const [index, accountId] of accounts.entries()) {
    sim.submit({ _tag: "OpenAccount", ...meta(sim), accountId: accountId as AccountId, currency: usd, floorMinor: 0n })
    sim.submit({
      _tag: "Deposit",
      ...meta(sim),
      accountId: accountId as AccountId,
      depositId: `fund-${index}` as DepositId,
      amountMinor: funding,
      currency: usd,
    })
  }
}

/** The final state as every node reads it, after the network healed and time passed. */
const finalPayments = async (sim: Simulation, acknowledged: ReadonlyMap<string, Payment>) => {
  const found = new Map<string, Payment>()
  for (const [paymentId, original] of acknowledged) {
    const command = transferCommand(sim, paymentId, original.from, original.to, original.amountMinor)
    const outcome = sim.submit(command)
    if (outcome?._tag !== "Payment") throw new Error(`payment ${paymentId} is gone: ${JSON.stringify(outcome)}`)
    found.set(paymentId, outcome.payment)
  }
  return found
}

const balanceOf = (sim: Simulation, accountId: string): bigint => {
  const owner = accountId === accounts[0] || accountId === accounts[1] || accountId === accounts[2] ? 0 : 1
  let balance: bigint | undefined
  sim.handle(owner).getAccount(tenant, accountId as AccountId, (outcome) => {
    if (outcome._tag === "Account") balance = outcome.account.balanceMinor
  })
  sim.clock.runDeferred()
  if (balance === undefined) throw new Error(`no balance for ${accountId}`)
  return balance
}

const runScenario = async (seed: number, networkFaults: typeof reliableNetwork, steps: ReadonlyArray<Step>) => {
  const sim = new Simulation(
    limits,
    [
      [0, 1],
      [2, 3],
    ],
    seed,
    networkFaults,
  )
  await setUp(sim)
  const acknowledged = new Map<string, Payment>()
  let counter = 0
  for (const next of steps) {
    if (next._tag === "Transfer") {
      const to = next.to === accounts.length ? ghost : (accounts[next.to] as string)
      const paymentId = `pay-${counter++}`
      const outcome = sim.submit(
        transferCommand(sim, paymentId, accounts[next.from] as string, to, BigInt(next.amount)),
      )
      if (outcome?._tag === "Payment") acknowledged.set(paymentId, outcome.payment)
    } else if (next._tag === "Retry" && acknowledged.size > 0) {
      const [paymentId, original] = [...acknowledged.entries()][next.pick % acknowledged.size] as [string, Payment]
      const outcome = sim.submit(transferCommand(sim, paymentId, original.from, original.to, original.amountMinor))
      if (outcome !== undefined && outcome._tag !== "Rejection")
        expect(outcome._tag === "Payment" && outcome.payment.paymentId).toBe(paymentId)
      if (outcome?._tag === "Rejection") expect(["UNAVAILABLE", "OVERLOADED"]).toContain(outcome.code)
    } else if (next._tag === "Crash") {
      await sim.crash(next.node)
      sim.advance(next.downMs)
      await sim.start(next.node)
    } else if (next._tag === "Advance") {
      sim.advance(next.ms)
    }
  }
  sim.faults = reliableNetwork
  sim.advance(60_000)
  return { sim, acknowledged }
}

const checkOutcome = async (sim: Simulation, acknowledged: ReadonlyMap<string, Payment>) => {
  const final = await finalPayments(sim, acknowledged)
  for (const payment of final.values()) expect(["settled", "declined"]).toContain(payment.status)
  // Each delivered credit is applied at most once.
  const credits = new Map<string, number>()
  for (const shard of [2, 3, 0, 1]) {
    for (const record of memoryRecords(sim.journal, shard)) {
      for (const event of record.events) {
        if (event._tag !== "TransferCredited") continue
        const key = `${event.from}/${event.paymentId}`
        credits.set(key, (credits.get(key) ?? 0) + 1)
      }
    }
  }
  for (const count of credits.values()) expect(count).toBe(1)
  const expected = new Map(accounts.map((accountId) => [accountId, funding]))
  for (const payment of final.values()) {
    if (payment.status !== "settled") continue
    expected.set(payment.from, (expected.get(payment.from) ?? 0n) - payment.amountMinor)
    expected.set(payment.to, (expected.get(payment.to) ?? 0n) + payment.amountMinor)
  }
  let total = 0n
  for (const accountId of accounts) {
    const balance = balanceOf(sim, accountId)
    expect(balance).toBe(expected.get(accountId))
    total += balance
  }
  expect(total).toBe(funding * BigInt(accounts.length))
  for (const payment of final.values()) if (payment.to === ghost) expect(payment.status).toBe("declined")
}

describe("cross-node transfer saga under a faulty network and crashes", () => {
  it("ends every acknowledged payment, applies each credit once and conserves money", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer(),
        faults,
        fc.array(step, { minLength: 5, maxLength: 40 }),
        async (seed, networkFaults, steps) => {
          const { sim, acknowledged } = await runScenario(seed, networkFaults, steps)
          try {
            await checkOutcome(sim, acknowledged)
          } finally {
            await sim.stopAll()
          }
        },
      ),
      { numRuns: 150 },
    )
  }, 120_000)

  it("reverses a payment whose creditor does not exist, returning the funds", async () => {
    const { sim, acknowledged } = await runScenario(7, reliableNetwork, [
      { _tag: "Transfer", from: 0, to: accounts.length, amount: 250 },
    ])
    const final = await finalPayments(sim, acknowledged)
    const payment = [...final.values()][0]
    expect(payment?.status).toBe("declined")
    expect(payment?.reason).toBe("UNKNOWN_ACCOUNT")
    expect(balanceOf(sim, accounts[0] as string)).toBe(funding)
    await sim.stopAll()
  })

  it("keeps a payment pending while the creditor's node is down and settles it once it is back", async () => {
    const sim = new Simulation(
      limits,
      [
        [0, 1],
        [2, 3],
      ],
      11,
      reliableNetwork,
    )
    await setUp(sim)
    await sim.crash(1)
    const outcome = sim.submit(transferCommand(sim, "pay-down", accounts[0] as string, accounts[3] as string, 100n))
    expect(outcome?._tag === "Payment" && outcome.payment.status).toBe("pending")
    sim.advance(5_000)
    expect(sim.handle(0).metrics().paymentsPending).toBe(1)
    await sim.start(1)
    sim.advance(1_000)
    expect(sim.handle(0).metrics().paymentsPending).toBe(0)
    expect(balanceOf(sim, accounts[3] as string)).toBe(funding + 100n)
    expect(balanceOf(sim, accounts[0] as string)).toBe(funding - 100n)
    await sim.stopAll()
  })
})
