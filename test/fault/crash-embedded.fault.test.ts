/**
 * Crash test of embedded mode: SIGKILL the node at random moments under a stream of transfers and authorizations;
 * every acknowledged payment survives exactly once and money is conserved.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { afterAll, describe, expect, it } from "vitest"
import { runCrashScenario } from "./support/crash-scenario.ts"

const dataDir = mkdtempSync(join(tmpdir(), "payments-crash-"))
afterAll(() => rmSync(dataDir, { recursive: true, force: true }))

describe("embedded mode under SIGKILL", () => {
  it("keeps every acknowledged deposit, transfer, authorization and capture exactly once across kills and restarts", async () => {
    const result = await runCrashScenario({
      env: {
        MODE: "embedded",
        HOST: "127.0.0.1",
        DATA_DIR: dataDir,
        SHARD_COUNT: "8",
        // Small snapshot thresholds so kills also land during and between snapshot writes.
        SNAPSHOT_EVERY_EVENTS: "300",
        SNAPSHOT_INTERVAL_MS: "500",
      },
      apiKey: "demo-key",
      rounds: 4,
      streamMsMin: 1_000,
      streamMsMax: 3_000,
      inFlightMax: 64,
    })
    expect(result.acknowledged).toBeGreaterThan(100)
    // Authorizations reached their ends: captured, voided, lapsed (also while the node was down), still held.
    for (const status of ["settled", "authorized"])
      expect(result.authorizationsByStatus.get(status) ?? 0).toBeGreaterThan(0)
  }, 240_000)
})
