/**
 * Every row of the contract's "Bad input" section, over WebSocket and over HTTP: each gets its
 * error code, changes no state (balances are read back after each), and leaves the server (and,
 * except for oversized frames, the socket) working.
 */
import { request as httpRequestRaw } from "node:http"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import {
  accountInShard,
  httpRequest,
  RawSocket,
  startTransportHarness,
  type TransportHarness,
  tenantOne,
} from "../support/transport-harness.ts"
import { WsClient } from "../support/ws-client.ts"

const payloadBytesMax = 64 * 1024
const wsInFlightMax = 4
const httpInFlightMax = 2

let harness: TransportHarness
let client: WsClient
const payer = accountInShard(tenantOne, 0, "bad-payer")
const payee = accountInShard(tenantOne, 1, "bad-payee")

beforeAll(async () => {
  harness = await startTransportHarness({ edge: { payloadBytesMax, wsInFlightMax, httpInFlightMax } })
  client = await WsClient.connect(harness.port, tenantOne.apiKey)
  await client.request("openAccount", { accountId: payer, currency: "USD" })
  await client.request("openAccount", { accountId: payee, currency: "USD" })
  await client.request("deposit", { accountId: payer, depositId: "seed", amount: "100", currency: "USD" })
})

afterAll(async () => {
  client.close()
  await harness.close()
})

/** The state every rejected request must leave alone. */
const expectStateUnchanged = async (payerBalance = "100.00") => {
  const balances = await Promise.all([
    client.request("getAccount", { accountId: payer }),
    client.request("getAccount", { accountId: payee }),
  ])
  expect(balances.map((answer) => answer.account?.balance)).toEqual([payerBalance, "0.00"])
  const payments = await client.request("getPayment", { accountId: payer, paymentId: "bad" })
  expect(payments.error?.code).toBe("UNKNOWN_PAYMENT")
}

const transfer = { paymentId: "bad", from: payer, to: payee, amount: "1.00", currency: "USD" }
const deposit = { accountId: payer, depositId: "bad-deposit", amount: "1.00", currency: "USD" }

