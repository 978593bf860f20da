/**
 * The transport ceiling: a bare uWebSockets.js server on `/v1/ws` with the product's socket settings
 * (payload limit, backpressure caps, compression off, idle timeout, API key checked at the upgrade
 * by the product's own authenticator) that parses each JSON frame and answers at once with a
 * payment shaped like the product's, without a processor or a journal behind it. Whatever rate and
 * latency the load generator gets from it is what the machine allows before any payment work.
 * Run: `node --import tsx bench/baselines/echo-server.ts --port 0` (prints `listening <port>`).
 * The edge limits and tenants come from the node's own configuration (PAYLOAD_BYTES_MAX, TENANTS, ...).
 */
import { pathToFileURL } from "node:url"
import { Effect } from "effect"
import { nodeConfig } from "../../config.ts"
import { makeKeyAuthenticator } from "../../tenancy/key-authenticator.ts"
import { bearerKey } from "../../transport/auth.ts"
import {
  App,
  closeApp,
  compressionDisabled,
  type HttpRequest,
  type HttpResponse,
  listenPort,
  type SocketContext,
  type WebSocket,
} from "../../transport/uws.ts"

/** The same values as transport/ws-endpoint.ts (module constants there, not exported). */
const idleTimeoutSeconds = 120
const answerBytesMax = 4096
/** Benchmarks drive loopback targets only. */
const loopbackHost = "127.0.0.1"

interface EchoConnection {
  readonly tenantId: string
}

/** A fixed createdAt: the product formats one date per payment, which the answer's size reflects. */
const createdAt = new Date(1_700_000_000_000).toISOString()

const textOr = (value: unknown, fallback: string): string => (typeof value === "string" ? value : fallback)

/**
 * The answer the product gives a settled transfer, built from the frame's own fields so its size
 * follows the request like the real answer does.
 */
export const echoAnswer = (frame: Readonly<Record<string, unknown>>): string => {
  const reqId = typeof frame.reqId === "string" || typeof frame.reqId === "number" ? frame.reqId : null
  if (frame.op === "openAccount" || frame.op === "deposit" || frame.op === "getAccount") {
    const currency = textOr(frame.currency, "EUR")
    const account = {
      accountId: textOr(frame.accountId, "unknown"),
      currency,
      balance: textOr(frame.amount, "0.00"),
      available: textOr(frame.amount, "0.00"),
      floor: "0.00",
      status: "open",
    }
    return JSON.stringify({ reqId, ok: true, account })
  }
  const payment = {
    paymentId: textOr(frame.paymentId, "unknown"),
    from: textOr(frame.from, "unknown"),
    to: textOr(frame.to, "unknown"),
    amount: textOr(frame.amount, "0.00"),
    currency: textOr(frame.currency, "EUR"),
    status: "settled",
    createdAt,
  }
  return JSON.stringify({ reqId, ok: true, payment })
}

const parseFrame = (data: ArrayBuffer): Readonly<Record<string, unknown>> | undefined => {
  try {
    const value: unknown = JSON.parse(Buffer.from(data).toString("utf8"))
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined
  } catch {
    return undefined
  }
}

const invalidAnswer = JSON.stringify({ ok: false, error: { code: "INVALID_REQUEST", message: "not a JSON object" } })

const main = async () => {
  const portIndex = process.argv.indexOf("--port")
  const port = portIndex >= 0 ? Number(process.argv[portIndex + 1] ?? "0") : 0
  const config = await Effect.runPromise(nodeConfig)
  // The node's own key check, so the echo pays what the node pays per upgrade.
  const keys = makeKeyAuthenticator({
    environmentKeys: config.tenants,
    directory: () => undefined,
    nowMs: Date.now,
    verifiedMax: 1,
    failureSpacingMs: 1_000,
  })
  const app = App()
  app.ws<EchoConnection>("/v1/ws", {
    maxPayloadLength: config.edge.payloadBytesMax,
    maxBackpressure: config.edge.wsBackpressureBytesMax + config.edge.wsInFlightMax * answerBytesMax,
    closeOnBackpressureLimit: 1,
    idleTimeout: idleTimeoutSeconds,
    sendPingsAutomatically: true,
    maxLifetime: 0,
    compression: compressionDisabled,
    upgrade: (res: HttpResponse, req: HttpRequest, context: SocketContext) => {
      const secWebSocketKey = req.getHeader("sec-websocket-key")
      const secWebSocketProtocol = req.getHeader("sec-websocket-protocol")
      const secWebSocketExtensions = req.getHeader("sec-websocket-extensions")
      const apiKey = bearerKey(req.getHeader("authorization")) || (req.getQuery("apiKey") ?? "")
      const tenantId = keys.authenticate(apiKey)?.tenantId
      if (tenantId === undefined) {
        res.writeStatus("401 Unauthorized").end('{"error":{"code":"UNAUTHORIZED","message":"bad API key"}}')
        return
      }
      const connection: EchoConnection = { tenantId }
      res.upgrade(connection, secWebSocketKey, secWebSocketProtocol, secWebSocketExtensions, context)
    },
    message: (ws: WebSocket<EchoConnection>, data: ArrayBuffer) => {
      const frame = parseFrame(data)
      ws.send(frame === undefined ? invalidAnswer : echoAnswer(frame), false)
    },
  })
  app.listen(loopbackHost, port, (listenSocket) => {
    if (listenSocket === false) {
      console.error(`cannot listen on ${loopbackHost}:${port}`)
      process.exit(1)
    }
    console.log(`listening ${listenPort(listenSocket)}`)
  })
  const stop = () => {
    closeApp(app)
    process.exit(0)
  }
  process.once("SIGTERM", stop)
  process.once("SIGINT", stop)
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) await main()
