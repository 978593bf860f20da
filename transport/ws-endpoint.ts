/**
 * The WebSocket endpoint `/v1/ws`: authenticates at the upgrade, then decodes JSON text frames,
 * hands them to the processor and answers each with its reqId, many in flight at once.
 *
 * Bounds per socket: at most `wsInFlightMax` requests in flight, and no new request is taken
 * while more than `wsBackpressureBytesMax` of answers wait unread (both answered OVERLOADED at
 * once, without calling the processor). uWS's own `maxBackpressure` is set well above that soft
 * limit, with `closeOnBackpressureLimit`, as the hard cap for a client that floods without
 * reading: a dropped answer would leave the client unable to learn an outcome, so the socket is
 * closed instead, which every client already treats as "outcome unknown, retry with the same key".
 * Frames over `payloadBytesMax` make uWS close the socket (`maxPayloadLength`).
 */

import { PeerUnreachable } from "../cluster/peer-links.ts"
import type { Principal } from "../tenancy/key-authenticator.ts"
import { bearerKey } from "./auth.ts"
import { accountOfOperation, dispatch, forbiddenMessage } from "./dispatch.ts"
import type { EdgeState, PeerForwarding } from "./edge-state.ts"
import {
  compressionDisabled,
  type HttpRequest,
  type HttpResponse,
  type SocketContext,
  type WebSocket,
  type WebSocketBehavior,
} from "./uws.ts"
import { decodeFrame, isInvalidRequest, type RequestId } from "./wire-request.ts"
import { encodeFrameAnswer, encodeFrameError, encodeHttpError, httpStatusOf } from "./wire-response.ts"

/** A close code of the private range (4000-4999): the socket's key was revoked. */
const closeCodeKeyRevoked = 4001

/** Per-socket state, kept by uWS as the socket's user data. */
interface Connection {
  /** Who the upgrade's key was; checked against the tenant file in force before each request. */
  principal: Principal
  inFlight: number
  /** Set by the close handler: answers that arrive later are dropped, never sent on a dead socket. */
  closed: boolean
  /** Answers released since the last flush; at most the socket's requests in flight. */
  outbox: Array<string>
}

/**
 * Answers are released a batch at a time (a group commit confirms many at once, across sockets),
 * so they are gathered per socket and written once per event-loop turn, each socket corked once:
 * one write per socket per turn instead of one per answer. An answer counts as in flight for the
 * server (`state.wsInFlight`, what a graceful close drains) until it is written.
 */
class AnswerOutbox {
  private readonly waiting: Array<{ readonly ws: WebSocket<Connection>; readonly connection: Connection }> = []
  private flushScheduled = false

  constructor(private readonly state: EdgeState) {}

  post(ws: WebSocket<Connection>, connection: Connection, answer: string): void {
    if (connection.outbox.push(answer) === 1) this.waiting.push({ ws, connection })
    if (this.flushScheduled) return
    this.flushScheduled = true
    setImmediate(() => this.flush())
  }

  private flush(): void {
    this.flushScheduled = false
    for (const { ws, connection } of this.waiting.splice(0)) {
      const answers = connection.outbox
      connection.outbox = []
      this.state.wsInFlight -= answers.length
      // A closed socket must not be touched (uWS has freed it); its answers are dropped.
      if (connection.closed) continue
      // send() answers 0 when the answer waits in the backpressure buffer (the soft limit then
      // refuses new work) and 2 when the hard cap dropped it, in which case uWS closes the socket
      // and the close handler marks it: nothing more to do here either way.
      ws.cork(() => {
        for (const answer of answers) ws.send(answer, false)
      })
    }
  }
}

/** Largest answer a request can produce: three ids and a reqId of 128 characters, each JSON-escaped at worst. */
const answerBytesMax = 4096

/** Seconds without traffic before uWS closes a socket; automatic pings keep healthy idle sockets open. */
const idleTimeoutSeconds = 120

const refuseUpgrade = (res: HttpResponse, message: string): void => {
  res
    .writeStatus(httpStatusOf.UNAUTHORIZED)
    .writeHeader("content-type", "application/json")
    .end(encodeHttpError("UNAUTHORIZED", message))
}

const upgrade = (state: EdgeState, res: HttpResponse, req: HttpRequest, context: SocketContext): void => {
  // Everything from req must be read here, synchronously: uWS reuses it after this callback returns.
  const secWebSocketKey = req.getHeader("sec-websocket-key")
  const secWebSocketProtocol = req.getHeader("sec-websocket-protocol")
  const secWebSocketExtensions = req.getHeader("sec-websocket-extensions")
  const apiKey = bearerKey(req.getHeader("authorization")) || (req.getQuery("apiKey") ?? "")
  const principal = state.keys.authenticate(apiKey)
  if (principal === undefined) {
    refuseUpgrade(res, apiKey === "" ? "an API key is required" : "the API key is not valid")
    return
  }
  const connection: Connection = { principal, inFlight: 0, closed: false, outbox: [] }
  res.upgrade(connection, secWebSocketKey, secWebSocketProtocol, secWebSocketExtensions, context)
}

