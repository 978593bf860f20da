/**
 * The wire contract over real sockets, WebSocket and HTTP, against a real node on the memory
 * adapters: every operation with its exact answer shape, pipelining, idempotent retries, declines,
 * tenant isolation, authentication and the health probes.
 */
import { Effect, Exit } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import WebSocket from "ws"
import { serverResource } from "../../transport/server.ts"
import { eventually } from "../support/commands.ts"
import {
  accountInShard,
  defaultEdge,
  httpRequest,
  startTransportHarness,
  type TransportHarness,
  tenantOne,
  tenantTwo,
} from "../support/transport-harness.ts"
import { WsClient } from "../support/ws-client.ts"

const isoTimestamp = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/

let harness: TransportHarness
let client: WsClient

beforeAll(async () => {
  harness = await startTransportHarness()
  client = await WsClient.connect(harness.port, tenantOne.apiKey)
})

afterAll(async () => {
  client.close()
  await harness.close()
})

const balanceOf = async (accountId: string): Promise<string | undefined> =>
  (await client.request("getAccount", { accountId })).account?.balance

describe("WebSocket operations", () => {
  const debtor = accountInShard(tenantOne, 0, "ws-debtor")
  const sameShard = accountInShard(tenantOne, 0, "ws-local")
  const otherShard = accountInShard(tenantOne, 1, "ws-remote")

  it("opens accounts and deposits, answering with the account", async () => {
    expect(await client.request("openAccount", { accountId: debtor, currency: "USD" })).toEqual({
      reqId: expect.any(String),
      ok: true,
      account: {
        accountId: debtor,
        currency: "USD",
        balance: "0.00",
        held: "0.00",
        available: "0.00",
        floor: "0.00",
        status: "open",
      },
    })
    const overdraft = await client.request("openAccount", { accountId: sameShard, currency: "USD", floor: "-10.5" })
    expect(overdraft.account?.floor).toBe("-10.50")
    await client.request("openAccount", { accountId: otherShard, currency: "USD" })
    const deposit = await client.request("deposit", {
      accountId: debtor,
      depositId: "d1",
      amount: "100",
      currency: "USD",
    })
    expect(deposit).toEqual({
      reqId: expect.any(String),
      ok: true,
      account: {
        accountId: debtor,
        currency: "USD",
        balance: "100.00",
        held: "0.00",
        available: "100.00",
        floor: "0.00",
        status: "open",
      },
    })
  })

  it("settles a same-shard transfer and a cross-shard one at once (this node holds both shards)", async () => {
    const local = await client.request("transfer", {
      paymentId: "p-local",
      from: debtor,
      to: sameShard,
      amount: "12.34",
      currency: "USD",
    })
    expect(local).toEqual({
      reqId: expect.any(String),
      ok: true,
      payment: {
        paymentId: "p-local",
        from: debtor,
        to: sameShard,
        amount: "12.34",
        currency: "USD",
        status: "settled",
        createdAt: expect.stringMatching(isoTimestamp),
        authorizedAmount: "12.34",
        capturedAmount: "12.34",
        refundedAmount: "0.00",
      },
    })
    const remote = await client.request("transfer", {
      paymentId: "p-remote",
      from: debtor,
      to: otherShard,
      amount: "0.66",
      currency: "USD",
    })
    expect(remote.payment?.status).toBe("settled")
    expect(await balanceOf(debtor)).toBe("87.00")
    expect(await balanceOf(sameShard)).toBe("12.34")
    expect(await balanceOf(otherShard)).toBe("0.66")
  })

  it("reads a payment by its debtor and answers unknown ones", async () => {
    const read = await client.request("getPayment", { accountId: debtor, paymentId: "p-local" })
    expect(read.payment).toMatchObject({ paymentId: "p-local", amount: "12.34", status: "settled" })
    const unknown = await client.request("getPayment", { accountId: debtor, paymentId: "nope" })
    expect(unknown).toMatchObject({ ok: false, error: { code: "UNKNOWN_PAYMENT" } })
    const wrongDebtor = await client.request("getPayment", { accountId: sameShard, paymentId: "p-local" })
    expect(wrongDebtor.error?.code).toBe("UNKNOWN_PAYMENT")
    expect((await client.request("getAccount", { accountId: "nobody" })).error?.code).toBe("UNKNOWN_ACCOUNT")
  })

  it("returns the original outcome for a retry with the same key and refuses other fields", async () => {
    const first = await client.request("deposit", {
      accountId: sameShard,
      depositId: "dup",
      amount: "1",
      currency: "USD",
    })
    const retry = await client.request("deposit", {
      accountId: sameShard,
      depositId: "dup",
      amount: "1",
      currency: "USD",
    })
    expect(retry.account?.balance).toBe(first.account?.balance)
    const conflict = await client.request("deposit", {
      accountId: sameShard,
      depositId: "dup",
      amount: "2",
      currency: "USD",
    })
    expect(conflict).toMatchObject({ ok: false, error: { code: "IDEMPOTENCY_CONFLICT" } })
    const transfer = { paymentId: "p-retry", from: sameShard, to: debtor, amount: "0.34", currency: "USD" }
    const paid = await client.request("transfer", transfer)
    const again = await client.request("transfer", transfer)
    expect(again.payment).toEqual(paid.payment)
    const changed = await client.request("transfer", { ...transfer, amount: "0.35" })
    expect(changed.error?.code).toBe("IDEMPOTENCY_CONFLICT")
    expect(await balanceOf(sameShard)).toBe("13.00")
  })

  it("records a transfer beyond the floor as a declined payment, and a retry returns the same decline", async () => {
    const transfer = { paymentId: "p-too-much", from: debtor, to: sameShard, amount: "1000", currency: "USD" }
    const declined = await client.request("transfer", transfer)
    expect(declined).toEqual({
      reqId: expect.any(String),
      ok: true,
      payment: {
        paymentId: "p-too-much",
        from: debtor,
        to: sameShard,
        amount: "1000.00",
        currency: "USD",
        status: "declined",
        reason: "INSUFFICIENT_FUNDS",
        createdAt: expect.stringMatching(isoTimestamp),
        authorizedAmount: "1000.00",
        capturedAmount: "0.00",
        refundedAmount: "0.00",
      },
    })
    expect((await client.request("transfer", transfer)).payment).toEqual(declined.payment)
    expect(await balanceOf(debtor)).toBe("87.34")
  })

  it("answers business rejections that never became payments with ok false", async () => {
    const exists = await client.request("openAccount", { accountId: debtor, currency: "USD" })
    expect(exists.error?.code).toBe("ACCOUNT_EXISTS")
    const mismatch = await client.request("deposit", {
      accountId: debtor,
      depositId: "eur",
      amount: "1",
      currency: "EUR",
    })
    expect(mismatch.error?.code).toBe("CURRENCY_MISMATCH")
    const toNobody = await client.request("transfer", {
      paymentId: "p-nobody",
      from: debtor,
      to: "nobody",
      amount: "1",
      currency: "USD",
    })
    expect(toNobody.error?.code).toBe("UNKNOWN_ACCOUNT")
    expect((await client.request("getPayment", { accountId: debtor, paymentId: "p-nobody" })).error?.code).toBe(
      "UNKNOWN_PAYMENT",
    )
  })

  it("answers many pipelined requests on one socket, each matched by its reqId", async () => {
    const payer = accountInShard(tenantOne, 2, "pipe-payer")
    const payee = accountInShard(tenantOne, 3, "pipe-payee")
    await client.request("openAccount", { accountId: payer, currency: "EUR" })
    await client.request("openAccount", { accountId: payee, currency: "EUR" })
    await client.request("deposit", { accountId: payer, depositId: "seed", amount: "500", currency: "EUR" })
    const answers = await Promise.all(
      Array.from({ length: 300 }, (_, index) =>
        client.request("transfer", {
          paymentId: `pipe-${index}`,
          from: payer,
          to: payee,
          amount: "1",
          currency: "EUR",
        }),
      ),
    )
    answers.forEach((answer, index) => {
      expect(answer.ok).toBe(true)
      expect(answer.payment?.paymentId).toBe(`pipe-${index}`)
    })
    const paid = answers.filter((answer) => answer.payment?.status !== "declined").length
    expect(paid).toBe(300)
    expect(await balanceOf(payer)).toBe("200.00")
  })

  it("continues a traceparent into the journal as the correlation id", async () => {
    const traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    await client.request("openAccount", { accountId: "traced", currency: "GBP", traceparent })
    const journal = JSON.stringify([...harness.journal.logs.values()], (_key, value) =>
      typeof value === "bigint" ? value.toString() : value,
    )
    expect(journal).toContain(traceparent)
  })
})

