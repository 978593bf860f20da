/**
 * Mints an API key for the tenant file: prints the key (give it to the partner, once; it is not
 * stored anywhere) and the key entry to put in the file (its salted hash).
 *   npm run api-key -- <keyId> [scope ...]     (scopes: payments read ops; default payments read)
 */
import { mintApiKey } from "../tenancy/api-keys.ts"
import { type Scope, scopes } from "../tenancy/tenant-file.ts"

const [keyId, ...given] = process.argv.slice(2)
if (keyId === undefined) {
  console.error("usage: npm run api-key -- <keyId> [payments] [read] [ops]")
  process.exit(2)
}
const unknown = given.filter((scope) => !scopes.includes(scope as Scope))
if (unknown.length > 0) {
  console.error(`unknown scope(s) ${unknown.join(", ")}: use ${scopes.join(", ")}`)
  process.exit(2)
}
const { apiKey, hash } = mintApiKey(keyId)
console.log(`API key (shown once): ${apiKey}`)
console.log(
  `tenant file entry:    ${JSON.stringify({ keyId, hash, scopes: given.length > 0 ? given : ["payments", "read"] })}`,
)
