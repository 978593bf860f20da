/**
 * The generator's connections to the target: WebSocket (the `ws` client, no compression, many
 * requests in flight) or HTTP keep-alive (one request in flight per socket, transfers only). Each
 * channel keeps the request ids it has outstanding (a transfer's or authorization's schedule index;
 * a capture's is offset, see `captureRequestIdOf`), so a closed socket or the end of the drain can
 * account for them.
 */
import http from "node:http"
import type { Socket } from "node:net"
import WebSocket from "ws"
import type { Target } from "./plan.ts"
import { httpErrorCodeOf, type PaymentOperation, readAnswer, requestFrame, transferBody } from "./workload.ts"

/**
 * Called once per request: `errorCode` undefined for an ok answer. `answerText` is the answer as it
 * arrived (WebSocket), for a caller that reads more than the code; undefined when there was none.
 */
export type AnswerHandler = (
  channel: Channel,
  index: number,
  errorCode: string | undefined,
  answerText?: string | undefined,
) => void

export interface Channel {
  readonly inFlightMax: number
  readonly outstanding: Set<number>
  readonly isOpen: () => boolean
  /** `fields` is the operation's JSON fields without braces. */
  readonly send: (index: number, fields: string, operation: PaymentOperation) => void
  readonly cork: () => void
  readonly uncork: () => void
  readonly close: () => void
}

const loopbackHosts = new Set(["127.0.0.1", "::1", "localhost"])

/** Load goes to this machine only: a benchmark must never be pointed at someone else's server. */
export const assertLoopback = (host: string): void => {
  if (!loopbackHosts.has(host))
    throw new Error(`load targets must be loopback (127.0.0.1, ::1, localhost), not ${host}`)
}

/**
 * The target of a worker's connection `connectionIndex`: a cluster's nodes in turn. The generator
 * sends on its connections in turn too, so each node receives an equal share of the requests when
 * the worker's connection count is a multiple of the node count (the cluster runner makes it so).
 */
export const connectionTargetOf = (target: Target, connectionIndex: number): Target => {
  const ports = target.ports
  if (ports === undefined) return target
  if (!(Number.isInteger(connectionIndex) && connectionIndex >= 0)) {
    throw new Error(`assertion: connection index ${connectionIndex}`)
  }
  if (ports.length === 0) throw new Error("assertion: a target with ports names at least one")
  return { ...target, port: ports[connectionIndex % ports.length] as number }
}

const hostInUrl = (host: string): string => (host.includes(":") ? `[${host}]` : host)

export const openWebSocket = (target: Target): Promise<WebSocket> => {
  assertLoopback(target.host)
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`ws://${hostInUrl(target.host)}:${target.port}/v1/ws`, {
      headers: { authorization: `Bearer ${target.apiKey}` },
      perMessageDeflate: false,
      skipUTF8Validation: true,
    })
    socket.once("open", () => resolve(socket))
    socket.once("error", reject)
    socket.once("unexpected-response", (_request, response) =>
      reject(new Error(`WebSocket upgrade refused: HTTP ${response.statusCode}`)),
    )
  })
}

/** The TCP socket under a `ws` client: corked while a batch of frames is written, so it leaves in one write. */
const tcpSocketOf = (socket: WebSocket): Socket | undefined => (socket as unknown as { _socket?: Socket })._socket

export const webSocketChannel = async (
  target: Target,
  inFlightMax: number,
  onAnswer: AnswerHandler,
): Promise<Channel> => {
  const socket = await openWebSocket(target)
  const outstanding = new Set<number>()
  const tcp = tcpSocketOf(socket)
  const channel: Channel = {
    inFlightMax,
    outstanding,
    isOpen: () => socket.readyState === WebSocket.OPEN,
    send: (index, fields, operation) => {
      outstanding.add(index)
      socket.send(requestFrame(operation, index, fields))
    },
    cork: () => tcp?.cork(),
    uncork: () => tcp?.uncork(),
    close: () => socket.close(),
  }
  socket.on("message", (data: Buffer) => {
    const text = data.toString()
    const answer = readAnswer(text)
    if (answer === undefined || !outstanding.delete(answer.reqId)) return
    onAnswer(channel, answer.reqId, answer.errorCode, text)
  })
  socket.on("close", () => {
    const lost = [...outstanding]
    outstanding.clear()
    for (const index of lost) onAnswer(channel, index, "SOCKET_CLOSED")
  })
  socket.on("error", () => {})
  return channel
}

/**
 * HTTP/1.1 without pipelining: one request in flight per keep-alive socket of the shared agent.
 * Transfers only: the agent picks the socket, so a capture could not follow its authorization on
 * the same connection (scenarios refuse authorize-capture over HTTP).
 */
export const httpChannel = (target: Target, agent: http.Agent, onAnswer: AnswerHandler): Channel => {
  assertLoopback(target.host)
  const outstanding = new Set<number>()
  const authorization = `Bearer ${target.apiKey}`
  const settle = (index: number, errorCode: string | undefined) => {
    if (outstanding.delete(index)) onAnswer(channel, index, errorCode)
  }
  const channel: Channel = {
    inFlightMax: 1,
    outstanding,
    isOpen: () => true,
    send: (index, fields, operation) => {
      if (operation !== "transfer") throw new Error(`assertion: the HTTP channel sends transfers, not ${operation}`)
      outstanding.add(index)
      const body = transferBody(fields)
      const request = http.request(
        {
          agent,
          host: target.host,
          port: target.port,
          method: "POST",
          path: "/v1/payments",
          headers: {
            authorization,
            "content-type": "application/json",
            "content-length": Buffer.byteLength(body),
          },
        },
        (response) => {
          const status = response.statusCode ?? 0
          if (status === 200) {
            response.once("end", () => settle(index, undefined))
            response.resume()
            return
          }
          let text = ""
          response.setEncoding("utf8")
          response.on("data", (chunk: string) => {
            text += chunk
          })
          response.once("end", () => settle(index, httpErrorCodeOf(status, text)))
        },
      )
      request.once("error", () => settle(index, "SOCKET_CLOSED"))
      request.end(body)
    },
    cork: () => {},
    uncork: () => {},
    close: () => {},
  }
  return channel
}

export const httpAgentOf = (connections: number): http.Agent =>
  new http.Agent({ keepAlive: true, maxSockets: connections, maxFreeSockets: connections })