describe("HTTP operations", () => {
  const owner = accountInShard(tenantOne, 0, "http-owner")
  const payee = accountInShard(tenantOne, 1, "http-payee")

  it("opens, deposits with an Idempotency-Key, transfers and reads back, with exact bodies", async () => {
    const opened = await httpRequest(harness.port, "POST", "/v1/accounts", {
      body: { accountId: owner, currency: "JPY" },
    })
    expect(opened).toEqual({
      status: 200,
      body: {
        account: {
          accountId: owner,
          currency: "JPY",
          balance: "0",
          held: "0",
          available: "0",
          floor: "0",
          status: "open",
        },
      },
    })
    await httpRequest(harness.port, "POST", "/v1/accounts", { body: { accountId: payee, currency: "JPY" } })
    const deposit = () =>
      httpRequest(harness.port, "POST", `/v1/accounts/${owner}/deposits`, {
        body: { amount: "1000", currency: "JPY" },
        headers: { "idempotency-key": "http-d1" },
      })
    expect((await deposit()).body.account.balance).toBe("1000")
    const retried = await deposit()
    expect({ status: retried.status, balance: retried.body.account.balance }).toEqual({ status: 200, balance: "1000" })
    const pay = () =>
      httpRequest(harness.port, "POST", "/v1/payments", {
        body: { from: owner, to: payee, amount: "250", currency: "JPY" },
        headers: { "idempotency-key": "http-p1" },
      })
    const paid = await pay()
    expect(paid.status).toBe(200)
    expect(paid.body.payment).toMatchObject({ paymentId: "http-p1", from: owner, to: payee, amount: "250" })
    // The retry is the same payment; its status may have moved on from pending to settled meanwhile.
    const { status: _status, ...same } = paid.body.payment
    expect((await pay()).body.payment).toMatchObject(same)
    await eventually(async () => {
      const read = await httpRequest(harness.port, "GET", `/v1/accounts/${owner}/payments/http-p1`)
      return read.status === 200 && read.body.payment.status === "settled"
    })
    expect((await httpRequest(harness.port, "GET", `/v1/accounts/${owner}`)).body.account.balance).toBe("750")
    expect((await httpRequest(harness.port, "GET", `/v1/accounts/${payee}`)).body.account.balance).toBe("250")
  })

  it("prefers the body's id over the Idempotency-Key header", async () => {
    const answer = await httpRequest(harness.port, "POST", "/v1/payments", {
      body: { paymentId: "from-body", from: owner, to: payee, amount: "1", currency: "JPY" },
      headers: { "idempotency-key": "from-header" },
    })
    expect(answer.body.payment.paymentId).toBe("from-body")
    const header = await httpRequest(harness.port, "GET", `/v1/accounts/${owner}/payments/from-header`)
    expect(header.status).toBe(404)
  })

  it("records a declined payment with 200 and answers errors with the contract's statuses", async () => {
    const declined = await httpRequest(harness.port, "POST", "/v1/payments", {
      body: { paymentId: "http-decline", from: payee, to: owner, amount: "100000", currency: "JPY" },
    })
    expect(declined.status).toBe(200)
    expect(declined.body.payment).toMatchObject({ status: "declined", reason: "INSUFFICIENT_FUNDS" })
    const cases: ReadonlyArray<[string, string, unknown, number, string]> = [
      ["GET", "/v1/accounts/nobody", undefined, 404, "UNKNOWN_ACCOUNT"],
      ["GET", `/v1/accounts/${owner}/payments/nothing`, undefined, 404, "UNKNOWN_PAYMENT"],
      ["POST", "/v1/accounts", { accountId: owner, currency: "JPY" }, 409, "ACCOUNT_EXISTS"],
      [
        "POST",
        `/v1/accounts/${owner}/deposits`,
        { depositId: "x", amount: "1", currency: "USD" },
        422,
        "CURRENCY_MISMATCH",
      ],
      [
        "POST",
        `/v1/accounts/${owner}/deposits`,
        { depositId: "http-d1", amount: "2", currency: "JPY" },
        422,
        "IDEMPOTENCY_CONFLICT",
      ],
      ["POST", `/v1/accounts/${owner}/deposits`, { amount: "2", currency: "JPY" }, 400, "INVALID_REQUEST"],
      ["GET", "/v1/nothing-here", undefined, 404, "INVALID_REQUEST"],
    ]
    for (const [method, path, body, status, code] of cases) {
      const answer = await httpRequest(harness.port, method, path, { body })
      expect({ path, status: answer.status, code: answer.body.error?.code }).toEqual({ path, status, code })
      expect(typeof answer.body.error.message).toBe("string")
    }
    expect((await httpRequest(harness.port, "GET", `/v1/accounts/${owner}`)).body.account.balance).toBe("749")
  })

  it("percent-decodes ids in the path", async () => {
    const accountId = "with space/and slash"
    await httpRequest(harness.port, "POST", "/v1/accounts", { body: { accountId, currency: "USD" } })
    const read = await httpRequest(harness.port, "GET", `/v1/accounts/${encodeURIComponent(accountId)}`)
    expect(read.body.account.accountId).toBe(accountId)
  })
})

