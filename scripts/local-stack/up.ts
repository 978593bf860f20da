/**
 * `npm run stack:up`: starts (or finds running) the local stack and prints where it is. Returns when
 * every server answers; the servers keep running after this process exits.
 */
import { stackDirectory } from "./process-control.ts"
import { stackUp } from "./stack.ts"

const startedAt = Date.now()
try {
  const result = await stackUp({ log: (line) => console.log(line) })
  console.log(
    `local stack ready in ${((Date.now() - startedAt) / 1000).toFixed(1)} s (files under ${stackDirectory()})`,
  )
  console.log(`  KAFKA_BROKERS=${result.kafkaBrokers}`)
  console.log(`  DYNAMODB_ENDPOINT=${result.dynamodbEndpoint}`)
  console.log(`  REDIS_URL=${result.redisUrl}`)
} catch (error) {
  console.error(error instanceof Error ? error.message : error)
  process.exitCode = 1
}
