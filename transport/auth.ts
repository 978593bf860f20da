/**
 * Where a request's API key is: an `Authorization: Bearer` header, or `?apiKey=` on the WebSocket
 * upgrade for browsers, which cannot set headers there. Who the key is, is
 * `tenancy/key-authenticator.ts`'s: the tenant comes from the key only, never from a request body.
 */
const bearerPattern = /^bearer[ \t]+(\S+)[ \t]*$/i

/** The key of an `Authorization: Bearer <key>` header value, or "" when there is none. */
export const bearerKey = (authorization: string): string => bearerPattern.exec(authorization)?.[1] ?? ""