describe("tenants and authentication", () => {
  it("never shows one tenant's accounts to another", async () => {
    const accountId = "isolated"
    await client.request("openAccount", { accountId, currency: "USD" })
    await client.request("deposit", { accountId, depositId: "d", amount: "5", currency: "USD" })
    const other = await WsClient.connect(harness.port, tenantTwo.apiKey)
    expect((await other.request("getAccount", { accountId })).error?.code).toBe("UNKNOWN_ACCOUNT")
    const steal = await other.request("transfer", {
      paymentId: "s",
      from: accountId,
      to: "x",
      amount: "1",
      currency: "USD",
    })
    expect(steal.error?.code).toBe("UNKNOWN_ACCOUNT")
    const own = await other.request("openAccount", { accountId, currency: "USD" })
    expect(own.account?.balance).toBe("0.00")
    other.close()
    const overHttp = await httpRequest(harness.port, "GET", `/v1/accounts/${accountId}`, { apiKey: tenantTwo.apiKey })
    expect(overHttp.body.account.balance).toBe("0.00")
    expect(await balanceOf(accountId)).toBe("5.00")
  })

  it("refuses a WebSocket upgrade without a valid key with 401, and accepts ?apiKey=", async () => {
    await expect(WsClient.connect(harness.port, "wrong-key")).rejects.toThrow("upgrade refused: 401")
    const status = await new Promise<number>((resolve, reject) => {
      const socket = new WebSocket(`ws://127.0.0.1:${harness.port}/v1/ws`)
      socket.once("unexpected-response", (_request, response) => resolve(response.statusCode ?? 0))
      socket.once("open", () => reject(new Error("opened without a key")))
      socket.once("error", () => {})
    })
    expect(status).toBe(401)
    const browser = new WebSocket(`ws://127.0.0.1:${harness.port}/v1/ws?apiKey=${tenantTwo.apiKey}`)
    const answer = await new Promise<string>((resolve, reject) => {
      browser.once("open", () => browser.send(JSON.stringify({ op: "getAccount", reqId: 1, accountId: "isolated" })))
      browser.once("message", (data) => resolve(String(data)))
      browser.once("error", reject)
    })
    expect(JSON.parse(answer)).toMatchObject({ reqId: 1, ok: true, account: { balance: "0.00" } })
    browser.close()
  })

  it("answers HTTP requests without a valid key with 401 UNAUTHORIZED", async () => {
    for (const apiKey of ["", "wrong-key"]) {
      const answer = await httpRequest(harness.port, "GET", "/v1/accounts/isolated", { apiKey })
      expect(answer.status).toBe(401)
      expect(answer.body.error.code).toBe("UNAUTHORIZED")
    }
    const post = await httpRequest(harness.port, "POST", "/v1/accounts", {
      apiKey: "",
      body: { accountId: "sneaky", currency: "USD" },
    })
    expect(post.status).toBe(401)
    expect((await client.request("getAccount", { accountId: "sneaky" })).error?.code).toBe("UNKNOWN_ACCOUNT")
  })
})