/** [name, frame as sent, reqId expected in the answer (undefined: none), message pattern] */
const frameRows: ReadonlyArray<readonly [string, string, string | number | undefined, RegExp]> = [
  ["malformed JSON", '{"op":"transfer","reqId":"m1",', undefined, /not valid JSON/],
  ["an empty frame", "", undefined, /not valid JSON/],
  ["a JSON array", JSON.stringify([transfer]), undefined, /must be a JSON object/],
  ["a JSON string", JSON.stringify("transfer"), undefined, /must be a JSON object/],
  ["JSON null", "null", undefined, /must be a JSON object/],
  ["no reqId", JSON.stringify({ op: "transfer", ...transfer }), undefined, /reqId is required/],
  ["a reqId object", JSON.stringify({ op: "transfer", reqId: { id: 1 }, ...transfer }), undefined, /reqId must be/],
  ["an unknown op", JSON.stringify({ op: "withdrawAll", reqId: "u1", accountId: payer }), "u1", /not one of/],
  ["no op", JSON.stringify({ reqId: 9, ...transfer }), 9, /op is required/],
  ["an op of the wrong type", JSON.stringify({ op: ["transfer"], reqId: "u2" }), "u2", /not one of/],
  ["a numeric amount", JSON.stringify({ op: "transfer", reqId: "t1", ...transfer, amount: 1 }), "t1", /decimal string/],
  [
    "a numeric accountId",
    JSON.stringify({ op: "deposit", reqId: "t2", ...deposit, accountId: 7 }),
    "t2",
    /must be a string/,
  ],
  [
    "a numeric currency",
    JSON.stringify({ op: "transfer", reqId: "t3", ...transfer, currency: 840 }),
    "t3",
    /must be a string/,
  ],
  [
    "a missing depositId",
    JSON.stringify({ op: "deposit", reqId: "f1", ...deposit, depositId: undefined }),
    "f1",
    /depositId is required/,
  ],
  ["a missing to", JSON.stringify({ op: "transfer", reqId: "f2", ...transfer, to: undefined }), "f2", /to is required/],
  [
    "a missing amount",
    JSON.stringify({ op: "deposit", reqId: "f3", ...deposit, amount: undefined }),
    "f3",
    /amount is required/,
  ],
  [
    "too many decimals",
    JSON.stringify({ op: "transfer", reqId: "a1", ...transfer, amount: "1.001" }),
    "a1",
    /more decimals than USD/,
  ],
  [
    "a zero amount",
    JSON.stringify({ op: "transfer", reqId: "a2", ...transfer, amount: "0.00" }),
    "a2",
    /greater than zero/,
  ],
  [
    "a negative amount",
    JSON.stringify({ op: "deposit", reqId: "a3", ...deposit, amount: "-5" }),
    "a3",
    /decimal string/,
  ],
  [
    "an oversized amount",
    JSON.stringify({ op: "deposit", reqId: "a4", ...deposit, amount: "1".repeat(19) }),
    "a4",
    /more than 18 integer digits/,
  ],
  [
    "a malformed amount",
    JSON.stringify({ op: "transfer", reqId: "a5", ...transfer, amount: "1e3" }),
    "a5",
    /decimal string/,
  ],
  [
    "an unknown currency",
    JSON.stringify({ op: "transfer", reqId: "c1", ...transfer, currency: "XXX" }),
    "c1",
    /ISO 4217/,
  ],
  [
    "a lowercase currency",
    JSON.stringify({ op: "deposit", reqId: "c2", ...deposit, currency: "usd" }),
    "c2",
    /ISO 4217/,
  ],
  [
    "an id over 128 characters",
    JSON.stringify({ op: "transfer", reqId: "i1", ...transfer, paymentId: "p".repeat(129) }),
    "i1",
    /1 to 128/,
  ],
  ["an empty id", JSON.stringify({ op: "getAccount", reqId: "i2", accountId: "" }), "i2", /1 to 128/],
  [
    "a malformed floor",
    JSON.stringify({ op: "openAccount", reqId: "o1", accountId: "new", currency: "USD", floor: "-x" }),
    "o1",
    /floor must be/,
  ],
  [
    "a positive floor",
    JSON.stringify({ op: "openAccount", reqId: "o2", accountId: "new", currency: "USD", floor: "5.00" }),
    "o2",
    /floor must be zero or negative/,
  ],
  ...[0, 2_592_001, 1.5, "60", null].map(
    (holdSeconds, index) =>
      [
        `an authorization held for ${JSON.stringify(holdSeconds)} seconds`,
        JSON.stringify({ op: "authorize", reqId: `h${index}`, ...transfer, holdSeconds }),
        `h${index}`,
        /holdSeconds must be an integer from 1 to 2592000/,
      ] as const,
  ),
  [
    "an authorization without a creditor",
    JSON.stringify({ op: "authorize", reqId: "h9", ...transfer, to: undefined }),
    "h9",
    /to is required/,
  ],
  [
    "a capture without its captureId",
    JSON.stringify({ op: "capture", reqId: "k1", from: payer, paymentId: "bad" }),
    "k1",
    /captureId is required/,
  ],
  ...["0", "0.00", "-1", "1e3", 5, "1234567890123456789", "1.0001"].map(
    (amount, index) =>
      [
        `a capture of ${JSON.stringify(amount)}`,
        JSON.stringify({
          op: "capture",
          reqId: `k${index + 2}`,
          from: payer,
          paymentId: "bad",
          captureId: "c",
          amount,
        }),
        `k${index + 2}`,
        /amount must be a positive decimal string/,
      ] as const,
  ),
  [
    "a void without its payment",
    JSON.stringify({ op: "void", reqId: "v1", from: payer }),
    "v1",
    /paymentId is required/,
  ],
  [
    "a refund without its refundId",
    JSON.stringify({ op: "refund", reqId: "r1", from: payer, paymentId: "bad" }),
    "r1",
    /refundId is required/,
  ],
  [
    "a refund of zero",
    JSON.stringify({ op: "refund", reqId: "r2", from: payer, paymentId: "bad", refundId: "x", amount: "0.00" }),
    "r2",
    /amount must be a positive decimal string/,
  ],
  ...[undefined, "APPROVE", "maybe", 1, null].map(
    (decision, index) =>
      [
        `a review deciding ${JSON.stringify(decision)}`,
        JSON.stringify({ op: "reviewPayment", reqId: `w${index}`, from: payer, paymentId: "bad", decision }),
        `w${index}`,
        /decision must be "approve" or "decline"/,
      ] as const,
  ),
  [
    "a review without its payment",
    JSON.stringify({ op: "reviewPayment", reqId: "w9", from: payer, decision: "approve" }),
    "w9",
    /paymentId is required/,
  ],
]

