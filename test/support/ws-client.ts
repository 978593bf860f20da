/**
 * A pipelining WebSocket client for the wire contract: many requests in flight, answers matched
 * by reqId. When the socket closes, every unanswered request fails with `SocketClosed`, which is
 * how crash tests learn which requests were never acknowledged.
 */
import WebSocket from "ws"

export interface Answer {
  readonly reqId: string | number
  readonly ok: boolean
  readonly error?: { readonly code: string; readonly message: string }
  readonly account?: Record<string, string>
  readonly payment?: Record<string, string>
}

export class SocketClosed extends Error {}

export class WsClient {
  private readonly pending = new Map<string, { resolve: (answer: Answer) => void; reject: (error: Error) => void }>()
  private nextReqId = 0
  private closed = false

  private constructor(private readonly socket: WebSocket) {
    socket.on("message", (data) => {
      const answer = JSON.parse(String(data)) as Answer
      const waiter = this.pending.get(String(answer.reqId))
      if (waiter === undefined) return
      this.pending.delete(String(answer.reqId))
      waiter.resolve(answer)
    })
    socket.on("close", () => {
      this.closed = true
      for (const waiter of this.pending.values()) waiter.reject(new SocketClosed("socket closed"))
      this.pending.clear()
    })
    socket.on("error", () => {})
  }

  static connect(port: number, apiKey: string): Promise<WsClient> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(`ws://127.0.0.1:${port}/v1/ws`, { headers: { authorization: `Bearer ${apiKey}` } })
      socket.once("open", () => resolve(new WsClient(socket)))
      socket.once("error", reject)
      socket.once("unexpected-response", (_request, response) =>
        reject(new Error(`upgrade refused: ${response.statusCode}`)),
      )
    })
  }

  get isClosed(): boolean {
    return this.closed
  }

  request(op: string, fields: Record<string, unknown>): Promise<Answer> {
    if (this.closed) return Promise.reject(new SocketClosed("socket closed"))
    const reqId = `r${this.nextReqId++}`
    return new Promise((resolve, reject) => {
      this.pending.set(reqId, { resolve, reject })
      this.socket.send(JSON.stringify({ op, reqId, ...fields }))
    })
  }

  close(): void {
    this.socket.close()
  }
}