describe("health probes", () => {
  it("answers /healthz always and /readyz only while every shard serves", async () => {
    expect((await httpRequest(harness.port, "GET", "/healthz", { apiKey: "" })).status).toBe(200)
    expect((await httpRequest(harness.port, "GET", "/readyz", { apiKey: "" })).status).toBe(200)
    await client.request("openAccount", { accountId: "probe", currency: "USD" })
    harness.journal.outage = true
    const during = await httpRequest(harness.port, "POST", "/v1/accounts/probe/deposits", {
      body: { depositId: "during", amount: "1", currency: "USD" },
    })
    expect({ status: during.status, code: during.body.error.code }).toEqual({ status: 503, code: "UNAVAILABLE" })
    const notReady = await httpRequest(harness.port, "GET", "/readyz", { apiKey: "" })
    expect({ status: notReady.status, code: notReady.body.error.code }).toEqual({ status: 503, code: "UNAVAILABLE" })
    expect((await httpRequest(harness.port, "GET", "/healthz", { apiKey: "" })).status).toBe(200)
    harness.journal.outage = false
    await eventually(async () => (await httpRequest(harness.port, "GET", "/readyz", { apiKey: "" })).status === 200)
    expect(await balanceOf("probe")).toBe("0.00")
  })
})

describe("server lifecycle", () => {
  it("fails to start with ServerStartFailed when the port is taken", async () => {
    const exit = await Effect.runPromiseExit(
      Effect.scoped(
        serverResource({
          host: "127.0.0.1",
          port: harness.port,
          processor: harness.processor,
          tenants: [tenantOne],
          edge: defaultEdge,
        }),
      ),
    )
    expect(Exit.isFailure(exit)).toBe(true)
    expect(JSON.stringify(exit)).toContain("ServerStartFailed")
  })

  it("stops listening and closes open sockets on close", async () => {
    const own = await startTransportHarness()
    const socket = await WsClient.connect(own.port, tenantOne.apiKey)
    expect((await socket.request("getAccount", { accountId: "none" })).error?.code).toBe("UNKNOWN_ACCOUNT")
    await own.close()
    await eventually(() => socket.isClosed)
    await expect(fetch(`http://127.0.0.1:${own.port}/healthz`)).rejects.toThrow()
  })
})
