/**
 * Crash test of aws mode against the real local stack (Kafka journal, DynamoDB-API snapshots,
 * Redis leases): SIGKILL the node at random moments under a stream of transfers and authorizations; every acknowledged
 * payment survives exactly once and money is conserved.
 */
import { beforeAll, describe, expect, it } from "vitest"
import { stackUp } from "../../scripts/local-stack/stack.ts"
import { runCrashScenario } from "./support/crash-scenario.ts"

const run = `crash${Date.now().toString(36)}`

beforeAll(async () => {
  await stackUp()
})

describe("aws mode under SIGKILL", () => {
  it("keeps every acknowledged deposit, transfer, authorization and capture exactly once across kills and restarts", async () => {
    const result = await runCrashScenario({
      env: {
        MODE: "aws",
        HOST: "127.0.0.1",
        TENANTS: "crash:crash-test-key",
        // The same node id across restarts, so the restarted node takes its own leases back at once.
        NODE_ID: `${run}-node`,
        KAFKA_TOPIC: `${run}-journal`,
        DYNAMODB_TABLE_PREFIX: run,
        REDIS_KEY_PREFIX: run,
        SHARD_COUNT: "8",
        SNAPSHOT_EVERY_EVENTS: "300",
        SNAPSHOT_INTERVAL_MS: "500",
      },
      apiKey: "crash-test-key",
      rounds: 3,
      streamMsMin: 1_500,
      streamMsMax: 3_500,
      inFlightMax: 64,
    })
    expect(result.acknowledged).toBeGreaterThan(100)
    // Authorizations reached their ends: captured, voided, lapsed (also while the node was down), still held.
    for (const status of ["settled", "authorized"])
      expect(result.authorizationsByStatus.get(status) ?? 0).toBeGreaterThan(0)
  }, 300_000)
})
