/**
 * Seeding: opens the workload's accounts and deposits a large balance into each (`seedDepositOf`:
 * a hundred million payments of the workload's amount, so holds never run an account short),
 * pipelined over a few WebSocket connections with a bounded window. Idempotent: an existing account
 * is fine and deposits carry fixed ids, so seeding a node twice with the same amount changes nothing.
 */
import type WebSocket from "ws"
import { openWebSocket } from "./channels.ts"
import type { PaymentTraffic, Target } from "./plan.ts"
import { accountIdOf, readAnswer, seedDepositOf } from "./workload.ts"

const seedConnections = 4
const seedInFlightMax = 512
/** OVERLOADED and UNAVAILABLE are retried after a pause, a bounded number of times. */
const seedRetryDelayMs = 100
const seedRetriesMax = 50

interface SeedConnection {
  readonly socket: WebSocket
  readonly waiting: Map<number, (errorCode: string | undefined) => void>
}

const seedConnectionOf = async (target: Target): Promise<SeedConnection> => {
  const socket = await openWebSocket(target)
  const waiting = new Map<number, (errorCode: string | undefined) => void>()
  socket.on("message", (data: Buffer) => {
    const answer = readAnswer(data.toString())
    if (answer === undefined) return
    const resolve = waiting.get(answer.reqId)
    waiting.delete(answer.reqId)
    resolve?.(answer.errorCode)
  })
  socket.on("close", () => {
    for (const resolve of waiting.values()) resolve("SOCKET_CLOSED")
    waiting.clear()
  })
  socket.on("error", () => {})
  return { socket, waiting }
}

let nextReqId = 0

const ask = (connection: SeedConnection, frame: (reqId: number) => string): Promise<string | undefined> =>
  new Promise((resolve) => {
    const reqId = nextReqId++
    connection.waiting.set(reqId, resolve)
    connection.socket.send(frame(reqId))
  })

/** Sends until the answer is ok (or `acceptable`), retrying only what the contract says to retry. */
const askUntilDone = async (
  connection: SeedConnection,
  frame: (reqId: number) => string,
  acceptable: string | undefined,
): Promise<void> => {
  for (let attempt = 0; ; attempt++) {
    const code = await ask(connection, frame)
    if (code === undefined || code === acceptable) return
    if ((code !== "OVERLOADED" && code !== "UNAVAILABLE") || attempt >= seedRetriesMax) {
      throw new Error(`seeding failed: ${code} (after ${attempt + 1} attempts)`)
    }
    await new Promise((resolve) => setTimeout(resolve, seedRetryDelayMs))
  }
}

const seedAccount = async (connection: SeedConnection, traffic: PaymentTraffic, deposit: string, index: number) => {
  const accountId = accountIdOf(index)
  const currency = traffic.currency
  await askUntilDone(
    connection,
    (reqId) => `{"op":"openAccount","reqId":${reqId},"accountId":"${accountId}","currency":"${currency}"}`,
    "ACCOUNT_EXISTS",
  )
  await askUntilDone(
    connection,
    (reqId) =>
      `{"op":"deposit","reqId":${reqId},"accountId":"${accountId}","depositId":"seed-${index}","amount":"${deposit}","currency":"${currency}"}`,
    undefined,
  )
}

export const seedAccounts = async (
  target: Target,
  workload: PaymentTraffic,
  onProgress?: (line: string) => void,
): Promise<void> => {
  const deposit = seedDepositOf(workload)
  const connections = await Promise.all(Array.from({ length: seedConnections }, () => seedConnectionOf(target)))
  const startedMs = performance.now()
  let nextAccount = 0
  let seeded = 0
  const progress = setInterval(() => {
    const seconds = (performance.now() - startedMs) / 1000
    onProgress?.(
      `seeding ${seeded}/${workload.accounts} accounts, ${Math.round(seeded / seconds)} accounts/s, ${seconds.toFixed(0)} s`,
    )
  }, 1000)
  // Each lane seeds one account at a time, so the lanes bound the requests in flight.
  const lane = async (laneIndex: number) => {
    const connection = connections[laneIndex % seedConnections] as SeedConnection
    for (let index = nextAccount++; index < workload.accounts; index = nextAccount++) {
      await seedAccount(connection, workload, deposit, index)
      seeded++
    }
  }
  try {
    await Promise.all(Array.from({ length: Math.min(seedInFlightMax, workload.accounts) }, (_, index) => lane(index)))
  } finally {
    clearInterval(progress)
    for (const connection of connections) connection.socket.close()
  }
  const seconds = (performance.now() - startedMs) / 1000
  onProgress?.(`seeded ${seeded} accounts in ${seconds.toFixed(1)} s (${Math.round(seeded / seconds)} accounts/s)`)
}
