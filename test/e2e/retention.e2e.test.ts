/**
 * Bounded memory over the wire, on a real node process (embedded mode, LMDB): with a small
 * RECENT_ENTRIES_MAX the node keeps few payments in memory, yet `getPayment` and idempotent retries
 * of every old payment answer exactly as they first did, and so they do after the process is
 * killed and restarted, read back from the snapshot segments on disk.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { type NodeProcess, startNodeProcess } from "../support/node-process.ts"
import { type Answer, WsClient } from "../support/ws-client.ts"

const dataDir = mkdtempSync(join(tmpdir(), "payments-retention-"))
afterAll(() => rmSync(dataDir, { recursive: true, force: true }))

const recentEntriesMax = 20
const environment = {
  DATA_DIR: dataDir,
  RECENT_ENTRIES_MAX: String(recentEntriesMax),
  SNAPSHOT_INTERVAL_MS: "100",
  SNAPSHOT_EVERY_EVENTS: "50",
}

const gauge = async (node: NodeProcess, name: string): Promise<number> => {
  const text = await (await fetch(`http://127.0.0.1:${node.port}/metrics`)).text()
  const line = text.split("\n").find((candidate) => candidate.startsWith(`${name} `))
  if (line === undefined) throw new Error(`no metric ${name}`)
  return Number(line.split(" ")[1])
}

const waitForSnapshots = async (node: NodeProcess): Promise<void> => {
  const deadline = Date.now() + 20_000
  while ((await gauge(node, "payments_snapshot_unsaved_entities")) > 0) {
    if (Date.now() > deadline) throw new Error("snapshots did not catch up")
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

const payments = 400

const transferFields = (index: number) => ({
  paymentId: `pay-${index}`,
  from: "alice",
  to: "bob",
  amount: `0.${String((index % 99) + 1).padStart(2, "0")}`,
  currency: "EUR",
})

/** Every payment reads back as first answered, and retries return it without moving money. */
const expectExact = async (client: WsClient, originals: ReadonlyArray<Answer>) => {
  const before = (await client.request("getAccount", { accountId: "alice" })).account?.balance
  const reads = await Promise.all(
    originals.map((_, index) => client.request("getPayment", { accountId: "alice", paymentId: `pay-${index}` })),
  )
  reads.forEach((read, index) => {
    expect(read.payment).toEqual(originals[index]?.payment)
  })
  for (const index of [0, 1, 150, payments - 1]) {
    const retried = await client.request("transfer", transferFields(index))
    expect(retried.payment).toEqual(originals[index]?.payment)
    const conflicting = await client.request("transfer", { ...transferFields(index), amount: "9.99" })
    expect(conflicting.error?.code).toBe("IDEMPOTENCY_CONFLICT")
  }
  const redeposit = await client.request("deposit", {
    accountId: "alice",
    depositId: "dep-2",
    amount: "100.00",
    currency: "EUR",
  })
  expect(redeposit.account?.balance).toBe(before)
  expect((await client.request("getAccount", { accountId: "alice" })).account?.balance).toBe(before)
}

describe("retention window with a bounded recent set", () => {
  it("answers old payments and retries exactly from disk, before and after a kill and restart", async () => {
    const first = await startNodeProcess(environment)
    const client = await WsClient.connect(first.port, "demo-key")
    await client.request("openAccount", { accountId: "alice", currency: "EUR" })
    await client.request("openAccount", { accountId: "bob", currency: "EUR" })
    for (let index = 0; index < 5; index++) {
      await client.request("deposit", {
        accountId: "alice",
        depositId: `dep-${index}`,
        amount: "100.00",
        currency: "EUR",
      })
    }
    const originals = await Promise.all(
      Array.from({ length: payments }, (_, index) => client.request("transfer", transferFields(index))),
    )
    for (const answer of originals) expect(answer.payment?.status).toBe("settled")
    await waitForSnapshots(first)
    // Two accounts on (at most) two shards: each keeps its recent set and what its last save holds.
    expect(await gauge(first, "payments_entries_in_memory")).toBeLessThanOrEqual(2 * recentEntriesMax + 50)
    expect(await gauge(first, "payments_idempotency_keys_indexed")).toBeGreaterThanOrEqual(payments)
    await expectExact(client, originals)
    expect(await gauge(first, "payments_entry_lookups_total")).toBeGreaterThan(0)
    client.close()
    await first.kill("SIGKILL")

    const second = await startNodeProcess(environment)
    const again = await WsClient.connect(second.port, "demo-key")
    expect(await gauge(second, "payments_entries_in_memory")).toBeLessThanOrEqual(2 * recentEntriesMax + 50)
    await expectExact(again, originals)
    again.close()
    await second.kill("SIGTERM")
  }, 120_000)
})
