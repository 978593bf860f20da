/**
 * The tenant file on a real node process: tenants and keys added, changed and removed while the
 * node runs take effect without a restart; a file that does not validate is refused and the
 * version in force stays; scopes are enforced; a tenant sees only its own accounts.
 */
import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { mintApiKey } from "../../tenancy/api-keys.ts"
import { type NodeProcess, startNodeProcess } from "../support/node-process.ts"
import { SocketClosed, WsClient } from "../support/ws-client.ts"

const directory = mkdtempSync(join(tmpdir(), "payments-tenants-"))
afterAll(() => rmSync(directory, { recursive: true, force: true }))
const filePath = join(directory, "tenants.json")

const acmeKey = mintApiKey("acme-1")
const acmeRotated = mintApiKey("acme-1")
const betaKey = mintApiKey("beta-1")

interface KeyLine {
  readonly keyId: string
  readonly hash: string
  readonly scopes: ReadonlyArray<string>
}
/** Writes the file as editors do: a new file renamed over the old one. */
const writeTenants = (tenants: ReadonlyArray<{ tenantId: string; keys: ReadonlyArray<KeyLine> }>) => {
  writeFileSync(`${filePath}.tmp`, JSON.stringify({ tenants }))
  renameSync(`${filePath}.tmp`, filePath)
}
const acme = (hash = acmeKey.hash) => ({
  defaultHoldSeconds: 60,
  tenantId: "acme",
  keys: [{ keyId: "acme-1", hash, scopes: ["payments", "read"] }],
})
const beta = { tenantId: "beta", keys: [{ keyId: "beta-1", hash: betaKey.hash, scopes: ["read"] }] }

const status = async (node: NodeProcess, apiKey: string, method: "GET" | "POST", path: string, body?: unknown) => {
  const response = await fetch(`http://127.0.0.1:${node.port}${path}`, {
    method,
    headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  })
  const answer = (await response.json()) as { error?: { code: string } }
  return { status: response.status, code: answer.error?.code }
}

/** Polls until the node answers `apiKey`'s read with `expected` (the reload is asynchronous). */
const eventually = async (check: () => Promise<boolean>, what: string) => {
  const deadline = Date.now() + 10_000
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

describe("the tenant file", () => {
  it("adds, changes and removes tenants and keys at runtime, refuses an invalid file, enforces scopes", async () => {
    writeTenants([acme()])
    const node = await startNodeProcess({ TENANTS_FILE: filePath, DATA_DIR: join(directory, "data") })
    try {
      expect(
        await status(node, acmeKey.apiKey, "POST", "/v1/accounts", { accountId: "alice", currency: "EUR" }),
      ).toEqual({
        status: 200,
        code: undefined,
      })
      expect((await status(node, betaKey.apiKey, "GET", "/v1/accounts/alice")).status).toBe(401)
      expect((await status(node, "demo-key", "GET", "/v1/accounts/alice")).status).toBe(401)
      // The tenant's default hold applies when an authorization does not name one.
      await status(node, acmeKey.apiKey, "POST", "/v1/accounts", { accountId: "carol", currency: "EUR" })
      await status(node, acmeKey.apiKey, "POST", "/v1/accounts/alice/deposits", {
        depositId: "d",
        amount: "5.00",
        currency: "EUR",
      })
      const held = await fetch(`http://127.0.0.1:${node.port}/v1/payments/authorizations`, {
        method: "POST",
        headers: { authorization: `Bearer ${acmeKey.apiKey}`, "content-type": "application/json" },
        body: JSON.stringify({ paymentId: "h-1", from: "alice", to: "carol", amount: "1.00", currency: "EUR" }),
      })
      const { payment } = (await held.json()) as { payment: { createdAt: string; holdExpiresAt: string } }
      expect(Date.parse(payment.holdExpiresAt) - Date.parse(payment.createdAt)).toBe(60_000)

      // A tenant added: its read-only key works at once, sees none of acme's accounts, may not write.
      writeTenants([acme(), beta])
      await eventually(
        async () => (await status(node, betaKey.apiKey, "GET", "/v1/accounts/alice")).status !== 401,
        "beta's key",
      )
      expect(await status(node, betaKey.apiKey, "GET", "/v1/accounts/alice")).toEqual({
        status: 404,
        code: "UNKNOWN_ACCOUNT",
      })
      expect(await status(node, betaKey.apiKey, "POST", "/v1/accounts", { accountId: "bob", currency: "EUR" })).toEqual(
        {
          status: 403,
          code: "FORBIDDEN",
        },
      )
      const betaSocket = await WsClient.connect(node.port, betaKey.apiKey)
      expect((await betaSocket.request("openAccount", { accountId: "bob", currency: "EUR" })).error?.code).toBe(
        "FORBIDDEN",
      )

      // An invalid file is refused whole: what was in force stays.
      writeFileSync(
        filePath,
        JSON.stringify({ tenants: [acme(), { ...beta, keys: [{ ...beta.keys[0], scopes: ["admin"] }] }] }),
      )
      await new Promise((resolve) => setTimeout(resolve, 500))
      expect(node.output()).toContain("refused")
      expect(node.output()).toContain('["scopes"][0]')
      expect((await status(node, betaKey.apiKey, "GET", "/v1/accounts/alice")).status).toBe(404)
      expect((await betaSocket.request("getAccount", { accountId: "alice" })).error?.code).toBe("UNKNOWN_ACCOUNT")

      // A key rotated: the old secret stops working, over HTTP and on a socket it opened.
      const acmeSocket = await WsClient.connect(node.port, acmeKey.apiKey)
      expect((await acmeSocket.request("getAccount", { accountId: "alice" })).account?.accountId).toBe("alice")
      writeTenants([acme(acmeRotated.hash), beta])
      await eventually(
        async () => (await status(node, acmeRotated.apiKey, "GET", "/v1/accounts/alice")).status === 200,
        "the rotated key",
      )
      expect((await status(node, acmeKey.apiKey, "GET", "/v1/accounts/alice")).status).toBe(401)
      await expect(acmeSocket.request("getAccount", { accountId: "alice" })).rejects.toBeInstanceOf(SocketClosed)

      // A tenant removed: its keys no longer admit, and its open socket is closed.
      writeTenants([acme(acmeRotated.hash)])
      await eventually(
        async () => (await status(node, betaKey.apiKey, "GET", "/v1/accounts/alice")).status === 401,
        "beta's removal",
      )
      await expect(betaSocket.request("getAccount", { accountId: "alice" })).rejects.toBeInstanceOf(SocketClosed)
      expect((await status(node, acmeRotated.apiKey, "GET", "/v1/accounts/alice")).status).toBe(200)
    } finally {
      await node.kill("SIGTERM")
    }
  }, 60_000)
})
