/**
 * Who a presented API key is: its tenant and scopes. Keys come from `TENANTS` (in clear in the
 * environment, the simple case: scopes `payments` and `read`) and from the tenant file (as
 * `<keyId>.<secret>`, checked against the file's scrypt hash).
 *
 * scrypt is slow on purpose (tens of milliseconds), and authentication runs on the event loop, so a
 * key is checked once: a verified key is remembered by the SHA-256 of the whole key, as long as
 * the file keeps the same hash for it (a reload that leaves a key alone does not check it again).
 * What remains is bounded: at most `verifiedMax` remembered keys, and at most one failed check per
 * key id per `failureSpacingMs`, so guessing secrets of a known key id costs the node one hash a
 * second, not one per request. The price: for that second, the key id's real key is refused too
 * unless this node has verified it before (as it has for every partner already connected).
 */
import { createHash } from "node:crypto"
import type { TenantId } from "../core/ids.ts"
import { splitApiKey, verifySecret } from "./api-keys.ts"
import type { Scope, TenantDirectory, TenantKeyEntry, TenantSettings } from "./tenant-file.ts"

export interface Principal {
  readonly tenantId: TenantId
  readonly settings: TenantSettings
  readonly scopes: ReadonlySet<Scope>
  /** The tenant file's key, or undefined for a key of `TENANTS`. */
  readonly keyId: string | undefined
  /** The stored hash the key was verified against: a key replaced in the file no longer admits. */
  readonly keyHash: Buffer | undefined
}

export interface EnvironmentKey {
  readonly tenantId: string
  readonly apiKey: string
}

export interface KeyAuthenticator {
  readonly authenticate: (apiKey: string) => Principal | undefined
  /**
   * The principal as the tenant file in force now has it (an open socket checks before each
   * request): undefined once its key or tenant was removed.
   */
  readonly current: (principal: Principal) => Principal | undefined
  /**
   * The principal of a request another node of the cluster authenticated and checked the scopes of
   * (it forwards requests for shards this node owns): the tenant's settings as this node's own
   * configuration has them; undefined for a tenant this node does not know.
   */
  readonly peerPrincipal: (tenantId: string) => Principal | undefined
}

const allScopes: ReadonlySet<Scope> = new Set<Scope>(["payments", "read", "ops"])

/** Longest key accepted; longer ones are refused before hashing. */
const apiKeyLengthMax = 512
const environmentScopes: ReadonlySet<Scope> = new Set<Scope>(["payments", "read"])
const environmentSettings: TenantSettings = { defaultHoldMs: undefined, policy: undefined }

const digestOf = (apiKey: string): string => createHash("sha256").update(apiKey).digest("base64")

const principalOf = (entry: TenantKeyEntry): Principal => ({
  tenantId: entry.tenantId,
  settings: entry.settings,
  scopes: entry.scopes,
  keyId: entry.keyId,
  keyHash: entry.hash.hash,
})

export const makeKeyAuthenticator = (options: {
  readonly environmentKeys: ReadonlyArray<EnvironmentKey>
  /** The tenant file in force, or undefined when the node has none. */
  readonly directory: () => TenantDirectory | undefined
  readonly nowMs: () => number
  readonly verifiedMax: number
  readonly failureSpacingMs: number
}): KeyAuthenticator => {
  // Looked up by digest: the map lookup's timing can then only reveal something about the digest of a guess.
  const byDigest = new Map<string, Principal>()
  for (const { tenantId, apiKey } of options.environmentKeys)
    byDigest.set(digestOf(apiKey), {
      tenantId: tenantId as TenantId,
      settings: environmentSettings,
      scopes: environmentScopes,
      keyId: undefined,
      keyHash: undefined,
    })
  const environmentTenants = new Set(options.environmentKeys.map((key) => key.tenantId))
  /** Digest of a verified file key -> the stored hash it was verified against. */
  const verified = new Map<string, Buffer>()
  const lastFailureMs = new Map<string, number>()

  const remember = (digest: string, hash: Buffer) => {
    if (verified.size >= options.verifiedMax) verified.delete(verified.keys().next().value as string)
    verified.set(digest, hash)
  }

  const fileKey = (apiKey: string, digest: string): Principal | undefined => {
    const parts = splitApiKey(apiKey)
    const entry = parts === undefined ? undefined : options.directory()?.keys.get(parts.keyId)
    if (parts === undefined || entry === undefined) return undefined
    if (verified.get(digest)?.equals(entry.hash.hash)) return principalOf(entry)
    const now = options.nowMs()
    if (now - (lastFailureMs.get(entry.keyId) ?? Number.NEGATIVE_INFINITY) < options.failureSpacingMs) return undefined
    if (!verifySecret(parts.secret, entry.hash)) {
      if (lastFailureMs.size >= options.verifiedMax) lastFailureMs.clear()
      lastFailureMs.set(entry.keyId, now)
      return undefined
    }
    remember(digest, entry.hash.hash)
    return principalOf(entry)
  }

  return {
    authenticate: (apiKey) => {
      if (apiKey.length === 0 || apiKey.length > apiKeyLengthMax) return undefined
      const digest = digestOf(apiKey)
      return byDigest.get(digest) ?? fileKey(apiKey, digest)
    },
    peerPrincipal: (tenantId) => {
      const fileSettings = options.directory()?.tenants.get(tenantId as TenantId)
      const known = fileSettings !== undefined || environmentTenants.has(tenantId)
      if (!known) return undefined
      return {
        tenantId: tenantId as TenantId,
        settings: fileSettings ?? environmentSettings,
        scopes: allScopes,
        keyId: undefined,
        keyHash: undefined,
      }
    },
    current: (principal) => {
      if (principal.keyId === undefined) return principal
      const entry = options.directory()?.keys.get(principal.keyId)
      if (entry === undefined || entry.tenantId !== principal.tenantId) return undefined
      if (principal.keyHash === undefined || !entry.hash.hash.equals(principal.keyHash)) return undefined
      return entry.scopes === principal.scopes && entry.settings === principal.settings ? principal : principalOf(entry)
    },
  }
}
