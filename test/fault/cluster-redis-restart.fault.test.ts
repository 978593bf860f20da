/**
 * The lease store restarts under a three-node cluster: a private Redis (no persistence) is killed
 * and started empty under a stream of deposits, so every lease is gone; then a node is killed, and
 * its shards' new owner takes leases from the emptied store (the epochs, kept in DynamoDB, go on
 * growing). Every deposit is acknowledged exactly once and every shard serves again.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { redisAnswers } from "../../scripts/local-stack/redis.ts"
import { stackUp } from "../../scripts/local-stack/stack.ts"
import type { NodeProcess } from "../support/node-process.ts"
import {
  agreedMap,
  eventually,
  expectDepositRounds,
  openAccounts,
  startClusterNode,
  streamDeposits,
} from "./support/cluster-nodes.ts"

const run = `redis${Date.now().toString(36)}`
const apiKey = "redis-test-key"
const redisPort = 26479
const accounts = Array.from({ length: 8 }, (_, index) => `acct-${index}`)
let redis: ChildProcess | undefined

/** A Redis of this test's own, as the stack's is: loopback, nothing persisted. */
const startRedis = async (): Promise<ChildProcess> => {
  const child = spawn(
    "redis-server",
    ["--port", String(redisPort), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    {
      stdio: "ignore",
    },
  )
  await eventually(
    async () => ((await redisAnswers(`redis://127.0.0.1:${redisPort}`)) ? true : undefined),
    "redis to answer",
  )
  return child
}

const stopRedis = (child: ChildProcess | undefined) =>
  new Promise<void>((resolve) => {
    if (child === undefined || child.exitCode !== null) return resolve()
    child.once("exit", () => resolve())
    child.kill("SIGKILL")
  })

beforeAll(async () => {
  await stackUp()
  redis = await startRedis()
}, 180_000)

afterAll(async () => {
  await stopRedis(redis)
})

const startNode = (index: number) =>
  startClusterNode(run, String(index), 17480 + index, {
    shardCount: 6,
    tenants: `bank:${apiKey}`,
    env: { REDIS_URL: `redis://127.0.0.1:${redisPort}` },
  })

describe("a lease store restart under three nodes", () => {
  it("loses no deposit and serves every shard again after Redis comes back empty and a node dies", async () => {
    const nodes: Array<NodeProcess> = []
    for (const index of [0, 1, 2]) nodes.push(await startNode(index))
    const ports = () => nodes.map((node) => node.port)
    try {
      await agreedMap(nodes, 3)
      await openAccounts(nodes[0]?.port as number, apiKey, accounts)
      const deposits = streamDeposits(ports, apiKey, accounts)
      await new Promise((resolve) => setTimeout(resolve, 1_000))
      await stopRedis(redis)
      await new Promise((resolve) => setTimeout(resolve, 2_000))
      redis = await startRedis()
      await new Promise((resolve) => setTimeout(resolve, 2_000))
      // A takeover now needs leases from the emptied store.
      const killed = nodes.pop() as NodeProcess
      await killed.kill("SIGKILL")
      await agreedMap(nodes, 2, 60_000)
      await new Promise((resolve) => setTimeout(resolve, 1_000))
      const sent = await deposits.stop()
      expect(sent).toBeGreaterThan(3)
      await expectDepositRounds(nodes[0]?.port as number, apiKey, accounts, sent)
    } finally {
      await Promise.all(nodes.map((node) => node.kill("SIGKILL")))
    }
  }, 300_000)
})
