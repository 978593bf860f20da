/**
 * `npm run stack:down [kafka|dynamodb|redis ...]`: stops the servers the pid files name (all three
 * by default). Data directories stay, so the next `stack:up` finds the same topics and tables.
 */
import type { ServerName } from "./process-control.ts"
import { stackDown } from "./stack.ts"

const serverNames: ReadonlyArray<ServerName> = ["kafka", "dynamodb", "redis"]
const isServerName = (text: string): text is ServerName => (serverNames as ReadonlyArray<string>).includes(text)

const requested = process.argv.slice(2)
const unknown = requested.filter((text) => !isServerName(text))
if (unknown.length > 0) {
  console.error(`unknown server(s): ${unknown.join(", ")}; expected some of ${serverNames.join(", ")}`)
  process.exitCode = 2
} else {
  const only = requested.filter(isServerName)
  await stackDown(only.length > 0 ? { only } : {})
  console.log(`stopped ${only.length > 0 ? only.join(", ") : "the local stack"}`)
}
