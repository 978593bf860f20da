/**
 * A real PaymentNode on the memory adapters behind a real ingress server on an ephemeral loopback
 * port, for tests of the wire contract over sockets. Two tenants, so isolation can be checked.
 */
import { Effect, Exit, Layer, Scope } from "effect"
import { defaultRuntimeLimits, type RuntimeLimits } from "../../actors/limits.ts"
import { makePaymentNode } from "../../actors/node.ts"
import type { Processor } from "../../actors/processor.ts"
import type { NodeConfig, TenantKey } from "../../config.ts"
import { Journal } from "../../persistence/journal.ts"
import { makeMemoryJournal, newMemoryJournalControl } from "../../persistence/memory/journal-memory.ts"
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
  readonly close: () => Promise<void>
}

export const startTransportHarness = async (
  options: { readonly edge?: Partial<NodeConfig["edge"]>; readonly limits?: Partial<RuntimeLimits> } = {},
): Promise<TransportHarness> => {
  const scope = await Effect.runPromise(Scope.make())
  const layer = Layer.mergeAll(
    Layer.succeed(Journal)(makeMemoryJournal(newMemoryJournalControl())),
    Layer.succeed(SnapshotStore)(makeMemorySnapshotStore(newMemorySnapshotControl())),
    Layer.succeed(ShardLeases)(makeMemoryShardLeases()),
  )
  const limits: RuntimeLimits = { ...defaultRuntimeLimits, shardCount: 4, sagaSweepIntervalMs: 50, ...options.limits }
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
    close: async () => {
      await server.close()
      await Effect.runPromise(Scope.close(scope, Exit.void))
    },
  }
}
