/**
 * The links from this node to its peers: one WebSocket (the `ws` client) per peer address, opened
 * on first use and again after it closes, carrying many requests at once matched by id. Every wait
 * is bounded: a request not answered within `answerTimeoutMs` fails (the caller answers
 * UNAVAILABLE, which tells the partner to retry with its idempotency key), and a link holds at most
 * `inFlightMax` unanswered requests (beyond, OVERLOADED).
 */
import WebSocket from "ws"
import { decodePeerMessage, encodePeerMessage, type PeerCommand, type PeerMessage } from "./peer-protocol.ts"

export interface PeerLinksConfig {
  /** The bearer key this node presents to its peers (`CLUSTER_SECRET`), if the cluster has one. */
  readonly secret?: string | undefined
  readonly answerTimeoutMs: number
  readonly inFlightMax: number
  /** How long a connect may take before the request that waits on it fails. */
  readonly connectTimeoutMs: number
}

export const defaultPeerLinksConfig: PeerLinksConfig = {
  answerTimeoutMs: 2_000,
  inFlightMax: 4_096,
  connectTimeoutMs: 1_000,
}

/** Why a forwarded request got no answer. */
export class PeerUnreachable extends Error {
  constructor(
    readonly code: "UNAVAILABLE" | "OVERLOADED",
    message: string,
  ) {
    super(message)
  }
}

type Answer = Extract<PeerMessage, { readonly kind: "answer" | "httpAnswer" | "notOwner" }>

interface Waiting {
  readonly resolve: (answer: Answer) => void
  readonly reject: (error: PeerUnreachable) => void
  readonly timer: ReturnType<typeof setTimeout>
}

class PeerLink {
  private socket: WebSocket | undefined
  private opened: Promise<WebSocket> | undefined
  private readonly waiting = new Map<number, Waiting>()
  private nextId = 1

  constructor(
    private readonly address: string,
    private readonly config: PeerLinksConfig,
  ) {}

  private connect(): Promise<WebSocket> {
    if (this.opened !== undefined) return this.opened
    const opened = new Promise<WebSocket>((resolve, reject) => {
      const socket = new WebSocket(`ws://${this.address}/v1/peer`, {
        handshakeTimeout: this.config.connectTimeoutMs,
        ...(this.config.secret === undefined ? {} : { headers: { authorization: `Bearer ${this.config.secret}` } }),
      })
      socket.once("open", () => {
        this.socket = socket
        resolve(socket)
      })
      socket.on("message", (data) => this.received(String(data)))
      socket.once("error", (error) =>
        reject(new PeerUnreachable("UNAVAILABLE", `peer ${this.address}: ${error.message}`)),
      )
      socket.once("close", () => this.closed(socket))
    })
    this.opened = opened
    opened.catch(() => {
      if (this.opened === opened) this.opened = undefined
    })
    return opened
  }

  /** Requests still waiting on a closed link fail at once: their answers can no longer come. */
  private closed(socket: WebSocket): void {
    if (this.socket === socket) this.socket = undefined
    this.opened = undefined
    for (const [id, waiting] of this.waiting) {
      clearTimeout(waiting.timer)
      waiting.reject(new PeerUnreachable("UNAVAILABLE", `the link to peer ${this.address} closed`))
      this.waiting.delete(id)
    }
  }

  private received(text: string): void {
    const message = decodePeerMessage(text)
    if (message === undefined || !("id" in message)) return
    const waiting = this.waiting.get(message.id)
    if (waiting === undefined) return
    this.waiting.delete(message.id)
    clearTimeout(waiting.timer)
    if (message.kind === "answer" || message.kind === "httpAnswer" || message.kind === "notOwner")
      waiting.resolve(message)
  }

  async request(build: (id: number) => PeerMessage): Promise<Answer> {
    if (this.waiting.size >= this.config.inFlightMax) {
      throw new PeerUnreachable("OVERLOADED", `${this.config.inFlightMax} requests wait on peer ${this.address}`)
    }
    const socket = await this.connect()
    const id = this.nextId++
    return new Promise<Answer>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id)
        reject(
          new PeerUnreachable(
            "UNAVAILABLE",
            `peer ${this.address} did not answer in ${this.config.answerTimeoutMs} ms`,
          ),
        )
      }, this.config.answerTimeoutMs)
      this.waiting.set(id, { resolve, reject, timer })
      socket.send(encodePeerMessage(build(id)))
    })
  }

  /** A saga step: sent once; the sender's redelivery timer covers a link that drops it. */
  async deliver(command: PeerCommand): Promise<void> {
    const socket = await this.connect()
    socket.send(encodePeerMessage({ kind: "deliver", command }))
  }

  close(): void {
    this.socket?.close()
  }
}

export class PeerLinks {
  private readonly links = new Map<string, PeerLink>()

  constructor(private readonly config: PeerLinksConfig = defaultPeerLinksConfig) {}

  private linkTo(address: string): PeerLink {
    let link = this.links.get(address)
    if (link === undefined) {
      link = new PeerLink(address, this.config)
      this.links.set(address, link)
    }
    return link
  }

  forwardFrame(address: string, tenantId: string, frame: string): Promise<Answer> {
    return this.linkTo(address).request((id) => ({ kind: "request", id, tenantId, frame }))
  }

  forwardHttp(
    address: string,
    tenantId: string,
    op: string,
    fields: Readonly<Record<string, unknown>>,
  ): Promise<Answer> {
    return this.linkTo(address).request((id) => ({ kind: "httpRequest", id, tenantId, op, fields: { ...fields } }))
  }

  deliver(address: string, command: PeerCommand): void {
    this.linkTo(address)
      .deliver(command)
      .catch(() => undefined)
  }

  close(): void {
    for (const link of this.links.values()) link.close()
    this.links.clear()
  }
}
