/**
 * The journal goes away under an aws-mode node: its own Kafka broker is frozen with SIGSTOP (a
 * hung broker is the harder case: nothing fails fast, every request has to time out). Requests must
 * get UNAVAILABLE within the node's timeouts, the node must report not ready, nothing acknowledged
 * may be lost, and service must resume by itself when the broker thaws.
 *
 * The broker is a second one, private to this file, so freezing it does not disturb the other tests
 * that share the local stack's broker.
 */
import { rmSync } from "node:fs"
import { join } from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type KafkaServerOptions, startKafka, stopKafka } from "../../scripts/local-stack/kafka.ts"
import { logsDirectory, stackDirectory } from "../../scripts/local-stack/process-control.ts"
import { stackKafkaOptions, stackUp } from "../../scripts/local-stack/stack.ts"
import { type NodeProcess, startNodeProcess } from "../support/node-process.ts"
import { type Answer, WsClient } from "../support/ws-client.ts"

const run = `outage${Date.now().toString(36)}`
const apiKey = "outage-test-key"
const accounts = ["a", "b", "c", "d", "e", "f"]
const depositMinor = 100_000n

const brokerOptions: KafkaServerOptions = {
  ...stackKafkaOptions(),
  name: "kafka-outage",
  port: 29192,
  controllerPort: 29193,
  heapMaxMb: 512,
  dataDirectory: join(stackDirectory(), "kafka-outage-data"),
  logFile: join(logsDirectory(), "kafka-outage.log"),
}
let brokerPid = 0
let node: NodeProcess | undefined

beforeAll(async () => {
  const shared = await stackUp()
  rmSync(brokerOptions.dataDirectory, { recursive: true, force: true })
  brokerPid = await startKafka(brokerOptions)
  node = await startNodeProcess(
    {
      MODE: "aws",
      TENANTS: `outage:${apiKey}`,
      NODE_ID: `${run}-node`,
      KAFKA_BROKERS: `127.0.0.1:${brokerOptions.port}`,
      KAFKA_TOPIC: `${run}-journal`,
      KAFKA_REQUEST_TIMEOUT_MS: "2000",
      DYNAMODB_ENDPOINT: shared.dynamodbEndpoint,
      DYNAMODB_TABLE_PREFIX: run,
      REDIS_URL: shared.redisUrl,
      REDIS_KEY_PREFIX: run,
      SHARD_COUNT: "4",
      REBUILD_RETRY_DELAY_MS: "500",
    },
    180_000,
  )
}, 300_000)

afterAll(async () => {
  await node?.kill("SIGKILL")
  if (brokerPid > 0) process.kill(brokerPid, "SIGCONT")
  await stopKafka(brokerOptions)
  rmSync(brokerOptions.dataDirectory, { recursive: true, force: true })
})

const amount = (minor: bigint) => `${minor / 100n}.${(minor % 100n).toString().padStart(2, "0")}`
const minorOf = (text: string) => {
  const [units = "0", cents = "00"] = text.split(".")
  return BigInt(units) * 100n + BigInt(cents.padEnd(2, "0"))
}
const sleep = (durationMs: number) => new Promise((resolve) => setTimeout(resolve, durationMs))

const readyStatus = (port: number) =>
  fetch(`http://127.0.0.1:${port}/readyz`).then(
    (response) => response.status,
    () => 0,
  )

const waitForReadiness = async (port: number, status: number, deadlineMs: number) => {
  const deadline = Date.now() + deadlineMs
  while ((await readyStatus(port)) !== status) {
    if (Date.now() > deadline) throw new Error(`/readyz never answered ${status}`)
    await sleep(100)
  }
}

interface Transfer {
  readonly paymentId: string
  readonly from: string
  readonly to: string
  readonly amountMinor: bigint
}

const send = (client: WsClient, transfer: Transfer): Promise<Answer> =>
  client.request("transfer", {
    paymentId: transfer.paymentId,
    from: transfer.from,
    to: transfer.to,
    amount: amount(transfer.amountMinor),
    currency: "EUR",
  })