describe("bad input over WebSocket", () => {
  it.each(frameRows)(
    "answers %s with INVALID_REQUEST, keeps the socket, changes nothing",
    async (_name, frame, reqId, message) => {
      const socket = await RawSocket.connect(harness.port)
      const answer = await socket.exchange(frame)
      expect(answer.ok).toBe(false)
      expect(answer.error.code).toBe("INVALID_REQUEST")
      expect(answer.error.message).toMatch(message)
      expect(answer.reqId).toEqual(reqId)
      expect("reqId" in answer).toBe(reqId !== undefined)
      const after = await socket.exchange(JSON.stringify({ op: "getAccount", reqId: "after", accountId: payer }))
      expect(after).toMatchObject({ reqId: "after", ok: true, account: { balance: "100.00" } })
      socket.close()
      await expectStateUnchanged()
    },
  )

  it("answers a binary frame with INVALID_REQUEST and keeps the socket", async () => {
    const socket = await RawSocket.connect(harness.port)
    const answer = await socket.exchange(Buffer.from(JSON.stringify({ op: "transfer", reqId: "b1", ...transfer })))
    expect(answer).toMatchObject({ ok: false, error: { code: "INVALID_REQUEST" } })
    expect(socket.isOpen).toBe(true)
    expect((await socket.exchange(JSON.stringify({ op: "getAccount", reqId: 2, accountId: payee }))).ok).toBe(true)
    socket.close()
    await expectStateUnchanged()
  })

  it("closes the socket of a frame over the size limit; a frame at the limit and a new socket work", async () => {
    const frameOf = (length: number): string => {
      const head = JSON.stringify({ op: "getAccount", reqId: "big", accountId: payer, padding: "" })
      return head.replace('"padding":""', `"padding":"${"x".repeat(length - head.length)}"`)
    }
    const atLimit = await RawSocket.connect(harness.port)
    expect(frameOf(payloadBytesMax).length).toBe(payloadBytesMax)
    expect(await atLimit.exchange(frameOf(payloadBytesMax))).toMatchObject({ reqId: "big", ok: true })
    atLimit.close()
    const oversized = await RawSocket.connect(harness.port)
    oversized.send(frameOf(payloadBytesMax + 1))
    expect(typeof (await oversized.whenClosed())).toBe("number")
    expect(oversized.isOpen).toBe(false)
    const fresh = await RawSocket.connect(harness.port)
    expect((await fresh.exchange(JSON.stringify({ op: "getAccount", reqId: 1, accountId: payer }))).ok).toBe(true)
    fresh.close()
    await expectStateUnchanged()
  })

  it("answers FORBIDDEN at once without holding an in-flight slot: more refusals than the limit leave the socket usable", async () => {
    const socket = await RawSocket.connect(harness.port)
    for (let index = 0; index < wsInFlightMax * 3; index++) {
      const frame = JSON.stringify({
        op: "reviewPayment",
        reqId: `f${index}`,
        from: payer,
        paymentId: "p",
        decision: "approve",
      })
      expect((await socket.exchange(frame)).error.code).toBe("FORBIDDEN")
    }
    const after = await socket.exchange(JSON.stringify({ op: "getAccount", reqId: "after", accountId: payer }))
    expect(after).toMatchObject({ reqId: "after", ok: true })
    socket.close()
    await expectStateUnchanged()
  })

  it("answers a flood beyond the in-flight limit with OVERLOADED, applies only the accepted, and keeps the socket", async () => {
    const flooder = await WsClient.connect(harness.port, tenantOne.apiKey)
    const flooded = accountInShard(tenantOne, 2, "flooded")
    await flooder.request("openAccount", { accountId: flooded, currency: "USD" })
    const answers = await Promise.all(
      Array.from({ length: 400 }, (_, index) =>
        flooder.request("deposit", {
          accountId: flooded,
          depositId: `flood-${index}`,
          amount: "0.01",
          currency: "USD",
        }),
      ),
    )
    const accepted = answers.filter((answer) => answer.ok).length
    const overloaded = answers.filter((answer) => answer.error?.code === "OVERLOADED").length
    expect(overloaded).toBeGreaterThan(0)
    expect(accepted).toBeGreaterThanOrEqual(wsInFlightMax)
    expect(accepted + overloaded).toBe(400)
    const balance = await flooder.request("getAccount", { accountId: flooded })
    expect(balance.account?.balance).toBe((accepted / 100).toFixed(2))
    expect(flooder.isClosed).toBe(false)
    flooder.close()
  })
})

