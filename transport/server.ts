/**
 * The ingress server: WebSocket and HTTP on one port, over the node's Processor. `startServer`
 * is the plain API; `serverResource` wraps it for the Effect composition root so the server is
 * closed with the scope.
 */
import { Effect, Schema, type Scope } from "effect"
import type { Processor } from "../actors/processor.ts"
import type { NodeConfig, TenantKey } from "../config.ts"
import type { Command } from "../core/commands.ts"
import { makeKeyAuthenticator } from "../tenancy/key-authenticator.ts"
import type { TenantDirectory } from "../tenancy/tenant-file.ts"
import { adminKeyCheck } from "./auth.ts"
import type { EdgeState, PeerForwarding } from "./edge-state.ts"
import { registerHttpRoutes } from "./http-routes.ts"
import { makePeerBehavior } from "./peer-endpoint.ts"
import { observeProcess } from "./process-metrics.ts"
import { App, closeApp, closeListenSocket, listenPort, type TemplatedApp } from "./uws.ts"
import { makeWsBehavior } from "./ws-endpoint.ts"

export interface ServerOptions {
  readonly host: string
  readonly port: number
  readonly processor: Processor
  readonly tenants: ReadonlyArray<TenantKey>
  /** The tenant file in force (`TENANTS_FILE`), when the node has one. */
  readonly tenantFile?: () => TenantDirectory
  readonly edge: NodeConfig["edge"]
  /** The operators' key (`ADMIN_API_KEY`); the operator endpoints are off without one. */
  readonly adminApiKey?: string | undefined
  /** In a cluster: how requests for other nodes' accounts reach them, and the peer port this node serves. */
  readonly cluster?: {
    readonly peers: PeerForwarding
    readonly port: number
    /** The bearer key peers must present (`CLUSTER_SECRET`); undefined admits any connection. */
    readonly secret?: string | undefined
    /** Runs a saga step another node delivered. */
    readonly deliver: (command: Command) => void
  }
  /** How long `close` waits for requests in flight to be answered before closing sockets; default 2000. */
  readonly drainTimeoutMs?: number
}

export interface ServerHandle {
  /** The port listened on (the ephemeral one chosen when asked for port 0). */
  readonly port: number
  /** Stops listening, lets requests in flight be answered (up to the drain timeout), then closes every socket. */
  readonly close: () => Promise<void>
  /** `/readyz` answers 503 from now on, so load balancers stop sending; everything else still works. */
  readonly beginDrain: () => void
}

export class ServerStartFailed extends Schema.TaggedError<ServerStartFailed>()("ServerStartFailed", {
  host: Schema.String,
  port: Schema.Number,
  message: Schema.String,
}) {}

const drainPollMs = 10

/** Tenant-file keys remembered once verified; more than a node's partners' keys. */
const verifiedKeysMax = 4096
/** At most one failed scrypt check per key id this often (see key-authenticator.ts). */
const keyFailureSpacingMs = 1_000

const waitForDrain = async (state: EdgeState, timeoutMs: number): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (state.httpInFlight + state.wsInFlight > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, drainPollMs))
  }
}

export const startServer = (options: ServerOptions): Promise<ServerHandle> =>
  new Promise((resolve, reject) => {
    const state: EdgeState = {
      processor: options.processor,
      keys: makeKeyAuthenticator({
        environmentKeys: options.tenants,
        directory: options.tenantFile ?? (() => undefined),
        nowMs: Date.now,
        verifiedMax: verifiedKeysMax,
        failureSpacingMs: keyFailureSpacingMs,
      }),
      edge: options.edge,
      httpInFlight: 0,
      wsInFlight: 0,
      adminKey: options.adminApiKey === undefined ? undefined : adminKeyCheck(options.adminApiKey),
      peers: options.cluster?.peers,
      draining: false,
    }
    observeProcess()
    const peerApp = options.cluster === undefined ? undefined : startPeerApp(options, state, options.cluster)
    const app = App()
    app.ws("/v1/ws", makeWsBehavior(state))
    registerHttpRoutes(app, state)
    app.listen(options.host, options.port, (listenSocket) => {
      if (listenSocket === false) {
        closeApp(app)
        if (peerApp !== undefined) closeApp(peerApp)
        reject(new Error(`cannot listen on ${options.host}:${options.port}`))
        return
      }
      let closing: Promise<void> | undefined
      const close = async () => {
        closeListenSocket(listenSocket)
        await waitForDrain(state, options.drainTimeoutMs ?? 2_000)
        closeApp(app)
        if (peerApp !== undefined) closeApp(peerApp)
      }
      resolve({
        port: listenPort(listenSocket),
        close: () => {
          closing ??= close()
          return closing
        },
        beginDrain: () => {
          state.draining = true
        },
      })
    })
  })

/** The peer port: other nodes' links land here (see peer-endpoint.ts). A port that cannot be bound stops the node. */
const startPeerApp = (
  options: ServerOptions,
  state: EdgeState,
  cluster: NonNullable<ServerOptions["cluster"]>,
): TemplatedApp => {
  const peerApp = App()
  const admits = cluster.secret === undefined ? () => true : adminKeyCheck(cluster.secret)
  peerApp.ws("/v1/peer", makePeerBehavior(state, cluster.deliver, admits))
  let bound = false
  peerApp.listen(options.host, cluster.port, (listenSocket) => {
    bound = listenSocket !== false
  })
  if (!bound) {
    closeApp(peerApp)
    throw new Error(`cannot listen for peers on ${options.host}:${cluster.port}`)
  }
  return peerApp
}

/** The server as a scoped resource: started on acquisition, closed when the scope closes. */
export const serverResource = (options: ServerOptions): Effect.Effect<ServerHandle, ServerStartFailed, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: () => startServer(options),
      catch: (cause) =>
        new ServerStartFailed({
          host: options.host,
          port: options.port,
          message: cause instanceof Error ? cause.message : String(cause),
        }),
    }),
    (handle) => Effect.promise(() => handle.close()),
  )