describe("aws mode with its journal frozen", () => {
  it("answers UNAVAILABLE while the broker hangs, loses nothing acknowledged, and resumes when it returns", async () => {
    const port = (node as NodeProcess).port
    const client = await WsClient.connect(port, apiKey)
    for (const accountId of accounts) {
      expect((await client.request("openAccount", { accountId, currency: "EUR" })).ok).toBe(true)
      const deposited = await client.request("deposit", {
        accountId,
        depositId: `seed-${accountId}`,
        amount: amount(depositMinor),
        currency: "EUR",
      })
      expect(deposited.ok).toBe(true)
    }
    const transfers: Array<Transfer> = Array.from({ length: 120 }, (_, index) => ({
      paymentId: `pay-${index}`,
      from: accounts[index % accounts.length] as string,
      to: accounts[(index + 1 + (index % 3)) % accounts.length] as string,
      amountMinor: BigInt(100 + index),
    }))
    const acknowledged = new Map<string, string>()
    const record = (transfer: Transfer, answer: Answer) => {
      if (answer.ok) acknowledged.set(transfer.paymentId, answer.payment?.status as string)
      else expect(answer.error?.code).toBe("UNAVAILABLE")
    }

    // Before the outage everything is acknowledged.
    for (const transfer of transfers.slice(0, 40)) record(transfer, await send(client, transfer))
    expect(acknowledged.size).toBe(40)

    process.kill(brokerPid, "SIGSTOP")
    try {
      const duringOutage = transfers.slice(40, 80)
      const answers = await Promise.all(duringOutage.map((transfer) => send(client, transfer)))
      for (const [index, transfer] of duringOutage.entries()) record(transfer, answers[index] as Answer)
      expect(answers.filter((answer) => !answer.ok).length).toBeGreaterThan(0)
      await waitForReadiness(port, 503, 30_000)
      const whileDown = await send(client, transfers[80] as Transfer)
      expect(whileDown.error?.code).toBe("UNAVAILABLE")
      const read = await client.request("getAccount", { accountId: "a" })
      expect(read.error?.code).toBe("UNAVAILABLE")
    } finally {
      process.kill(brokerPid, "SIGCONT")
    }

    await waitForReadiness(port, 200, 90_000)
    // Every request not acknowledged yet is retried with its idempotency key until it is.
    for (let attempt = 0; acknowledged.size < transfers.length; attempt++) {
      expect(attempt).toBeLessThan(100)
      for (const transfer of transfers) {
        if (!acknowledged.has(transfer.paymentId)) record(transfer, await send(client, transfer))
      }
      if (acknowledged.size < transfers.length) await sleep(200)
    }

    const balances = new Map(accounts.map((accountId) => [accountId, depositMinor]))
    for (const transfer of transfers) {
      let status = "pending"
      for (let attempt = 0; status === "pending"; attempt++) {
        expect(attempt).toBeLessThan(500)
        const answer = await client.request("getPayment", { accountId: transfer.from, paymentId: transfer.paymentId })
        expect(answer.ok).toBe(true)
        status = answer.payment?.status as string
        if (status === "pending") await sleep(20)
      }
      const first = acknowledged.get(transfer.paymentId)
      if (first !== "pending") expect(status).toBe(first)
      if (status !== "settled") continue
      balances.set(transfer.from, (balances.get(transfer.from) as bigint) - transfer.amountMinor)
      balances.set(transfer.to, (balances.get(transfer.to) as bigint) + transfer.amountMinor)
    }
    let total = 0n
    for (const accountId of accounts) {
      const answer = await client.request("getAccount", { accountId })
      const balance = minorOf(answer.account?.balance as string)
      expect({ accountId, balance }).toEqual({ accountId, balance: balances.get(accountId) })
      total += balance
    }
    expect(total).toBe(depositMinor * BigInt(accounts.length))
    client.close()
  }, 240_000)
})
