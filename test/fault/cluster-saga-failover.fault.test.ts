/**
 * Cross-node transfers whose creditor's owner is killed mid-saga: the debtor's node keeps
 * redelivering each credit, the survivor takes the dead node's shards over, and every acknowledged
 * transfer ends settled exactly once (or reversed), with money conserved, within the failover time
 * plus the redelivery interval.
 */
import { beforeAll, describe, expect, it } from "vitest"
import { type AccountId, shardOf, type TenantId } from "../../core/ids.ts"
import { stackUp } from "../../scripts/local-stack/stack.ts"
import { WsClient } from "../support/ws-client.ts"
import { agreedMap, eventually, startClusterNode } from "./support/cluster-nodes.ts"

const run = `saga${Date.now().toString(36)}`
const apiKey = "saga-test-key"
const tenant = "bank"
const shardCount = 4

beforeAll(async () => {
  await stackUp()
}, 180_000)

const startNode = (nodeId: string, peerPort: number) =>
  startClusterNode(run, nodeId, peerPort, {
    shardCount,
    tenants: `${tenant}:${apiKey}`,
    // Redeliveries at most 1 s apart, so a credit reaches its new owner soon after the takeover.
    env: { CREDIT_REDELIVERY_DELAY_MS_MAX: "1000" },
  })

const accountIn = (shards: ReadonlyArray<number>, prefix: string): string => {
  for (let index = 0; ; index++) {
    const candidate = `${prefix}-${index}`
    if (shards.includes(shardOf(tenant as TenantId, candidate as AccountId, shardCount))) return candidate
  }
}

describe("a saga whose creditor's owner dies", () => {
  it("settles every acknowledged cross-node transfer exactly once after the takeover", async () => {
    const a = await startNode("a", 17461)
    const b = await startNode("b", 17462)
    try {
      const map = await agreedMap([a, b], 2)
      const shardsOf = (nodeId: string) => map.nodes.find((node) => node.nodeId === `${run}-${nodeId}`)?.shards ?? []
      const debtor = accountIn(shardsOf("a"), "payer")
      const creditor = accountIn(shardsOf("b"), "payee")
      const client = await WsClient.connect(a.port, apiKey)
      await client.request("openAccount", { accountId: debtor, currency: "EUR" })
      await client.request("openAccount", { accountId: creditor, currency: "EUR" })
      await client.request("deposit", { accountId: debtor, depositId: "d-1", amount: "1000.00", currency: "EUR" })

      // Transfers to a's node; b is killed while their credits are in flight.
      const acknowledged: Array<string> = []
      let answeredPending = 0
      const sends = Array.from({ length: 40 }, async (_, index) => {
        await new Promise((resolve) => setTimeout(resolve, index * 15))
        const paymentId = `t-${index}`
        const answer = await client
          .request("transfer", { paymentId, from: debtor, to: creditor, amount: "1.00", currency: "EUR" })
          .catch(() => undefined)
        if (answer?.ok === true) acknowledged.push(paymentId)
        if (answer?.payment?.status === "pending") answeredPending++
      })
      await new Promise((resolve) => setTimeout(resolve, 200))
      await b.kill("SIGKILL")
      await Promise.all(sends)
      expect(acknowledged.length).toBeGreaterThan(5)
      // The credits of these were on their way to the node that died.
      expect(answeredPending).toBeGreaterThan(0)

      const ended = await eventually(
        async () => {
          const statuses = await Promise.all(
            acknowledged.map(async (paymentId) => {
              const answer = await client.request("getPayment", { accountId: debtor, paymentId })
              return answer.payment?.status
            }),
          )
          return statuses.every((status) => status === "settled" || status === "declined") ? statuses : undefined
        },
        "every acknowledged transfer to settle or reverse",
        60_000,
      )
      const settled = ended.filter((status) => status === "settled").length
      const payer = (await client.request("getAccount", { accountId: debtor })).account
      const payee = (await client.request("getAccount", { accountId: creditor })).account
      // Each settled transfer moved 1.00 once; the reversed ones gave it back; nothing else moved.
      expect(payee?.balance).toBe(`${settled}.00`)
      expect(payer?.balance).toBe(`${1000 - settled}.00`)
    } finally {
      await Promise.all([a.kill("SIGKILL"), b.kill("SIGKILL")])
    }
  }, 240_000)
})
