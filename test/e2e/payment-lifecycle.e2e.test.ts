/**
 * The authorization lifecycle on a real node process over its wire contract: authorize, capture
 * (part), void, a hold that lapses while the node serves and one that lapsed while it was killed,
 * the contract's error codes, and the HTTP routes with the same meaning.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { startNodeProcess } from "../support/node-process.ts"
import { WsClient } from "../support/ws-client.ts"

const dataDir = mkdtempSync(join(tmpdir(), "payments-lifecycle-"))
afterAll(() => rmSync(dataDir, { recursive: true, force: true }))

const authorization = (paymentId: string, amount: string, holdSeconds?: number) => ({
  paymentId,
  from: "alice",
  to: "bob",
  amount,
  currency: "EUR",
  ...(holdSeconds === undefined ? {} : { holdSeconds }),
})
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe("payment lifecycle over the wire", () => {
  it("authorizes, captures in part, voids, lets holds lapse (also across a kill) and refuses other edges", async () => {
    const node = await startNodeProcess({ DATA_DIR: dataDir })
    const client = await WsClient.connect(node.port, "demo-key")
    await client.request("openAccount", { accountId: "alice", currency: "EUR" })
    await client.request("openAccount", { accountId: "bob", currency: "EUR" })
    await client.request("deposit", { accountId: "alice", depositId: "d-1", amount: "100.00", currency: "EUR" })

    const authorized = (await client.request("authorize", authorization("p-1", "30.00"))).payment
    expect(authorized).toMatchObject({
      status: "authorized",
      authorizedAmount: "30.00",
      capturedAmount: "0.00",
      refundedAmount: "0.00",
    })
    expect(Date.parse(authorized?.holdExpiresAt as string) - Date.parse(authorized?.createdAt as string)).toBe(
      7 * 86_400_000,
    )
    expect((await client.request("getAccount", { accountId: "alice" })).account).toMatchObject({
      balance: "100.00",
      held: "30.00",
      available: "70.00",
    })
    expect((await client.request("transfer", { ...authorization("t-1", "70.01") })).payment?.status).toBe("declined")

    const captured = (
      await client.request("capture", { from: "alice", paymentId: "p-1", captureId: "c-1", amount: "12.34" })
    ).payment
    expect(captured).toMatchObject({ status: "settled", authorizedAmount: "30.00", capturedAmount: "12.34" })
    expect((await client.request("getAccount", { accountId: "alice" })).account).toMatchObject({
      balance: "87.66",
      held: "0.00",
    })
    expect((await client.request("getAccount", { accountId: "bob" })).account?.balance).toBe("12.34")
    const retried = await client.request("capture", {
      from: "alice",
      paymentId: "p-1",
      captureId: "c-1",
      amount: "12.34",
    })
    expect(retried.payment).toEqual(captured)
    const capture = (fields: Record<string, unknown>) =>
      client.request("capture", { from: "alice", paymentId: "p-1", ...fields })
    expect((await capture({ captureId: "c-1", amount: "1.00" })).error?.code).toBe("IDEMPOTENCY_CONFLICT")
    expect((await capture({ captureId: "c-2" })).error?.code).toBe("INVALID_STATE")
    expect((await capture({ paymentId: "nope", captureId: "c-3" })).error?.code).toBe("UNKNOWN_PAYMENT")

    // Refunds: in parts, back from the creditor, never beyond the capture.
    const refund = (fields: Record<string, unknown>) =>
      client.request("refund", { from: "alice", paymentId: "p-1", ...fields })
    expect((await refund({ refundId: "r-1", amount: "2.34" })).payment).toMatchObject({
      status: "partially_refunded",
      refundedAmount: "2.34",
    })
    expect((await refund({ refundId: "r-1", amount: "2.34" })).payment?.refundedAmount).toBe("2.34")
    expect((await refund({ refundId: "r-1", amount: "1.00" })).error?.code).toBe("IDEMPOTENCY_CONFLICT")
    expect((await refund({ refundId: "r-2", amount: "10.01" })).error?.code).toBe("AMOUNT_EXCEEDS_REMAINING")
    expect((await refund({ refundId: "r-2" })).payment).toMatchObject({ status: "refunded", refundedAmount: "12.34" })
    expect((await refund({ refundId: "r-3", amount: "0.01" })).error?.code).toBe("INVALID_STATE")
    expect((await client.request("getAccount", { accountId: "bob" })).account?.balance).toBe("0.00")

    await client.request("authorize", authorization("p-2", "10.00"))
    expect(
      (await client.request("capture", { from: "alice", paymentId: "p-2", captureId: "c-4", amount: "10.01" })).error
        ?.code,
    ).toBe("AMOUNT_EXCEEDS_REMAINING")
    expect(
      (await client.request("capture", { from: "alice", paymentId: "p-2", captureId: "c-4", amount: "1.001" })).error
        ?.code,
    ).toBe("INVALID_REQUEST")
    expect((await client.request("void", { from: "alice", paymentId: "p-2" })).payment?.status).toBe("voided")
    expect((await client.request("void", { from: "alice", paymentId: "p-2" })).payment?.status).toBe("voided")
    expect((await client.request("void", { from: "alice", paymentId: "p-1" })).error?.code).toBe("INVALID_STATE")
    for (const holdSeconds of [0, 2_592_001, 1.5]) {
      expect((await client.request("authorize", authorization("p-9", "1.00", holdSeconds))).error?.code).toBe(
        "INVALID_REQUEST",
      )
    }

    // A hold lapses within a second of its time while the node serves.
    await client.request("authorize", authorization("p-3", "5.00", 1))
    await sleep(2_000)
    expect((await client.request("getPayment", { accountId: "alice", paymentId: "p-3" })).payment?.status).toBe(
      "expired",
    )
    expect((await client.request("getAccount", { accountId: "alice" })).account?.held).toBe("0.00")

    // HTTP: the same operations on their routes.
    const post = async (path: string, body: unknown, key?: string) => {
      const headers: Record<string, string> = { authorization: "Bearer demo-key", "content-type": "application/json" }
      if (key !== undefined) headers["idempotency-key"] = key
      const response = await fetch(`http://127.0.0.1:${node.port}${path}`, {
        method: "POST",
        headers,
        body: JSON.stringify(body),
      })
      return {
        status: response.status,
        body: (await response.json()) as { payment?: { status: string }; error?: { code: string } },
      }
    }
    const { paymentId: _id, ...fields } = authorization("unused", "4.00", 3_600)
    expect((await post("/v1/payments/authorizations", fields, "p-4")).body.payment?.status).toBe("authorized")
    expect((await post("/v1/accounts/alice/payments/p-4/capture", { amount: "5.00" }, "c-5")).status).toBe(422)
    expect((await post("/v1/accounts/alice/payments/p-4/capture", {}, "c-5")).body.payment?.status).toBe("settled")
    expect((await post("/v1/accounts/alice/payments/p-4/void", {})).status).toBe(409)
    expect(
      (await post("/v1/accounts/alice/payments/p-4/refunds", { amount: "1.00" }, "r-4")).body.payment?.status,
    ).toBe("partially_refunded")
    expect((await post("/v1/accounts/alice/payments/p-4/refunds", { amount: "5.00" }, "r-5")).status).toBe(422)

    // Holds across a kill: one lapses while the node is down and is released by the recovery; one stays held.
    await client.request("authorize", authorization("p-5", "6.00", 1))
    await client.request("authorize", authorization("p-6", "7.00", 3_600))
    client.close()
    await node.kill("SIGKILL")
    await sleep(1_500)
    const again = await startNodeProcess({ DATA_DIR: dataDir })
    const reconnected = await WsClient.connect(again.port, "demo-key")
    expect((await reconnected.request("getAccount", { accountId: "alice" })).account).toMatchObject({
      balance: "97.00",
      held: "7.00",
      available: "90.00",
    })
    expect((await reconnected.request("getPayment", { accountId: "alice", paymentId: "p-5" })).payment?.status).toBe(
      "expired",
    )
    expect((await reconnected.request("getPayment", { accountId: "alice", paymentId: "p-6" })).payment?.status).toBe(
      "authorized",
    )
    reconnected.close()
    await again.kill("SIGTERM")
  }, 60_000)
})
