/**
 * Classification of what @platformatic/kafka rejects with into the Journal port's two failures, and
 * the one-line description the runtime logs. A broker refusal arrives as a `ResponseError` (an
 * AggregateError) whose `errors` hold one `ProtocolError` per refused field, each naming the
 * broker's error in `apiId`; an operation retried more than once wraps all its attempts in a
 * `MultipleErrors`. So the whole tree, `errors` and `cause` alike, is searched.
 */

/**
 * Broker errors that mean "a newer writer owns this transactional id". This client sends the
 * newest request versions the broker offers, which Kafka 3.9 answers with PRODUCER_FENCED
 * (InitProducerId, AddPartitionsToTxn, EndTxn) or INVALID_PRODUCER_EPOCH (Produce). The client itself only
 * recognises INVALID_PRODUCER_EPOCH as fencing (its `producerFenced` flag), so the codes are
 * matched here rather than through that flag.
 */
const fencingCodes = new Set([
  "INVALID_PRODUCER_EPOCH",
  "PRODUCER_FENCED",
  "TRANSACTIONAL_ID_AUTHORIZATION_FAILED",
  "INVALID_PRODUCER_ID_MAPPING",
])

interface ErrorNode {
  readonly name?: unknown
  readonly message?: unknown
  /** The broker's error name on a ProtocolError (`PRODUCER_FENCED`, `CONCURRENT_TRANSACTIONS`, ...). */
  readonly apiId?: unknown
  readonly errors?: unknown
  readonly cause?: unknown
}

/** Bound on the nodes visited: a cyclic or very wide tree cannot loop or flood the log line. */
const nodesMax = 32

/** The error and everything under it (`errors`, then `cause`), breadth first, each node once. */
const errorTree = (error: unknown): ReadonlyArray<ErrorNode> => {
  const nodes: Array<ErrorNode> = []
  const queue: Array<unknown> = [error]
  while (queue.length > 0 && nodes.length < nodesMax) {
    const current = queue.shift()
    if (typeof current !== "object" || current === null) continue
    const node = current as ErrorNode
    if (nodes.includes(node)) continue
    nodes.push(node)
    if (Array.isArray(node.errors)) queue.push(...node.errors)
    queue.push(node.cause)
  }
  return nodes
}

/** Whether the broker refused with `code` anywhere in the error's tree. */
export const hasBrokerError = (error: unknown, code: string): boolean =>
  errorTree(error).some((node) => node.apiId === code)

export const isFencingError = (error: unknown): boolean =>
  errorTree(error).some((node) => typeof node.apiId === "string" && fencingCodes.has(node.apiId))

/** One line naming every node of the tree, for the failure message the runtime logs. */
export const describeKafkaError = (error: unknown): string => {
  const nodes = errorTree(error)
  if (nodes.length === 0) return String(error)
  return nodes
    .map((node) => {
      const name = typeof node.name === "string" ? node.name : "Error"
      const code = typeof node.apiId === "string" ? ` ${node.apiId}` : ""
      const message = typeof node.message === "string" ? `: ${node.message}` : ""
      return `${name}${code}${message}`
    })
    .join(" <- ")
}