/** [name, method, path, body as sent, headers, status, code] */
const httpRows: ReadonlyArray<readonly [string, string, string, string | undefined, number, string]> = [
  ["malformed JSON", "POST", "/v1/payments", '{"paymentId":', 400, "INVALID_REQUEST"],
  ["an empty body", "POST", "/v1/payments", "", 400, "INVALID_REQUEST"],
  ["a JSON array", "POST", "/v1/accounts", "[]", 400, "INVALID_REQUEST"],
  ["a numeric amount", "POST", "/v1/payments", JSON.stringify({ ...transfer, amount: 1 }), 400, "INVALID_REQUEST"],
  ["a numeric id", "POST", "/v1/payments", JSON.stringify({ ...transfer, paymentId: 5 }), 400, "INVALID_REQUEST"],
  [
    "a missing deposit id",
    "POST",
    `/v1/accounts/${payer}/deposits`,
    JSON.stringify({ amount: "1", currency: "USD" }),
    400,
    "INVALID_REQUEST",
  ],
  ["a missing currency", "POST", "/v1/accounts", JSON.stringify({ accountId: "new" }), 400, "INVALID_REQUEST"],
  [
    "too many decimals",
    "POST",
    "/v1/payments",
    JSON.stringify({ ...transfer, amount: "0.001" }),
    400,
    "INVALID_REQUEST",
  ],
  [
    "a zero amount",
    "POST",
    `/v1/accounts/${payer}/deposits`,
    JSON.stringify({ ...deposit, amount: "0" }),
    400,
    "INVALID_REQUEST",
  ],
  [
    "a negative amount",
    "POST",
    "/v1/payments",
    JSON.stringify({ ...transfer, amount: "-1.00" }),
    400,
    "INVALID_REQUEST",
  ],
  [
    "an oversized amount",
    "POST",
    "/v1/payments",
    JSON.stringify({ ...transfer, amount: `${"9".repeat(19)}.00` }),
    400,
    "INVALID_REQUEST",
  ],
  [
    "an unknown currency",
    "POST",
    "/v1/payments",
    JSON.stringify({ ...transfer, currency: "ABC" }),
    400,
    "INVALID_REQUEST",
  ],
  [
    "a malformed floor",
    "POST",
    "/v1/accounts",
    JSON.stringify({ accountId: "new", currency: "USD", floor: "1.2.3" }),
    400,
    "INVALID_REQUEST",
  ],
  [
    "a positive floor",
    "POST",
    "/v1/accounts",
    JSON.stringify({ accountId: "new", currency: "USD", floor: "5.00" }),
    400,
    "INVALID_REQUEST",
  ],
  ["an id over 128 characters", "GET", `/v1/accounts/${"a".repeat(129)}`, undefined, 400, "INVALID_REQUEST"],
  ["a malformed escape in the path", "GET", "/v1/accounts/%E0%A4%A", undefined, 400, "INVALID_REQUEST"],
  ["an unknown route", "POST", "/v1/withdrawals", JSON.stringify(transfer), 404, "INVALID_REQUEST"],
  ["an unknown method", "DELETE", `/v1/accounts/${payer}`, undefined, 404, "INVALID_REQUEST"],
]

