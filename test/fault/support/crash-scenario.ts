/**
 * The crash scenario both modes run: a node under a stream of transfers, deposits and
 * authorizations (then captured in part, voided, or left to lapse, some while the node is down)
 * over WebSocket is killed with SIGKILL at random moments; after each restart the unacknowledged
 * requests are retried with their idempotency keys. At the end every acknowledged request must be
 * present exactly once with the answer it got, every balance must equal its deposits plus credits
 * minus debits (captures included), every account must hold exactly its live authorizations, and
 * the total must equal the deposits.
 */
import { expect } from "vitest"
import { startNodeProcess } from "../../support/node-process.ts"
import { type Answer, WsClient } from "../../support/ws-client.ts"

interface TransferRequest {
  readonly paymentId: string
  readonly from: string
  readonly to: string
  readonly amountMinor: bigint
}
interface AuthorizationRequest extends TransferRequest {
  readonly holdSeconds: number
}
/** What follows an acknowledged authorization: a capture of part of it, or a void. */
interface FollowUp {
  readonly paymentId: string
  readonly from: string
  readonly kind: "capture" | "void"
  readonly captureMinor: bigint
}
interface DepositRequest {
  readonly depositId: string
  readonly accountId: string
  readonly amountMinor: bigint
}

const accountCount = 12
const accounts = Array.from({ length: accountCount }, (_, index) => `acct-${index}`)
const initialMinor = 100_000n
const decimal = (minor: bigint) => `${minor / 100n}.${(minor % 100n).toString().padStart(2, "0")}`
const minorOf = (text: string) => {
  const [units = "0", cents = "00"] = text.split(".")
  return BigInt(units) * 100n + BigInt(cents.padEnd(2, "0"))
}
const pick = <T>(items: ReadonlyArray<T>): T => items[Math.floor(Math.random() * items.length)] as T

export interface CrashScenarioOptions {
  readonly env: Record<string, string>
  readonly apiKey: string
  readonly rounds: number
  readonly streamMsMin: number
  readonly streamMsMax: number
  readonly inFlightMax: number
}

