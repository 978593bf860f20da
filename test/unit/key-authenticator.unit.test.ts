import { describe, expect, it } from "vitest"
import { mintApiKey } from "../../tenancy/api-keys.ts"
import { makeKeyAuthenticator } from "../../tenancy/key-authenticator.ts"
import { parseTenantFile, type TenantDirectory } from "../../tenancy/tenant-file.ts"

const key = mintApiKey("acme-1")
const rotated = mintApiKey("acme-1")
const fileOf = (hash: string, scopes: ReadonlyArray<string> = ["payments", "read"]) =>
  parseTenantFile(JSON.stringify({ tenants: [{ tenantId: "acme", keys: [{ keyId: "acme-1", hash, scopes }] }] }))

const setUp = (initial: TenantDirectory) => {
  let directory: TenantDirectory | undefined = initial
  let nowMs = 0
  const keys = makeKeyAuthenticator({
    environmentKeys: [{ tenantId: "demo", apiKey: "demo-key-1" }],
    directory: () => directory,
    nowMs: () => nowMs,
    verifiedMax: 2,
    failureSpacingMs: 1_000,
  })
  return {
    keys,
    replace: (next: TenantDirectory | undefined) => {
      directory = next
    },
    advance: (ms: number) => {
      nowMs += ms
    },
  }
}

describe("key authenticator", () => {
  it("given keys of TENANTS and of the file, when presented, then each yields its tenant and scopes", () => {
    const { keys } = setUp(fileOf(key.hash, ["read"]))
    expect(keys.authenticate("demo-key-1")).toMatchObject({ tenantId: "demo", keyId: undefined })
    expect([...(keys.authenticate("demo-key-1")?.scopes ?? [])]).toEqual(["payments", "read"])
    expect(keys.authenticate(key.apiKey)).toMatchObject({ tenantId: "acme", keyId: "acme-1" })
    expect([...(keys.authenticate(key.apiKey)?.scopes ?? [])]).toEqual(["read"])
    for (const wrong of ["", "demo-key-2", "acme-2.secret", `${key.apiKey}x`, "x".repeat(513)]) {
      expect(keys.authenticate(wrong)).toBeUndefined()
    }
  })

  it("given a failed check of a key id, when another guess follows within the spacing, then it is refused unchecked", () => {
    const { keys, advance } = setUp(fileOf(key.hash))
    expect(keys.authenticate("acme-1.wrong")).toBeUndefined()
    // The right key too: within the spacing nothing of that key id is hashed.
    expect(keys.authenticate(key.apiKey)).toBeUndefined()
    advance(1_000)
    expect(keys.authenticate(key.apiKey)?.tenantId).toBe("acme")
    // Verified keys are remembered: a failure of another guess does not lock the verified key out.
    expect(keys.authenticate("acme-1.wrong")).toBeUndefined()
    expect(keys.authenticate(key.apiKey)?.tenantId).toBe("acme")
  })

  it("given a reload, when a key's hash, scopes or tenant changed, then the principal follows the file", () => {
    const { keys, replace, advance } = setUp(fileOf(key.hash))
    const principal = keys.authenticate(key.apiKey)
    if (principal === undefined) throw new Error("not admitted")
    // Same hash, other scopes: the open principal takes the new scopes.
    replace(fileOf(key.hash, ["read"]))
    expect([...(keys.current(principal)?.scopes ?? [])]).toEqual(["read"])
    expect(keys.authenticate(key.apiKey)?.tenantId).toBe("acme")
    // Rotated: the old secret no longer admits, and an open principal of it lapses.
    replace(fileOf(rotated.hash))
    expect(keys.current(principal)).toBeUndefined()
    expect(keys.authenticate(key.apiKey)).toBeUndefined()
    advance(1_000)
    expect(keys.authenticate(rotated.apiKey)?.tenantId).toBe("acme")
    // Removed with its tenant.
    replace(parseTenantFile(JSON.stringify({ tenants: [] })))
    expect(keys.authenticate(rotated.apiKey)).toBeUndefined()
    expect(keys.current(principal)).toBeUndefined()
    const demo = keys.authenticate("demo-key-1")
    expect(demo === undefined ? undefined : keys.current(demo)).toBe(demo)
  })
})
