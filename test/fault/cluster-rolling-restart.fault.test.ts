/**
 * A rolling restart of a three-node cluster on the real local stack, as Kubernetes does one pod at
 * a time: each node gets SIGTERM under a stream of deposits sent to every node, drains and exits 0
 * within 30 s, and comes back with the same NODE_ID. Clients retry what was not answered (or was
 * answered UNAVAILABLE or OVERLOADED) with the same idempotency key, as the contract says; at the
 * end every account holds exactly the deposits that were acknowledged, each once.
 */
import { beforeAll, describe, expect, it } from "vitest"
import { stackUp } from "../../scripts/local-stack/stack.ts"
import type { NodeProcess } from "../support/node-process.ts"
import { WsClient } from "../support/ws-client.ts"
import { startClusterNode, streamDeposits } from "./support/cluster-nodes.ts"

const run = `rolling${Date.now().toString(36)}`
const apiKey = "rolling-test-key"
const accounts = Array.from({ length: 12 }, (_, index) => `acct-${index}`)

beforeAll(async () => {
  await stackUp()
}, 180_000)

const startNode = (index: number) =>
  startClusterNode(run, String(index), 17420 + index, { shardCount: 6, tenants: `bank:${apiKey}` })

describe("a rolling restart of three nodes", () => {
  it("drains each node in turn with SIGTERM, loses and doubles no acknowledged deposit", async () => {
    const nodes: Array<NodeProcess> = []
    for (const index of [0, 1, 2]) nodes.push(await startNode(index))
    const ports = () => nodes.map((node) => node.port)
    try {
      for (const accountId of accounts) {
        for (;;) {
          const client = await WsClient.connect(nodes[0]?.port as number, apiKey)
          const opened = await client.request("openAccount", { accountId, currency: "EUR" })
          client.close()
          if (opened.ok || opened.error?.code === "ACCOUNT_EXISTS") break
          await new Promise((resolve) => setTimeout(resolve, 100))
        }
      }
      const deposits = streamDeposits(ports, apiKey, accounts)
      for (const index of [0, 1, 2]) {
        await new Promise((resolve) => setTimeout(resolve, 1_500))
        const node = nodes[index] as NodeProcess
        const stoppedAt = Date.now()
        await node.kill("SIGTERM")
        expect(node.child.exitCode).toBe(0)
        expect(Date.now() - stoppedAt).toBeLessThan(30_000)
        nodes[index] = await startNode(index)
      }
      const sent = await deposits.stop()
      expect(sent).toBeGreaterThan(3)
      const client = await WsClient.connect(nodes[1]?.port as number, apiKey)
      for (const accountId of accounts) {
        const answer = await client.request("getAccount", { accountId })
        expect(answer.account?.balance).toBe(`${sent}.00`)
      }
    } finally {
      await Promise.all(nodes.map((node) => node.kill("SIGKILL")))
    }
  }, 300_000)
})
