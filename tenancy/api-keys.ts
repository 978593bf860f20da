/**
 * API keys of the tenant file: a key is `<keyId>.<secret>`, and the file holds only the key id and
 * a salted scrypt hash of the secret, so a leaked file yields no usable key. The key id lets a
 * node find the one hash to check without trying every tenant's; the secret is 32 random bytes,
 * base64url.
 *
 * Hash format: `scrypt$<N>$<r>$<p>$<salt>$<hash>` (salt and hash base64url), so the cost can rise
 * for new keys while old hashes still verify.
 */
import { randomBytes, scryptSync, timingSafeEqual } from "node:crypto"

export const keyIdPattern = /^[A-Za-z0-9_-]{1,64}$/

/** scrypt's cost for new keys: 2^14 iterations of 8 blocks, 16 MiB, tens of milliseconds here. */
const defaultCost = { N: 2 ** 14, r: 8, p: 1 } as const
const hashBytes = 32
const saltBytes = 16
const secretBytes = 32
/** The highest cost a hash in the file may ask for: a hostile file must not exhaust memory. */
const costNMax = 2 ** 20

export interface ApiKeyHash {
  readonly N: number
  readonly r: number
  readonly p: number
  readonly salt: Buffer
  readonly hash: Buffer
}

const hashPattern = /^scrypt\$(\d+)\$(\d+)\$(\d+)\$([A-Za-z0-9_-]+)\$([A-Za-z0-9_-]+)$/

const isPowerOfTwo = (value: number): boolean => value > 1 && (value & (value - 1)) === 0

/** Parses a stored hash; a string says what is wrong with it. */
export const parseApiKeyHash = (text: string): ApiKeyHash | string => {
  const match = hashPattern.exec(text)
  if (match === null) return "must be scrypt$N$r$p$salt$hash (see `npm run api-key`)"
  const [N, r, p] = [Number(match[1]), Number(match[2]), Number(match[3])]
  if (!isPowerOfTwo(N) || N > costNMax) return `N must be a power of two up to ${costNMax}`
  if (r < 1 || r > 32 || p < 1 || p > 16) return "r must be 1-32 and p 1-16"
  const salt = Buffer.from(match[4] as string, "base64url")
  const hash = Buffer.from(match[5] as string, "base64url")
  if (salt.length < saltBytes) return `the salt must be at least ${saltBytes} bytes`
  if (hash.length !== hashBytes) return `the hash must be ${hashBytes} bytes`
  return { N, r, p, salt, hash }
}

const derive = (secret: string, { N, r, p, salt }: Omit<ApiKeyHash, "hash">): Buffer =>
  scryptSync(secret, salt, hashBytes, { N, r, p, maxmem: 256 * N * r + 1024 * 1024 })

/** True when `secret` is the secret the hash was made from (in constant time over the hash). */
export const verifySecret = (secret: string, stored: ApiKeyHash): boolean =>
  timingSafeEqual(derive(secret, stored), stored.hash)

/** Splits a presented key into its id and secret; undefined when it is not of the file's form. */
export const splitApiKey = (apiKey: string): { readonly keyId: string; readonly secret: string } | undefined => {
  const dot = apiKey.indexOf(".")
  if (dot <= 0 || dot === apiKey.length - 1) return undefined
  const keyId = apiKey.slice(0, dot)
  return keyIdPattern.test(keyId) ? { keyId, secret: apiKey.slice(dot + 1) } : undefined
}

/** A new key for `keyId`: what to give the partner, and what to put in the tenant file. */
export const mintApiKey = (keyId: string): { readonly apiKey: string; readonly hash: string } => {
  if (!keyIdPattern.test(keyId)) throw new Error(`key id "${keyId}" must be 1-64 of [A-Za-z0-9_-]`)
  const secret = randomBytes(secretBytes).toString("base64url")
  const salt = randomBytes(saltBytes)
  const hash = derive(secret, { ...defaultCost, salt })
  const { N, r, p } = defaultCost
  return {
    apiKey: `${keyId}.${secret}`,
    hash: `scrypt$${N}$${r}$${p}$${salt.toString("base64url")}$${hash.toString("base64url")}`,
  }
}
