/**
 * The node as `npm start` runs it: it says where it listens, serves the contract, stops cleanly on
 * SIGTERM (readiness failing at once, requests still answered for a moment) and comes back with its state; an invalid configuration stops it at start, naming the
 * variable.
 */
import { spawn } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, describe, expect, it } from "vitest"
import { ensureBuilt, nodeEntryArguments, nodeEnvironment, startNodeProcess } from "../support/node-process.ts"

const root = fileURLToPath(new URL("../..", import.meta.url))
const dataDir = mkdtempSync(join(tmpdir(), "payments-start-"))
afterAll(() => rmSync(dataDir, { recursive: true, force: true }))

const runToExit = (env: Record<string, string>): Promise<{ code: number | null; output: string }> =>
  new Promise((resolve) => {
    ensureBuilt()
    const child = spawn(process.execPath, [...nodeEntryArguments], {
      cwd: root,
      env: { ...nodeEnvironment(), DATA_DIR: dataDir, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    })
    let output = ""
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString()
    })
    child.stderr.on("data", (chunk: Buffer) => {
      output += chunk.toString()
    })
    child.once("exit", (code) => resolve({ code, output }))
  })

const authorized = { authorization: "Bearer demo-key", "content-type": "application/json" }

describe("the node process", () => {
  it("prints where it listens, serves, stops on SIGTERM and restarts with its state", async () => {
    const first = await startNodeProcess({ DATA_DIR: dataDir })
    expect(first.output()).toContain(`listening on http://127.0.0.1:${first.port}`)
    const base = `http://127.0.0.1:${first.port}`
    const opened = await fetch(`${base}/v1/accounts`, {
      method: "POST",
      headers: authorized,
      body: JSON.stringify({ accountId: "alice", currency: "JPY" }),
    })
    expect(opened.status).toBe(200)
    const deposited = await fetch(`${base}/v1/accounts/alice/deposits`, {
      method: "POST",
      headers: { ...authorized, "idempotency-key": "dep-1" },
      body: JSON.stringify({ amount: "1500", currency: "JPY" }),
    })
    expect(((await deposited.json()) as { account: { balance: string } }).account.balance).toBe("1500")
    const metrics = await (await fetch(`${base}/metrics`)).text()
    expect(metrics).toContain("payments_accounts 1\n")
    expect(metrics).toMatch(/payments_shards_serving 16\n/)
    expect(metrics).toMatch(/process_resident_memory_bytes \d+\n/)
    // SIGTERM: readiness fails at once while requests are still answered, then the node exits 0.
    const stopping = first.kill("SIGTERM")
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect((await fetch(`${base}/readyz`)).status).toBe(503)
    expect((await fetch(`${base}/v1/accounts/alice`, { headers: authorized })).status).toBe(200)
    await stopping
    expect(first.child.exitCode).toBe(0)

    const second = await startNodeProcess({ DATA_DIR: dataDir })
    try {
      const read = await fetch(`http://127.0.0.1:${second.port}/v1/accounts/alice`, { headers: authorized })
      expect(await read.json()).toEqual({
        account: {
          accountId: "alice",
          currency: "JPY",
          balance: "1500",
          held: "0",
          available: "1500",
          floor: "0",
          status: "open",
        },
      })
    } finally {
      await second.kill("SIGTERM")
    }
  })

  it("stops at start with a message naming an invalid variable", async () => {
    const badPort = await runToExit({ PORT: "not-a-port" })
    expect(badPort.code).toBe(1)
    expect(badPort.output).toContain("invalid configuration")
    expect(badPort.output).toContain("PORT")
    const noTenants = await runToExit({ MODE: "aws", TENANTS: "" })
    expect(noTenants.code).toBe(1)
    expect(noTenants.output).toContain("TENANTS")
    const tenantsFile = join(dataDir, "tenants.json")
    writeFileSync(
      tenantsFile,
      JSON.stringify({ tenants: [{ tenantId: "acme", keys: [{ keyId: "k", hash: "clear-text" }] }] }),
    )
    const badFile = await runToExit({ TENANTS_FILE: tenantsFile })
    expect(badFile.code).toBe(1)
    expect(badFile.output).toContain("invalid configuration: TENANTS_FILE")
    expect(badFile.output).toContain('["keys"][0]["scopes"]')
  })
})
