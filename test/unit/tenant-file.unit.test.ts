import { describe, expect, it } from "vitest"
import { mintApiKey, parseApiKeyHash, splitApiKey, verifySecret } from "../../tenancy/api-keys.ts"
import { parseTenantFile, TenantFileInvalid } from "../../tenancy/tenant-file.ts"

const minted = mintApiKey("acme-live-1")
const fileWith = (tenants: unknown): string => JSON.stringify({ tenants })
const acme = (keys: unknown = [{ keyId: "acme-live-1", hash: minted.hash, scopes: ["payments", "read"] }]) => ({
  tenantId: "acme",
  keys,
})

const refusal = (text: string): string => {
  try {
    parseTenantFile(text)
  } catch (error) {
    if (error instanceof TenantFileInvalid) return error.message
    throw error
  }
  throw new Error("the file was accepted")
}

describe("API keys", () => {
  it("given a minted key, when its secret is checked against the stored hash, then only that secret verifies", () => {
    const parts = splitApiKey(minted.apiKey)
    expect(parts?.keyId).toBe("acme-live-1")
    const stored = parseApiKeyHash(minted.hash)
    if (typeof stored === "string") throw new Error(stored)
    expect(verifySecret(parts?.secret as string, stored)).toBe(true)
    expect(verifySecret(`${parts?.secret}x`, stored)).toBe(false)
    expect(verifySecret(mintApiKey("acme-live-1").apiKey.split(".")[1] as string, stored)).toBe(false)
  })

  it("given keys not of the form keyId.secret, when split, then none is taken", () => {
    for (const key of ["", "nodot", ".secret", "id.", "bad id.secret", `${"a".repeat(65)}.secret`]) {
      expect(splitApiKey(key)).toBeUndefined()
    }
    expect(splitApiKey("id.sec.ret")).toEqual({ keyId: "id", secret: "sec.ret" })
  })

  it("given stored hashes with a bad shape or cost, when parsed, then each says what is wrong", () => {
    const [, , , , salt, hash] = minted.hash.split("$")
    expect(parseApiKeyHash("plain-text-key")).toMatch(/scrypt\$N\$r\$p/)
    expect(parseApiKeyHash(`scrypt$1000$8$1$${salt}$${hash}`)).toMatch(/power of two/)
    expect(parseApiKeyHash(`scrypt$${2 ** 21}$8$1$${salt}$${hash}`)).toMatch(/power of two up to/)
    expect(parseApiKeyHash(`scrypt$16384$0$1$${salt}$${hash}`)).toMatch(/r must be/)
    expect(parseApiKeyHash(`scrypt$16384$8$1$c2FsdA$${hash}`)).toMatch(/salt/)
    expect(parseApiKeyHash(`scrypt$16384$8$1$${salt}$aGFzaA`)).toMatch(/hash must be 32 bytes/)
  })
})

