/**
 * The node's configuration: defaults point at embedded mode and the local stack; every invalid
 * value fails with a message that names its variable; the demo tenant exists only in embedded mode.
 */
import { Cause, ConfigProvider, Effect, Exit } from "effect"
import { describe, expect, it } from "vitest"
import { type NodeConfig, nodeConfig } from "../../config.ts"

const load = (env: Record<string, string>) =>
  Effect.runSyncExit(
    nodeConfig.pipe(Effect.provideService(ConfigProvider.ConfigProvider, ConfigProvider.fromEnv({ env }))),
  )

const loaded = (env: Record<string, string>): NodeConfig => {
  const exit = load(env)
  if (Exit.isFailure(exit)) throw new Error(Cause.pretty(exit.cause))
  return exit.value
}

const failure = (env: Record<string, string>): string => {
  const exit = load(env)
  if (Exit.isSuccess(exit)) throw new Error(`expected ${JSON.stringify(env)} to be refused`)
  return String((Cause.squash(exit.cause) as Error).message)
}

describe("node configuration", () => {
  it("defaults to one embedded node on loopback port 8080 with the demo tenant", () => {
    const config = loaded({})
    expect(config.mode).toBe("embedded")
    expect(config.host).toBe("127.0.0.1")
    expect(config.port).toBe(8080)
    expect(config.dataDir).toBe("./data")
    expect(config.tenants).toEqual([{ tenantId: "demo", apiKey: "demo-key" }])
    expect(config.dynamodb.endpoint).toBeUndefined()
  })

  it("points aws mode at the local stack unless told otherwise, and has no demo tenant", () => {
    const config = loaded({ MODE: "aws", TENANTS: "acme:acme-secret-1,beta:beta-secret-2" })
    expect(config.host).toBe("0.0.0.0")
    expect(config.kafka.brokers).toEqual(["127.0.0.1:19092"])
    expect(config.dynamodb.endpoint).toBe("http://127.0.0.1:18000")
    expect(config.redis.url).toBe("redis://127.0.0.1:16379")
    expect(config.tenants.map((tenant) => tenant.tenantId)).toEqual(["acme", "beta"])
    const custom = loaded({ MODE: "aws", TENANTS: "acme:acme-secret-1", KAFKA_BROKERS: "k1:9092, k2:9092" })
    expect(custom.kafka.brokers).toEqual(["k1:9092", "k2:9092"])
  })

  it("refuses each invalid value with a message naming its variable", () => {
    expect(failure({ PORT: "abc" })).toContain("PORT")
    expect(failure({ PORT: "70000" })).toContain("PORT")
    expect(failure({ MODE: "cloud" })).toContain("MODE")
    expect(failure({ SHARD_COUNT: "0" })).toContain("SHARD_COUNT")
    expect(failure({ PAYLOAD_BYTES_MAX: "1.5" })).toContain("PAYLOAD_BYTES_MAX")
    expect(failure({ MODE: "aws" })).toContain("TENANTS")
    expect(failure({ TENANTS: "acme:short" })).toContain("TENANTS")
    expect(failure({ TENANTS: "acme:long-enough-key,acme:another-long-key" })).toContain("TENANTS")
    expect(failure({ TENANTS: "bad tenant:long-enough-key" })).toContain("TENANTS")
  })
})
