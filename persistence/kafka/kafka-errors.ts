/**
 * Classification of what kafkajs throws into the Journal port's two failures. kafkajs wraps broker
 * errors (retry exhaustion, non-retriable bail-outs) in its own errors and keeps the broker's in
 * `cause`, so the whole chain is searched for a fencing code.
 */

/**
 * Broker error types that mean "a newer writer owns this transactional id". kafkajs 2.2.4 predates
 * PRODUCER_FENCED (code 90, KIP-588): it turns that code into KAFKAJS_UNKNOWN_ERROR_CODE with the
 * message "Unknown error code 90", matched below. Kafka 3.x answers kafkajs's old request versions
 * with INVALID_PRODUCER_EPOCH instead, which is the one the tests meet.
 */
const fencingTypes = new Set([
  "INVALID_PRODUCER_EPOCH",
  "PRODUCER_FENCED",
  "TRANSACTIONAL_ID_AUTHORIZATION_FAILED",
  "INVALID_PRODUCER_ID_MAPPING",
])
const producerFencedCode = 90

interface ErrorLink {
  readonly type?: unknown
  readonly code?: unknown
  readonly message?: unknown
  readonly name?: unknown
  readonly cause?: unknown
}

/** The error and its causes, outermost first; bounded so a cyclic cause cannot loop. */
const causeChain = (error: unknown): ReadonlyArray<ErrorLink> => {
  const chain: Array<ErrorLink> = []
  let current: unknown = error
  while (typeof current === "object" && current !== null && chain.length < 16) {
    const link = current as ErrorLink
    if (chain.includes(link)) break
    chain.push(link)
    current = link.cause
  }
  return chain
}

export const isFencingError = (error: unknown): boolean =>
  causeChain(error).some(
    (link) =>
      (typeof link.type === "string" && fencingTypes.has(link.type)) ||
      link.code === producerFencedCode ||
      (typeof link.message === "string" && link.message.includes(`Unknown error code ${producerFencedCode}`)),
  )

/** One line naming every link of the chain, for the failure message the runtime logs. */
export const describeKafkaError = (error: unknown): string => {
  const chain = causeChain(error)
  if (chain.length === 0) return String(error)
  return chain
    .map((link) => {
      const name = typeof link.name === "string" ? link.name : "Error"
      const type = typeof link.type === "string" ? ` ${link.type}` : ""
      const message = typeof link.message === "string" ? `: ${link.message}` : ""
      return `${name}${type}${message}`
    })
    .join(" <- ")
}