const message = (
  state: EdgeState,
  outbox: AnswerOutbox,
  ws: WebSocket<Connection>,
  data: ArrayBuffer,
  isBinary: boolean,
): void => {
  if (isBinary) {
    ws.send(encodeFrameError(undefined, "INVALID_REQUEST", "binary frames are not accepted: send JSON text frames"))
    return
  }
  // uWS validated the text frame as UTF-8; the string is a copy, so nothing refers to `data` afterwards.
  const text = Buffer.from(data).toString("utf8")
  const request = decodeFrame(text)
  if (isInvalidRequest(request)) {
    ws.send(encodeFrameError(request.reqId, "INVALID_REQUEST", request.message))
    return
  }
  const connection = ws.getUserData()
  if (connection.inFlight >= state.edge.wsInFlightMax) {
    const text = `more than ${state.edge.wsInFlightMax} requests in flight on this socket`
    ws.send(encodeFrameError(request.reqId, "OVERLOADED", text))
    return
  }
  if (ws.getBufferedAmount() > state.edge.wsBackpressureBytesMax) {
    const text = "answers are waiting unread on this socket: read them before sending more"
    ws.send(encodeFrameError(request.reqId, "OVERLOADED", text))
    return
  }
  const principal = state.keys.current(connection.principal)
  if (principal === undefined) {
    // The key or its tenant left the tenant file: nothing more is served on this socket.
    ws.end(closeCodeKeyRevoked, "the API key is no longer valid")
    return
  }
  connection.principal = principal
  const forbidden = forbiddenMessage(principal.scopes, request.operation.op)
  if (forbidden !== undefined) {
    ws.send(encodeFrameError(request.reqId, "FORBIDDEN", forbidden))
    return
  }
  // Counted only once the request goes on: a refused one is answered at once and holds nothing.
  connection.inFlight++
  state.wsInFlight++
  const answered = (answer: string) => {
    connection.inFlight--
    if (connection.closed) {
      state.wsInFlight--
      return
    }
    outbox.post(ws, connection, answer)
  }
  const owner = state.peers?.ownerAddressOf(principal.tenantId, accountOfOperation(request.operation))
  if (owner !== undefined && state.peers !== undefined) {
    forwardFrame(state.peers, owner, principal.tenantId, text, request.reqId).then(answered)
    return
  }
  dispatch(state.processor, principal, request.operation, request.traceparent, (outcome) =>
    answered(encodeFrameAnswer(request.reqId, outcome)),
  )
}

/**
 * Forwards a frame to the node that owns its account, and gives back that node's answer as it wrote
 * it; a node that is not the owner any more names the one it knows, tried once more.
 */
const forwardFrame = async (
  peers: PeerForwarding,
  address: string,
  tenantId: string,
  text: string,
  reqId: RequestId,
): Promise<string> => {
  try {
    const first = await peers.forwardFrame(address, tenantId, text)
    const answer =
      first.kind === "notOwner" && first.owner !== null && first.owner !== address
        ? await peers.forwardFrame(first.owner, tenantId, text)
        : first
    if (answer.kind === "answer") return answer.text
    return encodeFrameError(reqId, "UNAVAILABLE", "the account's shard is moving between nodes; retry")
  } catch (error) {
    const code = error instanceof PeerUnreachable ? error.code : "UNAVAILABLE"
    return encodeFrameError(reqId, code, (error as Error).message)
  }
}

export const makeWsBehavior = (state: EdgeState): WebSocketBehavior<Connection> => {
  const outbox = new AnswerOutbox(state)
  return {
    maxPayloadLength: state.edge.payloadBytesMax,
    maxBackpressure: state.edge.wsBackpressureBytesMax + state.edge.wsInFlightMax * answerBytesMax,
    // Typed as a number in this build's declarations; uWS reads it as a flag.
    closeOnBackpressureLimit: 1,
    idleTimeout: idleTimeoutSeconds,
    sendPingsAutomatically: true,
    maxLifetime: 0,
    compression: compressionDisabled,
    upgrade: (res, req, context) => upgrade(state, res, req, context),
    message: (ws, data, isBinary) => message(state, outbox, ws, data, isBinary),
    close: (ws) => {
      ws.getUserData().closed = true
    },
  }
}
