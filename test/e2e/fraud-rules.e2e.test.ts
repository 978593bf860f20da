/**
 * A tenant's fraud rules and limits on a real node process, configured in its tenant file: a
 * blocked counterparty is declined with the rule, a large payment waits in review for a key with
 * the `ops` scope (approve settles a transfer, decline releases its hold), limits refuse with
 * LIMIT_EXCEEDED, the velocity history survives a SIGKILL, and a rule changed in the file applies
 * from the next payment without a restart.
 */
import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { mintApiKey } from "../../tenancy/api-keys.ts"
import { startNodeProcess } from "../support/node-process.ts"
import { WsClient } from "../support/ws-client.ts"

const directory = mkdtempSync(join(tmpdir(), "payments-risk-"))
afterAll(() => rmSync(directory, { recursive: true, force: true }))
const filePath = join(directory, "tenants.json")
const dataDir = join(directory, "data")

const partnerKey = mintApiKey("acme-app")
const opsKey = mintApiKey("acme-ops")

const rules = (reviewAbove: string) => [
  { id: "sanctioned", kind: "blocked-counterparty", accounts: ["mallory"] },
  { id: "large", kind: "amount-limit", outcome: "review", amountMax: { EUR: reviewAbove } },
  { id: "burst", kind: "velocity", outcome: "decline", windowMs: 600_000, countMax: 5 },
]
const writeTenants = (reviewAbove: string) => {
  const tenant = {
    tenantId: "acme",
    reviewHoldSeconds: 3600,
    rules: rules(reviewAbove),
    limits: { paymentMax: { EUR: "500.00" } },
    keys: [
      { keyId: "acme-app", hash: partnerKey.hash, scopes: ["payments", "read"] },
      { keyId: "acme-ops", hash: opsKey.hash, scopes: ["ops", "read"] },
    ],
  }
  writeFileSync(`${filePath}.tmp`, JSON.stringify({ tenants: [tenant] }))
  renameSync(`${filePath}.tmp`, filePath)
}
const payment = (paymentId: string, amount: string, to = "bob") => ({
  paymentId,
  from: "alice",
  to,
  amount,
  currency: "EUR",
})

describe("fraud rules and limits over the wire", () => {
  it("declines, reviews, limits, keeps the velocity history across a kill, and takes a changed rule at once", async () => {
    writeTenants("100.00")
    const node = await startNodeProcess({ TENANTS_FILE: filePath, DATA_DIR: dataDir })
    const client = await WsClient.connect(node.port, partnerKey.apiKey)
    for (const accountId of ["alice", "bob", "mallory"])
      await client.request("openAccount", { accountId, currency: "EUR" })
    await client.request("deposit", { accountId: "alice", depositId: "d-1", amount: "1000.00", currency: "EUR" })

    const blocked = (await client.request("transfer", payment("p-1", "1.00", "mallory"))).payment
    expect(blocked).toMatchObject({
      status: "declined",
      reason: "RISK_DECLINED",
      risk: { outcome: "decline", rule: "sanctioned" },
    })

    expect((await client.request("transfer", payment("p-2", "500.01"))).error?.code).toBe("LIMIT_EXCEEDED")

    const held = (await client.request("transfer", payment("p-3", "150.00"))).payment
    expect(held).toMatchObject({ status: "review", risk: { outcome: "review", rule: "large" } })
    expect(Date.parse(held?.holdExpiresAt as string) - Date.parse(held?.createdAt as string)).toBe(3_600_000)
    expect((await client.request("getAccount", { accountId: "alice" })).account).toMatchObject({
      balance: "1000.00",
      held: "150.00",
      available: "850.00",
    })
    // The partner's key may not review; the ops key may.
    const review = { from: "alice", paymentId: "p-3", decision: "approve" }
    expect((await client.request("reviewPayment", review)).error?.code).toBe("FORBIDDEN")
    const ops = await WsClient.connect(node.port, opsKey.apiKey)
    expect((await ops.request("reviewPayment", review)).payment).toMatchObject({
      status: "settled",
      capturedAmount: "150.00",
    })
    expect((await ops.request("reviewPayment", { ...review, decision: "maybe" })).error?.code).toBe("INVALID_REQUEST")

    // Declined by a reviewer over HTTP: the hold is released.
    expect((await client.request("authorize", payment("p-4", "120.00"))).payment?.status).toBe("review")
    const declined = await fetch(`http://127.0.0.1:${node.port}/v1/accounts/alice/payments/p-4/review`, {
      method: "POST",
      headers: { authorization: `Bearer ${opsKey.apiKey}`, "content-type": "application/json" },
      body: JSON.stringify({ decision: "decline" }),
    })
    expect(declined.status).toBe(200)
    expect(((await declined.json()) as { payment: unknown }).payment).toMatchObject({
      status: "declined",
      reason: "RISK_DECLINED",
    })
    expect((await client.request("getAccount", { accountId: "alice" })).account).toMatchObject({
      balance: "850.00",
      held: "0.00",
    })

    // Three payments recorded so far (p-3, p-4 and this one): velocity allows five in ten minutes.
    expect((await client.request("transfer", payment("p-5", "1.00"))).payment?.status).toBe("settled")
    await node.kill("SIGKILL")

    const again = await startNodeProcess({ TENANTS_FILE: filePath, DATA_DIR: dataDir })
    try {
      const after = await WsClient.connect(again.port, partnerKey.apiKey)
      expect((await after.request("transfer", payment("p-6", "1.00"))).payment?.status).toBe("settled")
      expect((await after.request("transfer", payment("p-7", "1.00"))).payment?.status).toBe("settled")
      // The sixth within the window: the history recovered from the snapshot and journal counts the five before it.
      expect((await after.request("transfer", payment("p-8", "1.00"))).payment).toMatchObject({
        status: "declined",
        risk: { rule: "burst" },
      })

      // A rule changed in the file applies from the next payment: Bob's 101.00 goes to review, then not.
      const bobPays = (paymentId: string) =>
        after.request("authorize", { ...payment(paymentId, "101.00", "alice"), from: "bob" })
      expect((await bobPays("b-1")).payment?.status).toBe("review")
      const reviewer = await WsClient.connect(again.port, opsKey.apiKey)
      await reviewer.request("reviewPayment", { from: "bob", paymentId: "b-1", decision: "decline" })
      writeTenants("1000.00")
      const deadline = Date.now() + 10_000
      while ((again.output().match(/in force/g) ?? []).length < 2 && Date.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 50))
      expect((await bobPays("b-2")).payment?.status).toBe("authorized")
    } finally {
      await again.kill("SIGTERM")
    }
  })
})