export const runCrashScenario = async (
  options: CrashScenarioOptions,
): Promise<{ acknowledged: number; rounds: number; authorizationsByStatus: Map<string, number> }> => {
  const transfers = new Map<string, TransferRequest>()
  const deposits = new Map<string, DepositRequest>()
  /** Answers received: the status of each acknowledged transfer, and the set of acknowledged deposits. */
  const transferAnswers = new Map<string, string>()
  const depositsAcknowledged = new Set<string>()
  const authorizations = new Map<string, AuthorizationRequest>()
  const authorizationAnswers = new Map<string, string>()
  const followUps = new Map<string, FollowUp>()
  /** The answer of each follow-up: the payment's status, or INVALID_STATE when the hold had lapsed first. */
  const followUpAnswers = new Map<string, string>()
  /** A refund of part of each capture that was acknowledged, and its answer (the refunded amount, or INSUFFICIENT_FUNDS). */
  const refunds = new Map<string, { readonly paymentId: string; readonly from: string; readonly amountMinor: bigint }>()
  const refundAnswers = new Map<string, string>()
  let sequence = 0
  /** Final statuses of the authorizations, so a test can show the run reached each end. */
  const authorizationsByStatus = new Map<string, number>()

  const sendAuthorization = (client: WsClient, request: AuthorizationRequest) =>
    client
      .request("authorize", {
        paymentId: request.paymentId,
        from: request.from,
        to: request.to,
        amount: decimal(request.amountMinor),
        currency: "USD",
        holdSeconds: request.holdSeconds,
      })
      .then((answer) => {
        if (!answer.ok) {
          expect(["UNAVAILABLE", "OVERLOADED"]).toContain(answer.error?.code)
          return
        }
        expect(answer.payment?.authorizedAmount).toBe(decimal(request.amountMinor))
        const status = answer.payment?.status as string
        authorizationAnswers.set(request.paymentId, status)
        if (status === "authorized" && !followUps.has(request.paymentId) && Math.random() < 0.7) {
          const kind = Math.random() < 0.7 ? "capture" : "void"
          const captureMinor = 1n + (request.amountMinor - 1n) / 2n
          followUps.set(request.paymentId, { paymentId: request.paymentId, from: request.from, kind, captureMinor })
        }
      })
  const sendFollowUp = (client: WsClient, request: FollowUp) =>
    client
      .request(request.kind, {
        from: request.from,
        paymentId: request.paymentId,
        ...(request.kind === "capture"
          ? { captureId: `cap-${request.paymentId}`, amount: decimal(request.captureMinor) }
          : {}),
      })
      .then((answer) => {
        if (!answer.ok) {
          // INVALID_STATE: the hold lapsed before the capture or void (a kill may have delayed it).
          expect(["UNAVAILABLE", "OVERLOADED", "INVALID_STATE"]).toContain(answer.error?.code)
          if (answer.error?.code === "INVALID_STATE") followUpAnswers.set(request.paymentId, "INVALID_STATE")
          return
        }
        const status = answer.payment?.status as string
        expect(request.kind === "void" ? ["voided"] : ["settled", "pending"]).toContain(status)
        if (request.kind === "capture") expect(answer.payment?.capturedAmount).toBe(decimal(request.captureMinor))
        followUpAnswers.set(request.paymentId, status)
        if (request.kind === "capture" && !refunds.has(request.paymentId) && Math.random() < 0.5) {
          const amountMinor = 1n + request.captureMinor / 3n
          refunds.set(request.paymentId, { paymentId: request.paymentId, from: request.from, amountMinor })
        }
      })
  const sendRefund = (client: WsClient, request: { paymentId: string; from: string; amountMinor: bigint }) =>
    client
      .request("refund", {
        from: request.from,
        paymentId: request.paymentId,
        refundId: `ref-${request.paymentId}`,
        amount: decimal(request.amountMinor),
      })
      .then((answer) => {
        if (!answer.ok) {
          // INSUFFICIENT_FUNDS: the creditor spent the money meanwhile; nothing moved.
          expect(["UNAVAILABLE", "OVERLOADED", "INSUFFICIENT_FUNDS"]).toContain(answer.error?.code)
          if (answer.error?.code === "INSUFFICIENT_FUNDS") refundAnswers.set(request.paymentId, "INSUFFICIENT_FUNDS")
          return
        }
        expect(answer.payment?.refundedAmount).toBe(decimal(request.amountMinor))
        refundAnswers.set(request.paymentId, decimal(request.amountMinor))
      })

  const sendTransfer = (client: WsClient, request: TransferRequest) =>
    client
      .request("transfer", {
        paymentId: request.paymentId,
        from: request.from,
        to: request.to,
        amount: decimal(request.amountMinor),
        currency: "USD",
      })
      .then((answer) => recordTransfer(request, answer))
  const recordTransfer = (request: TransferRequest, answer: Answer) => {
    if (!answer.ok) {
      // Only the codes that mean "not now" are allowed; they change nothing and are retried later.
      expect(["UNAVAILABLE", "OVERLOADED"]).toContain(answer.error?.code)
      return
    }
    expect(answer.payment?.amount).toBe(decimal(request.amountMinor))
    const status = answer.payment?.status as string
    const earlier = transferAnswers.get(request.paymentId)
    if (earlier === "declined") expect(status).toBe("declined")
    if (earlier === "settled") expect(status).toBe("settled")
    transferAnswers.set(request.paymentId, status)
  }
  const sendDeposit = (client: WsClient, request: DepositRequest) =>
    client
      .request("deposit", {
        depositId: request.depositId,
        accountId: request.accountId,
        amount: decimal(request.amountMinor),
        currency: "USD",
      })
      .then((answer) => {
        if (!answer.ok) {
          expect(["UNAVAILABLE", "OVERLOADED"]).toContain(answer.error?.code)
          return
        }
        depositsAcknowledged.add(request.depositId)
      })
  const ignoreClosed = (promise: Promise<void>) => promise.catch(() => undefined)

  /** Retries until every request sent so far is acknowledged; "not now" answers are retried after a pause. */
  const retryUnacknowledged = async (client: WsClient) => {
    for (let attempt = 0; attempt < 200; attempt++) {
      const work: Array<Promise<void>> = []
      for (const request of transfers.values()) {
        if (!transferAnswers.has(request.paymentId)) work.push(sendTransfer(client, request))
      }
      for (const request of deposits.values()) {
        if (!depositsAcknowledged.has(request.depositId)) work.push(sendDeposit(client, request))
      }
      for (const request of authorizations.values()) {
        if (!authorizationAnswers.has(request.paymentId)) work.push(sendAuthorization(client, request))
      }
      for (const request of followUps.values()) {
        if (!followUpAnswers.has(request.paymentId)) work.push(sendFollowUp(client, request))
      }
      for (const request of refunds.values()) {
        if (!refundAnswers.has(request.paymentId)) work.push(sendRefund(client, request))
      }
      if (work.length === 0) return
      await Promise.all(work)
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    throw new Error("requests still unacknowledged after 200 retries")
  }

  const stream = async (client: WsClient, durationMs: number) => {
    const deadline = Date.now() + durationMs
    const inFlight = new Set<Promise<void>>()
    while (Date.now() < deadline && !client.isClosed) {
      if (inFlight.size >= options.inFlightMax) {
        await Promise.race(inFlight)
        continue
      }
      sequence++
      let work: Promise<void>
      const pendingFollowUp = [...followUps.values()].find((request) => !followUpAnswers.has(request.paymentId))
      const pendingRefund = [...refunds.values()].find((request) => !refundAnswers.has(request.paymentId))
      if (sequence % 10 === 0) {
        const request = { depositId: `dep-${sequence}`, accountId: pick(accounts), amountMinor: 1_000n }
        deposits.set(request.depositId, request)
        work = ignoreClosed(sendDeposit(client, request))
      } else if (sequence % 10 === 5 && pendingFollowUp !== undefined) {
        work = ignoreClosed(sendFollowUp(client, pendingFollowUp))
      } else if (sequence % 10 === 7 && pendingRefund !== undefined) {
        work = ignoreClosed(sendRefund(client, pendingRefund))
      } else if (sequence % 5 === 2) {
        const from = pick(accounts)
        const request = {
          paymentId: `auth-${sequence}`,
          from,
          to: pick(accounts.filter((account) => account !== from)),
          amountMinor: BigInt(1 + Math.floor(Math.random() * 20_000)),
          // Short holds lapse during the run, some while the node is down; long ones outlive it.
          holdSeconds: Math.random() < 0.3 ? 1 : 3_600,
        }
        authorizations.set(request.paymentId, request)
        work = ignoreClosed(sendAuthorization(client, request))
      } else {
        const from = pick(accounts)
        const to = pick(accounts.filter((account) => account !== from))
        const request = {
          paymentId: `pay-${sequence}`,
          from,
          to,
          amountMinor: BigInt(1 + Math.floor(Math.random() * 20_000)),
        }
        transfers.set(request.paymentId, request)
        work = ignoreClosed(sendTransfer(client, request))
      }
      inFlight.add(work)
      void work.finally(() => inFlight.delete(work))
    }
  }

  for (let round = 0; round <= options.rounds; round++) {
    const node = await startNodeProcess(options.env)
    try {
      const client = await WsClient.connect(node.port, options.apiKey)
      if (round === 0) {
        for (const accountId of accounts) {
          const opened = await client.request("openAccount", { accountId, currency: "USD" })
          expect(opened.ok).toBe(true)
          const request = { depositId: `init-${accountId}`, accountId, amountMinor: initialMinor }
          deposits.set(request.depositId, request)
          await sendDeposit(client, request)
        }
      }
      await retryUnacknowledged(client)
      if (round === options.rounds) {
        await verify(client)
        client.close()
        break
      }
      const durationMs = options.streamMsMin + Math.random() * (options.streamMsMax - options.streamMsMin)
      const killAt = setTimeout(() => void node.kill("SIGKILL"), durationMs * (0.3 + Math.random() * 0.7))
      await stream(client, durationMs)
      clearTimeout(killAt)
      await node.kill("SIGKILL")
    } catch (error) {
      await node.kill("SIGKILL")
      throw new Error(`round ${round}: ${String(error)}\n--- node output ---\n${node.output()}`)
    } finally {
      await node.kill("SIGKILL")
    }
  }

  async function verify(client: WsClient) {
    // Every transfer was acknowledged by now (retries); wait for cross-shard ones to settle.
    expect(transferAnswers.size).toBe(transfers.size)
    expect(depositsAcknowledged.size).toBe(deposits.size)
    const finalStatus = new Map<string, string>()
    for (const request of transfers.values()) {
      for (let attempt = 0; ; attempt++) {
        const answer = await client.request("getPayment", { accountId: request.from, paymentId: request.paymentId })
        expect(answer.ok).toBe(true)
        expect(answer.payment?.amount).toBe(decimal(request.amountMinor))
        expect(answer.payment?.to).toBe(request.to)
        const status = answer.payment?.status as string
        if (status !== "pending") {
          finalStatus.set(request.paymentId, status)
          break
        }
        if (attempt > 500) throw new Error(`payment ${request.paymentId} still pending`)
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
      const acknowledged = transferAnswers.get(request.paymentId)
      if (acknowledged !== "pending") expect(finalStatus.get(request.paymentId)).toBe(acknowledged)
    }
    const expected = new Map(accounts.map((accountId) => [accountId, 0n]))
    const heldExpected = new Map(accounts.map((accountId) => [accountId, 0n]))
    expect(authorizationAnswers.size).toBe(authorizations.size)
    for (const request of authorizations.values()) {
      const payment = await settledPayment(client, request.from, request.paymentId)
      const status = payment?.status as string
      expect(["declined", "authorized", "settled", "voided", "expired", "partially_refunded", "refunded"]).toContain(
        status,
      )
      authorizationsByStatus.set(status, (authorizationsByStatus.get(status) ?? 0) + 1)
      const followUp = followUps.get(request.paymentId)
      const answered = followUpAnswers.get(request.paymentId)
      if (answered === "voided") expect(status).toBe("voided")
      if (answered === "settled" || answered === "pending") {
        // A refund of "part" of a one-unit capture is all of it.
        expect(["settled", "partially_refunded", "refunded"]).toContain(status)
        expect(payment?.capturedAmount).toBe(decimal(followUp?.captureMinor as bigint))
      }
      const refunded = refundAnswers.get(request.paymentId)
      // Applied exactly once when acknowledged, never when refused.
      expect(payment?.refundedAmount).toBe(
        refunded === undefined || refunded === "INSUFFICIENT_FUNDS" ? "0.00" : refunded,
      )
      if (authorizationAnswers.get(request.paymentId) === "declined") expect(status).toBe("declined")
      if (status === "authorized")
        heldExpected.set(request.from, (heldExpected.get(request.from) ?? 0n) + request.amountMinor)
      if (status === "settled" || status === "partially_refunded" || status === "refunded") {
        const moved = minorOf(payment?.capturedAmount as string) - minorOf(payment?.refundedAmount as string)
        expected.set(request.from, (expected.get(request.from) ?? 0n) - moved)
        expected.set(request.to, (expected.get(request.to) ?? 0n) + moved)
      }
    }
    for (const request of deposits.values()) {
      expected.set(request.accountId, (expected.get(request.accountId) ?? 0n) + request.amountMinor)
    }
    for (const request of transfers.values()) {
      if (finalStatus.get(request.paymentId) !== "settled") continue
      expected.set(request.from, (expected.get(request.from) ?? 0n) - request.amountMinor)
      expected.set(request.to, (expected.get(request.to) ?? 0n) + request.amountMinor)
    }
    let total = 0n
    for (const accountId of accounts) {
      const answer = await client.request("getAccount", { accountId })
      const balance = minorOf(answer.account?.balance as string)
      expect({ accountId, balance }).toEqual({ accountId, balance: expected.get(accountId) })
      expect({ accountId, held: minorOf(answer.account?.held as string) }).toEqual({
        accountId,
        held: heldExpected.get(accountId),
      })
      expect(balance).toBeGreaterThanOrEqual(0n)
      total += balance
    }
    const deposited = [...deposits.values()].reduce((sum, request) => sum + request.amountMinor, 0n)
    expect(total).toBe(deposited)
    // A retry of any acknowledged request returns its original outcome and changes nothing.
    for (const request of [...transfers.values()].slice(0, 50)) {
      const answer = await client.request("transfer", {
        paymentId: request.paymentId,
        from: request.from,
        to: request.to,
        amount: decimal(request.amountMinor),
        currency: "USD",
      })
      expect(answer.payment?.status).toBe(finalStatus.get(request.paymentId))
    }
  }

  /** The payment once it is no longer pending (a capture's credit may still be on its way). */
  async function settledPayment(client: WsClient, from: string, paymentId: string) {
    for (let attempt = 0; ; attempt++) {
      const answer = await client.request("getPayment", { accountId: from, paymentId })
      expect(answer.ok).toBe(true)
      if (answer.payment?.status !== "pending") return answer.payment
      if (attempt > 500) throw new Error(`payment ${paymentId} still pending`)
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }

  return {
    acknowledged: transferAnswers.size + authorizationAnswers.size,
    rounds: options.rounds,
    authorizationsByStatus,
  }
}
