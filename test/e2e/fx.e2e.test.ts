/**
 * Currency conversion on a real node process, its rates in a YAML tenant file: a payment in EUR
 * from a USD account is debited in USD at the tenant's rate and shows the conversion; a pair
 * without a rate is FX_RATE_UNAVAILABLE; an authorization holds the converted amount and a refund
 * returns it; all of it survives a SIGKILL.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { mintApiKey } from "../../tenancy/api-keys.ts"
import { startNodeProcess } from "../support/node-process.ts"
import { WsClient } from "../support/ws-client.ts"

const directory = mkdtempSync(join(tmpdir(), "payments-fx-"))
afterAll(() => rmSync(directory, { recursive: true, force: true }))
const filePath = join(directory, "tenants.yaml")
const dataDir = join(directory, "data")
const key = mintApiKey("shop-1")

writeFileSync(
  filePath,
  [
    "tenants:",
    "  - tenantId: shop",
    "    fxRates:",
    "      - { base: EUR, quote: USD, rate: '1.0850', source: ecb, asOf: '2026-12-01T16:00:00Z' }",
    "    keys:",
    "      - keyId: shop-1",
    `        hash: '${key.hash}'`,
    "        scopes: [payments, read]",
  ].join("\n"),
)

describe("currency conversion over the wire", () => {
  it("debits the converted amount, shows the rate, refuses a pair without one, and keeps it all across a kill", async () => {
    const node = await startNodeProcess({ TENANTS_FILE: filePath, DATA_DIR: dataDir })
    const client = await WsClient.connect(node.port, key.apiKey)
    await client.request("openAccount", { accountId: "buyer", currency: "USD" })
    await client.request("openAccount", { accountId: "seller", currency: "EUR" })
    await client.request("openAccount", { accountId: "yen", currency: "JPY" })
    await client.request("deposit", { accountId: "buyer", depositId: "d-1", amount: "500.00", currency: "USD" })

    // 100.00 EUR at 1.0850 = 108.50 USD; 33.33 EUR = 36.163305 USD, rounded half-to-even to 36.16.
    const paid = (
      await client.request("transfer", {
        paymentId: "p-1",
        from: "buyer",
        to: "seller",
        amount: "100.00",
        currency: "EUR",
      })
    ).payment
    expect(paid).toMatchObject({
      status: "settled",
      amount: "100.00",
      currency: "EUR",
      fx: {
        debit: {
          rate: "1.0850",
          source: "ecb",
          asOf: "2026-12-01T16:00:00.000Z",
          fromAmount: "100.00",
          fromCurrency: "EUR",
          toAmount: "108.50",
          toCurrency: "USD",
          rounding: "exact",
        },
      },
    })
    const held = (
      await client.request("authorize", {
        paymentId: "a-1",
        from: "buyer",
        to: "seller",
        amount: "33.33",
        currency: "EUR",
      })
    ).payment
    expect(held?.fx).toMatchObject({ debit: { toAmount: "36.16", rounding: "rounded_half_even" } })
    expect((await client.request("getAccount", { accountId: "buyer" })).account).toMatchObject({
      balance: "391.50",
      held: "36.16",
      available: "355.34",
    })
    expect(
      (await client.request("transfer", { paymentId: "p-2", from: "buyer", to: "yen", amount: "1", currency: "JPY" }))
        .error?.code,
    ).toBe("FX_RATE_UNAVAILABLE")
    expect(
      (await client.request("refund", { from: "buyer", paymentId: "p-1", refundId: "r-1", amount: "50.00" })).payment,
    ).toMatchObject({ status: "partially_refunded", refundedAmount: "50.00" })
    await node.kill("SIGKILL")

    const again = await startNodeProcess({ TENANTS_FILE: filePath, DATA_DIR: dataDir })
    try {
      const after = await WsClient.connect(again.port, key.apiKey)
      // 108.50 − 54.25 back, and the hold of 36.16 still held after the restart.
      expect((await after.request("getAccount", { accountId: "buyer" })).account).toMatchObject({
        balance: "445.75",
        held: "36.16",
      })
      expect((await after.request("getAccount", { accountId: "seller" })).account?.balance).toBe("50.00")
      expect(
        (await after.request("capture", { from: "buyer", paymentId: "a-1", captureId: "c-1" })).payment,
      ).toMatchObject({
        status: "settled",
        capturedAmount: "33.33",
      })
      expect((await after.request("getAccount", { accountId: "buyer" })).account).toMatchObject({
        balance: "409.59",
        held: "0.00",
      })
      expect((await after.request("getPayment", { accountId: "buyer", paymentId: "p-1" })).payment?.fx).toEqual(
        paid?.fx,
      )
    } finally {
      await again.kill("SIGTERM")
    }
  })
})
