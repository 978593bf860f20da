/**
 * The one module that imports uWebSockets.js. Everything else in `transport/` takes the server
 * API from here, so a production image can swap the registry build used in development
 * (@trufflesuite/uws-js-unofficial, aliased in package.json) for the official one by changing
 * this file or the alias only.
 */
import uws from "uWebSockets.js"

export type {
  HttpRequest,
  HttpResponse,
  TemplatedApp,
  us_listen_socket as ListenSocket,
  us_socket_context_t as SocketContext,
  WebSocket,
  WebSocketBehavior,
} from "uWebSockets.js"

import type { TemplatedApp, us_listen_socket } from "uWebSockets.js"

/** The native module is CommonJS with no static export names, so named ESM imports cannot bind. */
export const App: () => TemplatedApp = () => uws.App()

export const closeListenSocket = (listenSocket: us_listen_socket): void => uws.us_listen_socket_close(listenSocket)

/** The port a listen socket is bound to (for port 0, the ephemeral one the kernel chose). */
export const listenPort = (listenSocket: us_listen_socket): number =>
  uws.us_socket_local_port(listenSocket as Parameters<typeof uws.us_socket_local_port>[0])

/** Compression off: answers are small JSON and per-socket deflate windows would cost memory per partner. */
export const compressionDisabled: number = uws.DISABLED

/**
 * Closes every socket of the app, listen sockets included. The method exists in 20.30 builds but
 * is missing from their type declarations; fail loudly if a swapped build lacks it.
 */
export const closeApp = (app: TemplatedApp): void => {
  const close = (app as TemplatedApp & { close?: () => void }).close
  if (typeof close !== "function") throw new Error("assertion: this uWebSockets.js build has no App.close()")
  close.call(app)
}
