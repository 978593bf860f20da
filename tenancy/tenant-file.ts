/**
 * The tenant file (`TENANTS_FILE`, JSON, or YAML when named `.yaml`/`.yml`): the tenants a node
 * serves, their API keys (each stored as a salted scrypt hash with its scopes), and their payment
 * policy (default hold, fraud rules, limits, exchange rates). Parsing validates everything at once and names the
 * first offending field; a file that does not validate is refused whole, so a node never runs
 * with half of a configuration. The directory it yields is immutable: a reload builds a new one.
 *
 * ```json
 * { "tenants": [
 *     { "tenantId": "acme",
 *       "keys": [{ "keyId": "acme-live-1", "hash": "scrypt$16384$8$1$...$...", "scopes": ["payments", "read"] }] } ] }
 * ```
 */
import { createHash } from "node:crypto"
import { Result, Schema } from "effect"
import YAML from "yaml"
import { type FxRateTable, makeRateTable, type RateTableError } from "../core/fx.ts"
import type { TenantId } from "../core/ids.ts"
import { isRiskConfigError, parseLimits, parseRules, type RiskRule } from "../core/risk.ts"
import { holdSecondsDefault, holdSecondsMax, type TenantPolicy, tenantPolicyOf } from "../core/tenant-policy.ts"
import { type ApiKeyHash, keyIdPattern, parseApiKeyHash } from "./api-keys.ts"

/** What a key may do: send payment commands, read accounts and payments, review held payments. */
export type Scope = "payments" | "read" | "ops"
export const scopes: ReadonlyArray<Scope> = ["payments", "read", "ops"]

const tenantIdPattern = /^[A-Za-z0-9_-]{1,64}$/

const KeySchema = Schema.Struct({
  keyId: Schema.String.check(Schema.isPattern(keyIdPattern)),
  hash: Schema.String,
  scopes: Schema.Array(Schema.Literals(scopes)).check(Schema.isMinLength(1)),
})

const TenantFileSchema = Schema.Struct({
  tenants: Schema.Array(
    Schema.Struct({
      tenantId: Schema.String.check(Schema.isPattern(tenantIdPattern)),
      /** How long an authorization holds when its request does not say; 7 days when unset. */
      defaultHoldSeconds: Schema.optionalKey(
        Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: holdSecondsMax })),
      ),
      /** How long a transfer a fraud rule sent to review waits for its decision; the default hold when unset. */
      reviewHoldSeconds: Schema.optionalKey(
        Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: holdSecondsMax })),
      ),
      /** Fraud rules, checked field by field by `parseRules` (core/risk.ts). */
      rules: Schema.optionalKey(Schema.Array(Schema.Unknown)),
      /** Payment limits, checked by `parseLimits`. */
      limits: Schema.optionalKey(Schema.Unknown),
      /** Exchange rates: 1 `base` = `rate` `quote`, with where the rate came from and when it was set. */
      fxRates: Schema.optionalKey(
        Schema.Array(
          Schema.Struct({
            base: Schema.String,
            quote: Schema.String,
            rate: Schema.String,
            source: Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(128)),
            asOf: Schema.String,
          }),
        ),
      ),
      keys: Schema.Array(KeySchema),
    }),
  ),
})

/** What the tenant file configures for a tenant beyond its keys. */
export interface TenantSettings {
  readonly defaultHoldMs: number | undefined
  /** Its fraud rules and limits; undefined when it configures neither. */
  readonly policy: TenantPolicy | undefined
}

export interface TenantKeyEntry {
  readonly tenantId: TenantId
  readonly settings: TenantSettings
  readonly keyId: string
  readonly scopes: ReadonlySet<Scope>
  readonly hash: ApiKeyHash
}

export interface TenantDirectory {
  /** The first 12 hex digits of the file's SHA-256: which version of the file is in force. */
  readonly version: string
  readonly tenants: ReadonlyMap<TenantId, TenantSettings>
  readonly keys: ReadonlyMap<string, TenantKeyEntry>
}

/** Why a file was refused: the field and what is wrong with it. */
export class TenantFileInvalid extends Error {}

const invalid = (message: string): never => {
  throw new TenantFileInvalid(message)
}

/** The tenant's rules and limits, validated with the path of each field in the file. */
interface PolicyFields {
  readonly rules?: ReadonlyArray<unknown>
  readonly limits?: unknown
  readonly reviewHoldSeconds?: number
  readonly fxRates?: ReadonlyArray<{ base: string; quote: string; rate: string; source: string; asOf: string }>
}

