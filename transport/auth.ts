/**
 * Where a request's API key is: an `Authorization: Bearer` header, or `?apiKey=` on the WebSocket
 * upgrade for browsers, which cannot set headers there. Who the key is, is
 * `tenancy/key-authenticator.ts`'s: the tenant comes from the key only, never from a request body.
 */
import { createHash, timingSafeEqual } from "node:crypto"

const bearerPattern = /^bearer[ \t]+(\S+)[ \t]*$/i

/** The key of an `Authorization: Bearer <key>` header value, or "" when there is none. */
export const bearerKey = (authorization: string): string => bearerPattern.exec(authorization)?.[1] ?? ""

/**
 * A check of the operators' key that takes the same time whatever the presented key (both sides
 * hashed first, so lengths do not show either): the key guards the cluster's layout.
 */
export const adminKeyCheck = (adminApiKey: string): ((presented: string) => boolean) => {
  const expected = createHash("sha256").update(adminApiKey).digest()
  return (presented) => timingSafeEqual(createHash("sha256").update(presented).digest(), expected)
}