describe("bad input over HTTP", () => {
  it.each(httpRows)(
    "answers %s with its status and code, changes nothing",
    async (_name, method, path, body, status, code) => {
      const answer = await httpRequest(harness.port, method, path, body === undefined ? {} : { body })
      expect({ status: answer.status, code: answer.body?.error?.code }).toEqual({ status, code })
      expect(typeof answer.body.error.message).toBe("string")
      await expectStateUnchanged()
    },
  )

  it("answers a body over the size limit with 413, declared or streamed", async () => {
    const big = JSON.stringify({ ...transfer, padding: "x".repeat(payloadBytesMax) })
    const declared = await httpRequest(harness.port, "POST", "/v1/payments", { body: big })
    expect({ status: declared.status, code: declared.body.error.code }).toEqual({
      status: 413,
      code: "PAYLOAD_TOO_LARGE",
    })
    const streamed = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const request = httpRequestRaw(
        {
          host: "127.0.0.1",
          port: harness.port,
          method: "POST",
          path: "/v1/payments",
          headers: { authorization: `Bearer ${tenantOne.apiKey}`, "transfer-encoding": "chunked" },
        },
        (response) => {
          let text = ""
          response.on("data", (chunk) => {
            text += String(chunk)
          })
          response.on("end", () => resolve({ status: response.statusCode ?? 0, body: text }))
        },
      )
      request.on("error", reject)
      // Chunks of 16 KiB until past the limit; the server answers once the limit is passed.
      for (let sent = 0; sent <= payloadBytesMax; sent += 16 * 1024) request.write("x".repeat(16 * 1024))
    })
    expect(streamed.status).toBe(413)
    expect(JSON.parse(streamed.body).error.code).toBe("PAYLOAD_TOO_LARGE")
    expect((await httpRequest(harness.port, "GET", "/healthz")).status).toBe(200)
    await expectStateUnchanged()
  })

  it("answers beyond the HTTP in-flight limit with 429 OVERLOADED and recovers when requests finish", async () => {
    // Requests whose bodies never finish arriving stay in flight until their connection is dropped.
    const stalled = Array.from({ length: httpInFlightMax }, () => {
      const request = httpRequestRaw({
        host: "127.0.0.1",
        port: harness.port,
        method: "POST",
        path: "/v1/payments",
        headers: { authorization: `Bearer ${tenantOne.apiKey}`, "content-length": "1000" },
      })
      request.on("error", () => {})
      request.write('{"paymentId":')
      return request
    })
    let overloaded: Awaited<ReturnType<typeof httpRequest>> | undefined
    for (let attempt = 0; attempt < 100 && overloaded?.status !== 429; attempt++) {
      overloaded = await httpRequest(harness.port, "GET", `/v1/accounts/${payer}`)
    }
    expect({ status: overloaded?.status, code: overloaded?.body.error.code }).toEqual({
      status: 429,
      code: "OVERLOADED",
    })
    for (const request of stalled) request.destroy()
    let recovered = 0
    for (let attempt = 0; attempt < 100 && recovered !== 200; attempt++) {
      recovered = (await httpRequest(harness.port, "GET", `/v1/accounts/${payer}`)).status
    }
    expect(recovered).toBe(200)
    await expectStateUnchanged()
  })

  it("answers requests without a valid key with 401 and changes nothing", async () => {
    const answer = await httpRequest(harness.port, "POST", "/v1/payments", { apiKey: "not-a-key", body: transfer })
    expect({ status: answer.status, code: answer.body.error.code }).toEqual({ status: 401, code: "UNAUTHORIZED" })
    await expectStateUnchanged()
  })
})
