/**
 * What the WebSocket and HTTP edges of one server share: the processor, the authenticator, the
 * configured limits, and the counts of requests in flight (bounded by the limits, and what a
 * graceful close waits for).
 */
import type { Processor } from "../actors/processor.ts"
import type { NodeConfig } from "../config.ts"
import type { KeyAuthenticator } from "../tenancy/key-authenticator.ts"

export interface EdgeState {
  readonly processor: Processor
  readonly keys: KeyAuthenticator
  readonly edge: NodeConfig["edge"]
  /** HTTP requests accepted and not yet answered or aborted; at most `edge.httpInFlightMax`. */
  httpInFlight: number
  /** WebSocket requests handed to the processor and not yet answered, over all sockets. */
  wsInFlight: number
  /** Checks a presented operators' key (`ADMIN_API_KEY`); undefined when the operator endpoints are off. */
  readonly adminKey: ((presented: string) => boolean) | undefined
}
