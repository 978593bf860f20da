/**
 * A real PaymentNode on the memory adapters behind a real ingress server on an ephemeral loopback
 * port, for tests of the wire contract over sockets. Two tenants, so isolation can be checked.
 */
import { Effect, Exit, Layer, Scope } from "effect"
import WebSocket from "ws"
import { defaultRuntimeLimits, type RuntimeLimits } from "../../actors/limits.ts"
import { makePaymentNode } from "../../actors/node.ts"
import type { Processor } from "../../actors/processor.ts"
import type { NodeConfig, TenantKey } from "../../config.ts"
import { type AccountId, shardOf, type TenantId } from "../../core/ids.ts"
import { Journal } from "../../persistence/journal.ts"
import {
  type MemoryJournalControl,
  makeMemoryJournal,
  newMemoryJournalControl,
} from "../../persistence/memory/journal-memory.ts"
import { makeMemoryShardLeases } from "../../persistence/memory/shard-leases-memory.ts"
import { makeMemorySnapshotStore, newMemorySnapshotControl } from "../../persistence/memory/snapshot-store-memory.ts"
import { ShardLeases } from "../../persistence/shard-leases.ts"
import { SnapshotStore } from "../../persistence/snapshot-store.ts"
import { startServer } from "../../transport/server.ts"

export const tenantOne: TenantKey = { tenantId: "tenant-one", apiKey: "key-one-0001" }
export const tenantTwo: TenantKey = { tenantId: "tenant-two", apiKey: "key-two-0002" }

export const defaultEdge: NodeConfig["edge"] = {
  payloadBytesMax: 64 * 1024,
  wsInFlightMax: 1024,
  wsBackpressureBytesMax: 1024 * 1024,
  httpInFlightMax: 4096,
}

export interface TransportHarness {
  readonly port: number
  readonly processor: Processor
  /** The journal's control, to cause an outage. */
  readonly journal: MemoryJournalControl
  readonly close: () => Promise<void>
}

export const startTransportHarness = async (
  options: { readonly edge?: Partial<NodeConfig["edge"]>; readonly limits?: Partial<RuntimeLimits> } = {},
): Promise<TransportHarness> => {
  const scope = await Effect.runPromise(Scope.make())
  const journal = newMemoryJournalControl()
  const layer = Layer.mergeAll(
    Layer.succeed(Journal)(makeMemoryJournal(journal)),
    Layer.succeed(SnapshotStore)(makeMemorySnapshotStore(newMemorySnapshotControl())),
    Layer.succeed(ShardLeases)(makeMemoryShardLeases()),
  )
  const limits: RuntimeLimits = { ...defaultRuntimeLimits, shardCount: 4, ...options.limits }
  const processor = await Effect.runPromise(makePaymentNode(limits).pipe(Effect.provide(layer), Scope.provide(scope)))
  const server = await startServer({
    host: "127.0.0.1",
    port: 0,
    processor,
    tenants: [tenantOne, tenantTwo],
    edge: { ...defaultEdge, ...options.edge },
  })
  return {
    port: server.port,
    processor,
    journal,
    close: async () => {
      await server.close()
      await Effect.runPromise(Scope.close(scope, Exit.void))
    },
  }
}

/** The shard count the harness's node uses unless a test overrides it. */
export const harnessShardCount = 4

/** An account id of the tenant that falls in the given shard (found by search, deterministic). */
export const accountInShard = (tenant: TenantKey, shard: number, prefix: string): string => {
  for (let index = 0; ; index++) {
    const candidate = `${prefix}-${index}`
    if (shardOf(tenant.tenantId as TenantId, candidate as AccountId, harnessShardCount) === shard) return candidate
  }
}

export interface HttpAnswer {
  readonly status: number
  // biome-ignore lint/suspicious/noExplicitAny: test answers are inspected field by field
  readonly body: any
}

/** One HTTP request with an API key (none when `apiKey` is ""); the body is sent as given when a string. */
export const httpRequest = async (
  port: number,
  method: string,
  path: string,
  options: { readonly apiKey?: string; readonly body?: unknown; readonly headers?: Record<string, string> } = {},
): Promise<HttpAnswer> => {
  const headers: Record<string, string> = { "content-type": "application/json", ...options.headers }
  const apiKey = options.apiKey ?? tenantOne.apiKey
  if (apiKey !== "") headers.authorization = `Bearer ${apiKey}`
  const body =
    options.body === undefined
      ? undefined
      : typeof options.body === "string"
        ? options.body
        : JSON.stringify(options.body)
  const response = await fetch(`http://127.0.0.1:${port}${path}`, {
    method,
    headers,
    ...(body === undefined ? {} : { body }),
  })
  const text = await response.text()
  return { status: response.status, body: text === "" ? undefined : JSON.parse(text) }
}

/**
 * A WebSocket used one frame at a time, for frames the pipelining client cannot send (not JSON,
 * no reqId, binary, oversized): `exchange` sends a frame and resolves with the next answer.
 */
export class RawSocket {
  private readonly answers: Array<string> = []
  private waiter: ((text: string) => void) | undefined
  private closeCode: number | undefined
  private readonly closed: Promise<number>

  private constructor(private readonly socket: WebSocket) {
    socket.on("message", (data) => {
      const text = String(data)
      if (this.waiter === undefined) this.answers.push(text)
      else {
        const waiter = this.waiter
        this.waiter = undefined
        waiter(text)
      }
    })
    this.closed = new Promise((resolve) =>
      socket.on("close", (code) => {
        this.closeCode = code
        resolve(code)
      }),
    )
    socket.on("error", () => {})
  }

  static connect(port: number, apiKey: string = tenantOne.apiKey): Promise<RawSocket> {
    return new Promise((resolve, reject) => {
      const socket = new WebSocket(`ws://127.0.0.1:${port}/v1/ws`, { headers: { authorization: `Bearer ${apiKey}` } })
      socket.once("open", () => resolve(new RawSocket(socket)))
      socket.once("error", reject)
    })
  }

  get isOpen(): boolean {
    return this.closeCode === undefined && this.socket.readyState === WebSocket.OPEN
  }

  /** Resolves with the close code once the server (or client) closed the socket. */
  whenClosed(): Promise<number> {
    return this.closed
  }

  send(frame: string | Buffer): void {
    this.socket.send(frame, { binary: typeof frame !== "string" })
  }

  // biome-ignore lint/suspicious/noExplicitAny: answers are inspected field by field
  next(): Promise<any> {
    const queued = this.answers.shift()
    if (queued !== undefined) return Promise.resolve(JSON.parse(queued))
    return new Promise((resolve, reject) => {
      this.waiter = (text) => resolve(JSON.parse(text))
      void this.closed.then((code) => reject(new Error(`socket closed with ${code}`)))
    })
  }

  // biome-ignore lint/suspicious/noExplicitAny: answers are inspected field by field
  exchange(frame: string | Buffer): Promise<any> {
    this.send(frame)
    return this.next()
  }

  close(): void {
    this.socket.close()
  }
}
