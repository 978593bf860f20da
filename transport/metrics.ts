/**
 * The node's gauges in the Prometheus text exposition format, served at `GET /metrics` for
 * operators and for benchmarks (which wait for snapshots to catch up before they measure). Only
 * node-wide figures, never anything of a tenant's.
 */
import type { NodeMetrics } from "../actors/processor.ts"

const gauges: ReadonlyArray<{ readonly name: string; readonly help: string; readonly of: keyof NodeMetrics }> = [
  { name: "payments_shards", help: "Shards this node owns.", of: "shards" },
  { name: "payments_shards_serving", help: "Owned shards that have recovered and serve.", of: "shardsServing" },
  { name: "payments_accounts", help: "Accounts held in memory.", of: "accounts" },
  { name: "payments_journal_records_waiting", help: "Records accepted, not yet durable.", of: "recordsWaiting" },
  {
    name: "payments_snapshot_unsaved_entities",
    help: "Entity versions the snapshot store does not have yet.",
    of: "snapshotUnsavedEntities",
  },
  {
    name: "payments_payments_pending",
    help: "Cross-shard payments whose credit is not applied yet.",
    of: "paymentsPending",
  },
]

const line = (name: string, help: string, value: number): string =>
  `# HELP ${name} ${help}\n# TYPE ${name} gauge\n${name} ${value}\n`

export const renderMetrics = (metrics: NodeMetrics): string => {
  const memory = process.memoryUsage()
  return [
    ...gauges.map((gauge) => line(gauge.name, gauge.help, metrics[gauge.of])),
    line("process_resident_memory_bytes", "Resident memory of the node process.", memory.rss),
    line("nodejs_heap_used_bytes", "V8 heap in use.", memory.heapUsed),
  ].join("")
}
