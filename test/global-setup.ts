/**
 * vitest global setup: makes the local stack answer before any test file runs, and afterwards stops
 * only what this run started, so a stack a developer (or another helper) already runs stays up.
 */
import { stackDown, stackUp } from "../scripts/local-stack/stack.ts"
import { ensureBuilt } from "./support/node-process.ts"

export default async function setup(): Promise<() => Promise<void>> {
  // Compiled once here, before the workers start, so none of them rewrites dist/ under a running node.
  ensureBuilt()
  const result = await stackUp({ log: (line) => console.log(`[local-stack] ${line}`) })
  // Test files and the node processes they spawn find the stack through the node's own variables,
  // so a stack moved to other ports (STACK_* variables) is used everywhere.
  process.env.KAFKA_BROKERS = result.kafkaBrokers
  process.env.DYNAMODB_ENDPOINT = result.dynamodbEndpoint
  process.env.REDIS_URL = result.redisUrl
  return async () => {
    if (result.started.length > 0) await stackDown({ only: result.started })
  }
}