/** What is wrong with a rate table entry, in words an operator can act on. */
const rateProblem = (error: RateTableError): string => {
  switch (error.reason) {
    case "UNKNOWN_CURRENCY":
      return `${error.code} is not an ISO 4217 currency`
    case "SAME_CURRENCY":
      return `converts ${error.currency} into itself`
    case "DUPLICATE_PAIR":
      return `repeats the pair of fxRates[${error.firstIndex}]`
    case "INVALID_RATE":
      return `rate is not a positive decimal of at most 12 integer and 12 fraction digits (${error.rateError})`
    case "INVALID_AS_OF":
      return "asOf is not an ISO 8601 time"
  }
}

const ratesOf = (fxRates: PolicyFields["fxRates"], at: string): FxRateTable | undefined => {
  if (fxRates === undefined) return undefined
  const configs = fxRates.map((entry) => ({
    ...entry,
    asOfMs: isoTimePattern.test(entry.asOf) ? Date.parse(entry.asOf) : Number.NaN,
  }))
  const table = makeRateTable(configs)
  return "reason" in table ? invalid(`${at}.fxRates[${table.index}]: ${rateProblem(table)}`) : table
}

/** An ISO 8601 time with a date, a time and a zone ("2026-12-01T09:30:00Z"). */
const isoTimePattern = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2})$/

const policyOf = (tenant: PolicyFields, at: string, defaultHoldMs: number | undefined): TenantPolicy | undefined => {
  if (tenant.rules === undefined && tenant.limits === undefined && tenant.fxRates === undefined) return undefined
  const rules = parseRules(tenant.rules ?? [])
  if (isRiskConfigError(rules)) return invalid(`${at}.${rules.message}`)
  const limits = tenant.limits === undefined ? undefined : parseLimits(tenant.limits)
  if (isRiskConfigError(limits)) return invalid(`${at}.${limits.message}`)
  const reviewHoldMs =
    tenant.reviewHoldSeconds === undefined
      ? (defaultHoldMs ?? holdSecondsDefault * 1000)
      : tenant.reviewHoldSeconds * 1000
  return tenantPolicyOf(rules as ReadonlyArray<RiskRule>, limits, reviewHoldMs, ratesOf(tenant.fxRates, at))
}

export type TenantFileFormat = "json" | "yaml"

/** YAML for a `.yaml` or `.yml` file, JSON otherwise. */
export const formatOfPath = (filePath: string): TenantFileFormat => (/\.ya?ml$/i.test(filePath) ? "yaml" : "json")

const parseText = (text: string, format: TenantFileFormat): unknown => {
  try {
    // A YAML document with duplicate keys or other ambiguities is an error, not a guess.
    return format === "json" ? JSON.parse(text) : YAML.parse(text, { uniqueKeys: true, strict: true })
  } catch (error) {
    return invalid(`not ${format === "json" ? "JSON" : "YAML"}: ${(error as Error).message}`)
  }
}

/** Validates a tenant file's text and builds its directory; throws `TenantFileInvalid`. */
export const parseTenantFile = (text: string, format: TenantFileFormat = "json"): TenantDirectory => {
  const json = parseText(text, format)
  const decoded = Schema.decodeUnknownResult(TenantFileSchema)(json, { onExcessProperty: "error" })
  if (Result.isFailure(decoded)) return invalid(decoded.failure.message)
  const tenants = new Map<TenantId, TenantSettings>()
  const keys = new Map<string, TenantKeyEntry>()
  for (const [tenantIndex, tenant] of decoded.success.tenants.entries()) {
    const tenantId = tenant.tenantId as TenantId
    if (tenants.has(tenantId)) invalid(`tenants[${tenantIndex}].tenantId: "${tenantId}" appears twice`)
    const { defaultHoldSeconds } = tenant
    const defaultHoldMs = defaultHoldSeconds === undefined ? undefined : defaultHoldSeconds * 1000
    const settings: TenantSettings = {
      defaultHoldMs,
      policy: policyOf(tenant, `tenants[${tenantIndex}]`, defaultHoldMs),
    }
    tenants.set(tenantId, settings)
    for (const [keyIndex, key] of tenant.keys.entries()) {
      const at = `tenants[${tenantIndex}].keys[${keyIndex}]`
      if (keys.has(key.keyId)) invalid(`${at}.keyId: "${key.keyId}" appears twice`)
      const hash = parseApiKeyHash(key.hash)
      if (typeof hash === "string") return invalid(`${at}.hash: ${hash}`)
      keys.set(key.keyId, { tenantId, settings, keyId: key.keyId, scopes: new Set(key.scopes), hash })
    }
  }
  const version = createHash("sha256").update(text).digest("hex").slice(0, 12)
  return { version, tenants, keys }
}
