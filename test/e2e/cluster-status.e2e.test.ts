/**
 * `GET /v1/cluster` on a real node: the operators' key gets the shard map (a node running alone owns
 * and serves every shard); a tenant's key and no key get 401; without ADMIN_API_KEY the endpoint is
 * off (404); a too-short ADMIN_API_KEY or a CLUSTER_ADVERTISE that is not host:port stops the node.
 */
import { spawnSync } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { startNodeProcess } from "../support/node-process.ts"

const directory = mkdtempSync(join(tmpdir(), "payments-cluster-status-"))
afterAll(() => rmSync(directory, { recursive: true, force: true }))
const adminApiKey = "ops-0123456789abcdef"

const get = async (port: number, key: string | undefined) => {
  const response = await fetch(`http://127.0.0.1:${port}/v1/cluster`, {
    headers: key === undefined ? {} : { authorization: `Bearer ${key}` },
  })
  return { status: response.status, body: (await response.json()) as Record<string, unknown> }
}

describe("the cluster endpoint", () => {
  it("shows the operators the shard map and refuses everyone else", async () => {
    const node = await startNodeProcess({
      DATA_DIR: join(directory, "a"),
      SHARD_COUNT: "4",
      NODE_ID: "node-a",
      CLUSTER_ADVERTISE: "node-a.payments:7400",
      ADMIN_API_KEY: adminApiKey,
    })
    try {
      expect(await get(node.port, adminApiKey)).toEqual({
        status: 200,
        body: {
          nodes: [{ nodeId: "node-a", address: "node-a.payments:7400", shards: [0, 1, 2, 3] }],
          shards: [0, 1, 2, 3].map((shard) => ({ shard, owner: "node-a", status: "serving" })),
        },
      })
      expect((await get(node.port, "demo-key")).status).toBe(401)
      expect((await get(node.port, `${adminApiKey}x`)).status).toBe(401)
      expect((await get(node.port, undefined)).body).toMatchObject({ error: { code: "UNAUTHORIZED" } })
    } finally {
      await node.kill("SIGTERM")
    }
    const without = await startNodeProcess({ DATA_DIR: join(directory, "b") })
    try {
      expect((await get(without.port, adminApiKey)).status).toBe(404)
    } finally {
      await without.kill("SIGTERM")
    }
  })

  it.each([
    [{ ADMIN_API_KEY: "short" }, /ADMIN_API_KEY must have at least 16 characters/],
    [{ CLUSTER_ADVERTISE: "no port here" }, /CLUSTER_ADVERTISE "no port here" is not host:port/],
  ])("refuses to start with %j", (env, message) => {
    const result = spawnSync(process.execPath, ["dist/main.js"], {
      env: { ...process.env, MODE: "embedded", ...env, DATA_DIR: join(directory, "c"), PORT: "18099" },
      encoding: "utf8",
      timeout: 30_000,
    })
    expect(result.status).toBe(1)
    expect(result.stderr).toMatch(message)
  })
})
