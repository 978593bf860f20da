/**
 * API-key authentication: the key (an `Authorization: Bearer` header, or `?apiKey=` on the
 * WebSocket upgrade for browsers, which cannot set headers there) selects the tenant. The tenant
 * comes from the key only, never from a request body.
 */
import { createHash } from "node:crypto"
import type { TenantKey } from "../config.ts"
import type { TenantId } from "../core/ids.ts"

/** Longest key accepted; longer ones are refused before hashing. */
const apiKeyLengthMax = 512

const digestOf = (apiKey: string): string => createHash("sha256").update(apiKey).digest("base64")

export type Authenticator = (apiKey: string) => TenantId | undefined

/**
 * Looks keys up by their SHA-256 digest: the map lookup's timing can then only reveal something
 * about the digest of a guess, not about a real key's characters.
 */
export const makeAuthenticator = (tenants: ReadonlyArray<TenantKey>): Authenticator => {
  const byDigest = new Map<string, TenantId>()
  for (const tenant of tenants) byDigest.set(digestOf(tenant.apiKey), tenant.tenantId as TenantId)
  return (apiKey) =>
    apiKey.length === 0 || apiKey.length > apiKeyLengthMax ? undefined : byDigest.get(digestOf(apiKey))
}

const bearerPattern = /^bearer[ \t]+(\S+)[ \t]*$/i

/** The key of an `Authorization: Bearer <key>` header value, or "" when there is none. */
export const bearerKey = (authorization: string): string => bearerPattern.exec(authorization)?.[1] ?? ""
