/**
 * The peer port (`CLUSTER_PORT`): other nodes of the cluster open one WebSocket here (`/v1/peer`)
 * and send the partner requests for accounts this node owns, and the saga steps for its shards
 * (`cluster/peer-protocol.ts`). A request is decoded and dispatched exactly as on the partner's own
 * socket, for the tenant the sending node authenticated (it checked the scopes too), and its answer
 * is the bytes a local answer has, so the partner cannot tell a forwarded answer from a local one.
 * A request for an account this node does not own is answered with the owner it knows.
 */
import type { Outcome } from "../actors/processor.ts"
import { decodePeerMessage, encodePeerMessage, type PeerMessage } from "../cluster/peer-protocol.ts"
import type { Command } from "../core/commands.ts"
import { bearerKey } from "./auth.ts"
import { accountOfOperation, dispatch } from "./dispatch.ts"
import type { EdgeState } from "./edge-state.ts"
import type { WebSocket, WebSocketBehavior } from "./uws.ts"
import { compressionDisabled } from "./uws.ts"
import { decodeFrame, decodeOperation, type Fields, isInvalidRequest, operationNames } from "./wire-request.ts"
import {
  encodeFrameAnswer,
  encodeFrameError,
  encodeHttpError,
  encodeHttpSuccess,
  httpStatusOf,
  httpStatusOk,
} from "./wire-response.ts"

interface PeerConnection {
  closed: boolean
}

/** The status line and body an HTTP edge answers an outcome with. */
export const httpAnswerOf = (outcome: Outcome): { readonly status: string; readonly body: string } =>
  outcome._tag === "Rejection"
    ? { status: httpStatusOf[outcome.code], body: encodeHttpError(outcome.code, outcome.message) }
    : { status: httpStatusOk, body: encodeHttpSuccess(outcome) }

const reply = (ws: WebSocket<PeerConnection>, message: PeerMessage): void => {
  if (!ws.getUserData().closed) ws.send(encodePeerMessage(message))
}

const frameRequest = (state: EdgeState, ws: WebSocket<PeerConnection>, id: number, tenantId: string, frame: string) => {
  const request = decodeFrame(frame)
  if (isInvalidRequest(request)) {
    reply(ws, { kind: "answer", id, text: encodeFrameError(request.reqId, "INVALID_REQUEST", request.message) })
    return
  }
  const principal = state.keys.peerPrincipal(tenantId)
  if (principal === undefined) {
    reply(ws, {
      kind: "answer",
      id,
      text: encodeFrameError(request.reqId, "UNAUTHORIZED", "the tenant is unknown here"),
    })
    return
  }
  const owner = state.peers?.ownerAddressOf(tenantId, accountOfOperation(request.operation))
  if (owner !== undefined) {
    reply(ws, { kind: "notOwner", id, owner })
    return
  }
  dispatch(state.processor, principal, request.operation, request.traceparent, (outcome) =>
    reply(ws, { kind: "answer", id, text: encodeFrameAnswer(request.reqId, outcome) }),
  )
}

const httpRequest = (
  state: EdgeState,
  ws: WebSocket<PeerConnection>,
  id: number,
  tenantId: string,
  op: string,
  fields: Fields,
) => {
  const name = operationNames.find((known) => known === op)
  const operation = name === undefined ? undefined : decodeOperation(name, fields)
  if (operation === undefined || isInvalidRequest(operation)) {
    const message = operation === undefined ? `unknown operation ${op}` : operation.message
    reply(ws, {
      kind: "httpAnswer",
      id,
      status: httpStatusOf.INVALID_REQUEST,
      body: encodeHttpError("INVALID_REQUEST", message),
    })
    return
  }
  const principal = state.keys.peerPrincipal(tenantId)
  if (principal === undefined) {
    reply(ws, {
      kind: "httpAnswer",
      id,
      status: httpStatusOf.UNAUTHORIZED,
      body: encodeHttpError("UNAUTHORIZED", "the tenant is unknown here"),
    })
    return
  }
  const owner = state.peers?.ownerAddressOf(tenantId, accountOfOperation(operation))
  if (owner !== undefined) {
    reply(ws, { kind: "notOwner", id, owner })
    return
  }
  dispatch(state.processor, principal, operation, undefined, (outcome) =>
    reply(ws, { kind: "httpAnswer", id, ...httpAnswerOf(outcome) }),
  )
}

export const makePeerBehavior = (
  state: EdgeState,
  deliver: (command: Command) => void,
  /** Whether the presented bearer key is the cluster's secret. */
  admits: (presented: string) => boolean,
): WebSocketBehavior<PeerConnection> => ({
  // A forwarded frame is at most a partner's frame plus the envelope.
  maxPayloadLength: state.edge.payloadBytesMax + 1024,
  idleTimeout: 0,
  sendPingsAutomatically: true,
  compression: compressionDisabled,
  upgrade: (res, req, context) => {
    if (!admits(bearerKey(req.getHeader("authorization")))) {
      res
        .writeStatus(httpStatusOf.UNAUTHORIZED)
        .writeHeader("content-type", "application/json")
        .end(
          encodeHttpError(
            "UNAUTHORIZED",
            "a peer link needs the cluster's secret: Authorization: Bearer <CLUSTER_SECRET>",
          ),
        )
      return
    }
    res.upgrade<PeerConnection>(
      { closed: false },
      req.getHeader("sec-websocket-key"),
      req.getHeader("sec-websocket-protocol"),
      req.getHeader("sec-websocket-extensions"),
      context,
    )
  },
  message: (ws, data, isBinary) => {
    if (isBinary) return
    const message = decodePeerMessage(Buffer.from(data).toString("utf8"))
    if (message === undefined) return
    switch (message.kind) {
      case "deliver":
        deliver(message.command)
        return
      case "request":
        frameRequest(state, ws, message.id, message.tenantId, message.frame)
        return
      case "httpRequest":
        httpRequest(state, ws, message.id, message.tenantId, message.op, message.fields)
        return
      default:
        return
    }
  },
  close: (ws) => {
    ws.getUserData().closed = true
  },
})