describe("tenant file", () => {
  it("given a valid file, when parsed, then it lists the tenants and keys with their scopes and a version of the content", () => {
    const text = fileWith([acme(), { tenantId: "beta", keys: [] }])
    const directory = parseTenantFile(text)
    expect([...directory.tenants.keys()]).toEqual(["acme", "beta"])
    expect(directory.keys.get("acme-live-1")?.tenantId).toBe("acme")
    expect([...(directory.keys.get("acme-live-1")?.scopes ?? [])]).toEqual(["payments", "read"])
    expect(directory.tenants.get("acme" as never)?.defaultHoldMs).toBeUndefined()
    expect(parseTenantFile(fileWith([{ ...acme(), defaultHoldSeconds: 90 }])).tenants.get("acme" as never)).toEqual({
      defaultHoldMs: 90_000,
    })
    expect(directory.version).toMatch(/^[0-9a-f]{12}$/)
    expect(parseTenantFile(text).version).toBe(directory.version)
    expect(parseTenantFile(fileWith([acme()])).version).not.toBe(directory.version)
  })

  it("given invalid files, when parsed, then each is refused with the offending field named", () => {
    expect(refusal("{")).toMatch(/^not JSON/)
    expect(refusal(JSON.stringify({ tenants: [acme()], extra: 1 }))).toMatch(/excess property[\s\S]*\["extra"\]/)
    expect(refusal(fileWith([{ ...acme(), tenantId: "no spaces" }]))).toMatch(/\["tenants"\]\[0\]\["tenantId"\]/)
    expect(refusal(fileWith([acme([{ keyId: "k1", hash: minted.hash, scopes: ["admin"] }])]))).toMatch(
      /\["tenants"\]\[0\]\["keys"\]\[0\]\["scopes"\]\[0\]/,
    )
    expect(refusal(fileWith([acme([{ keyId: "k1", hash: minted.hash, scopes: [] }])]))).toMatch(/\["scopes"\]/)
    expect(refusal(fileWith([acme([{ keyId: "k1", hash: "secret-in-clear", scopes: ["read"] }])]))).toBe(
      "tenants[0].keys[0].hash: must be scrypt$N$r$p$salt$hash (see `npm run api-key`)",
    )
    expect(refusal(fileWith([acme(), acme([])]))).toBe('tenants[1].tenantId: "acme" appears twice')
    for (const defaultHoldSeconds of [0, 2_592_001, 1.5, "60"]) {
      expect(refusal(fileWith([{ ...acme(), defaultHoldSeconds }]))).toMatch(
        /\["tenants"\]\[0\]\["defaultHoldSeconds"\]/,
      )
    }
    expect(refusal(fileWith([acme(), { tenantId: "beta", keys: acme().keys }]))).toBe(
      'tenants[1].keys[0].keyId: "acme-live-1" appears twice',
    )
  })

  it("given rules, limits and rates, when parsed, then the tenant's policy has them in minor units", () => {
    const policy = parseTenantFile(
      fileWith([
        {
          ...acme(),
          defaultHoldSeconds: 120,
          rules: [{ id: "large", kind: "amount-limit", outcome: "review", amountMax: { EUR: "100.00" } }],
          limits: { paymentMax: { EUR: "500.00" }, dailyVolumeMax: { JPY: "100000" } },
          fxRates: [{ base: "EUR", quote: "USD", rate: "1.0850", source: "ecb", asOf: "2026-12-01T16:00:00Z" }],
        },
      ]),
    ).tenants.get("acme" as never)?.policy
    expect(policy?.rules).toEqual([
      { kind: "amount-limit", id: "large", outcome: "review", amountMinorMax: new Map([["EUR", 10_000n]]) },
    ])
    expect(policy?.limits.paymentMaxMinor.get("EUR" as never)).toBe(50_000n)
    expect(policy?.limits.dailyVolumeMaxMinor.get("JPY" as never)).toBe(100_000n)
    // The review hold defaults to the tenant's default hold; a daily volume needs the hourly history.
    expect(policy?.reviewHoldMs).toBe(120_000)
    expect(policy?.history?.keepsVolume).toBe(true)
    expect(policy?.rates?.entries.get("EUR/USD")).toMatchObject({
      rate: { numerator: 10_850n, denominator: 10_000n },
      asOfMs: Date.parse("2026-12-01T16:00:00Z"),
    })
    expect(parseTenantFile(fileWith([acme()])).tenants.get("acme" as never)?.policy).toBeUndefined()
  })

  it("given bad rules, limits or rates, when parsed, then the refusal names the tenant's field", () => {
    const withPolicy = (fields: Record<string, unknown>) => refusal(fileWith([{ ...acme(), ...fields }]))
    expect(withPolicy({ rules: [{ id: "x", kind: "velocity", outcome: "review", windowMs: 1000, countMx: 3 }] })).toBe(
      "tenants[0].rules[0].countMx: is not a field of kind velocity",
    )
    expect(
      withPolicy({ rules: [{ id: "x", kind: "velocity", outcome: "review", windowMs: 1000, countMax: 999 }] }),
    ).toBe("tenants[0].rules[0].countMax: must be at most 256")
    expect(withPolicy({ limits: { paymentMax: { EUR: "1.001" } } })).toMatch(/^tenants\[0\]\.limits\.paymentMax\.EUR: /)
    expect(withPolicy({ limits: { perDay: {} } })).toBe("tenants[0].limits.perDay: is not a limit")
    const rate = { base: "EUR", quote: "USD", rate: "1.08", source: "ecb", asOf: "2026-12-01T16:00:00Z" }
    expect(withPolicy({ fxRates: [rate, rate] })).toBe("tenants[0].fxRates[1]: repeats the pair of fxRates[0]")
    expect(withPolicy({ fxRates: [{ ...rate, quote: "XXY" }] })).toBe(
      "tenants[0].fxRates[0]: XXY is not an ISO 4217 currency",
    )
    expect(withPolicy({ fxRates: [{ ...rate, rate: "-1" }] })).toMatch(/^tenants\[0\]\.fxRates\[0\]: rate is not/)
    expect(withPolicy({ fxRates: [{ ...rate, asOf: "yesterday" }] })).toBe(
      "tenants[0].fxRates[0]: asOf is not an ISO 8601 time",
    )
  })

  it("given the same file as YAML, when parsed as YAML, then it gives the same tenants; duplicate keys are refused", () => {
    const yaml = [
      "tenants:",
      "  - tenantId: acme",
      "    defaultHoldSeconds: 90",
      "    keys:",
      "      - keyId: acme-live-1",
      `        hash: "${minted.hash}"`,
      "        scopes: [payments, read]",
    ].join("\n")
    const directory = parseTenantFile(yaml, "yaml")
    expect(directory.tenants.get("acme" as never)?.defaultHoldMs).toBe(90_000)
    expect([...(directory.keys.get("acme-live-1")?.scopes ?? [])]).toEqual(["payments", "read"])
    expect(() => parseTenantFile("tenants: []\ntenants: []", "yaml")).toThrow(/not YAML/)
  })
})
