/**
 * The Kafka broker (journal and group coordinator at once) restarts under a three-node cluster and a
 * stream of deposits: a private broker is stopped and started again on its data. The nodes answer
 * UNAVAILABLE meanwhile (their journal and their group sessions are gone), rejoin, recover and serve
 * every shard again, and every deposit is acknowledged exactly once. The client library stops
 * heartbeating after a heartbeat the unreachable coordinator never answered; without the
 * membership's own rejoin the nodes stayed out of the group, their claims lapsed, for good.
 */
import { rmSync } from "node:fs"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type KafkaServerOptions, startKafka, stopKafka } from "../../scripts/local-stack/kafka.ts"
import { logsDirectory, stackDirectory } from "../../scripts/local-stack/process-control.ts"
import { stackKafkaOptions, stackUp } from "../../scripts/local-stack/stack.ts"
import type { NodeProcess } from "../support/node-process.ts"
import {
  agreedMap,
  eventually,
  expectDepositRounds,
  openAccounts,
  startClusterNode,
  streamDeposits,
} from "./support/cluster-nodes.ts"

const run = `broker${Date.now().toString(36)}`
const apiKey = "broker-test-key"
const accounts = Array.from({ length: 8 }, (_, index) => `acct-${index}`)

const brokerOptions: KafkaServerOptions = {
  ...stackKafkaOptions(),
  name: "kafka-cluster-restart",
  port: 29292,
  controllerPort: 29293,
  heapMaxMb: 512,
  dataDirectory: join(stackDirectory(), "kafka-cluster-restart-data"),
  logFile: join(logsDirectory(), "kafka-cluster-restart.log"),
}

beforeAll(async () => {
  await stackUp()
  rmSync(brokerOptions.dataDirectory, { recursive: true, force: true })
  await startKafka(brokerOptions)
}, 300_000)

afterAll(async () => {
  await stopKafka(brokerOptions)
  rmSync(brokerOptions.dataDirectory, { recursive: true, force: true })
})

const startNode = (index: number) =>
  startClusterNode(run, String(index), 17490 + index, {
    shardCount: 6,
    tenants: `bank:${apiKey}`,
    env: {
      KAFKA_BROKERS: `127.0.0.1:${brokerOptions.port}`,
      KAFKA_REQUEST_TIMEOUT_MS: "2000",
      REBUILD_RETRY_DELAY_MS: "500",
    },
  })

describe("a broker restart under three nodes", () => {
  it("loses and doubles no deposit, and every shard serves again", async () => {
    const nodes: Array<NodeProcess> = []
    for (const index of [0, 1, 2]) nodes.push(await startNode(index))
    const ports = () => nodes.map((node) => node.port)
    try {
      await agreedMap(nodes, 3)
      await openAccounts(nodes[0]?.port as number, apiKey, accounts)
      const deposits = streamDeposits(ports, apiKey, accounts)
      await new Promise((resolve) => setTimeout(resolve, 1_000))
      await stopKafka(brokerOptions)
      // Longer than a session: every node's claim lapses and the coordinator expires every member.
      await new Promise((resolve) => setTimeout(resolve, 8_000))
      await startKafka(brokerOptions)
      await agreedMap(nodes, 3, 120_000)
      // Every shard serves again: rounds of deposits to all eight accounts complete after the rejoin.
      const before = deposits.rounds()
      await eventually(
        async () => (deposits.rounds() >= before + 3 ? true : undefined),
        "three rounds of deposits after the rejoin",
        120_000,
      )
      const sent = await deposits.stop()
      expect(sent).toBeGreaterThan(2)
      await expectDepositRounds(nodes[2]?.port as number, apiKey, accounts, sent)
    } finally {
      await Promise.all(nodes.map((node) => node.kill("SIGKILL")))
    }
  }, 400_000)
})
