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
  /** How requests for accounts other nodes own reach them; undefined on a node that runs alone. */
  readonly peers: PeerForwarding | undefined
  /** Set when the node begins to drain: readiness fails at once while requests are still answered. */
  draining: boolean
}

/** The answer a peer gave a forwarded request. */
export type PeerAnswer =
  | { readonly kind: "answer"; readonly text: string }
  | { readonly kind: "httpAnswer"; readonly status: string; readonly body: string }
  | { readonly kind: "notOwner"; readonly owner: string | null }

export interface PeerForwarding {
  /** The address of the node that owns the account's shard, or undefined when it is this node (or none is known). */
  readonly ownerAddressOf: (tenantId: string, accountId: string) => string | undefined
  readonly forwardFrame: (address: string, tenantId: string, frame: string) => Promise<PeerAnswer>
  readonly forwardHttp: (
    address: string,
    tenantId: string,
    op: string,
    fields: Readonly<Record<string, unknown>>,
  ) => Promise<PeerAnswer>
}
