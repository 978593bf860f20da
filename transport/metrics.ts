/**
 * The node's gauges in the Prometheus text exposition format, served at `GET /metrics` for
 * operators and for benchmarks (which wait for snapshots to catch up before they measure). Only
 * node-wide figures, never anything of a tenant's.
 */
import { type DurationHistogram, durationBucketsMs } from "../actors/duration-histogram.ts"
import type { NodeMetrics } from "../actors/processor.ts"

type NumericMetric = Exclude<keyof NodeMetrics, "journalAppendDurations">

interface Metric {
  readonly name: string
  readonly help: string
  readonly of: NumericMetric
  readonly type: "gauge" | "counter"
}

/** A duration histogram in the Prometheus text format, in seconds. */
const histogram = (name: string, help: string, values: DurationHistogram): string => {
  const { cumulative, sumMs, count } = values.snapshot()
  const buckets = durationBucketsMs.map(
    (boundMs, index) => `${name}_bucket{le="${boundMs / 1000}"} ${cumulative[index]}`,
  )
  return [
    `# HELP ${name} ${help}`,
    `# TYPE ${name} histogram`,
    ...buckets,
    `${name}_bucket{le="+Inf"} ${count}`,
    `${name}_sum ${sumMs / 1000}`,
    `${name}_count ${count}`,
    "",
  ].join("\n")
}

const gauge = (name: string, of: NumericMetric, help: string): Metric => ({ name, help, of, type: "gauge" })
const counter = (name: string, of: NumericMetric, help: string): Metric => ({ name, help, of, type: "counter" })

const metrics: ReadonlyArray<Metric> = [
  gauge("payments_shards", "shards", "Shards this node owns."),
  gauge("payments_shards_serving", "shardsServing", "Owned shards that have recovered and serve."),
  gauge("payments_accounts", "accounts", "Accounts held in memory."),
  gauge("payments_entries_in_memory", "entriesInMemory", "Payments, deposits and credits held in memory."),
  gauge("payments_idempotency_keys_indexed", "idempotencyKeysIndexed", "Keys of saved entries within their window."),
  gauge("payments_idempotency_index_bytes", "idempotencyIndexBytes", "Bytes of the idempotency key index."),
  gauge("payments_journal_records_waiting", "recordsWaiting", "Records accepted, not yet durable."),
  gauge(
    "payments_snapshot_unsaved_entities",
    "snapshotUnsavedEntities",
    "Entity versions the snapshot store does not have yet.",
  ),
  gauge("payments_payments_pending", "paymentsPending", "Cross-node payments whose saga has not ended."),
  gauge("payments_timers_pending", "timersPending", "Scheduled side effects waiting on their timers."),
  counter("payments_journal_commits_total", "journalCommitsTotal", "Journal appends (node flushes) made durable."),
  counter("payments_journal_records_total", "journalRecordsTotal", "Journal records made durable."),
  counter("payments_snapshot_part_writes_total", "snapshotPartWritesTotal", "Snapshot segment parts written."),
  counter("payments_snapshot_segments_total", "snapshotSegmentsTotal", "Snapshot segments saved."),
  counter("payments_entry_lookups_total", "entryLookupsTotal", "Entries read back from the snapshot store."),
]

const line = (name: string, help: string, value: number, type: Metric["type"] = "gauge"): string =>
  `# HELP ${name} ${help}\n# TYPE ${name} ${type}\n${name} ${value}\n`

export const renderMetrics = (values: NodeMetrics): string => {
  const memory = process.memoryUsage()
  const cpu = process.cpuUsage()
  return [
    ...metrics.map((metric) => line(metric.name, metric.help, values[metric.of], metric.type)),
    histogram(
      "payments_journal_append_duration_seconds",
      "Journal appends (node flushes), from send to the journal's answer.",
      values.journalAppendDurations,
    ),
    line(
      "process_cpu_seconds_total",
      "CPU time of the node process, user and system, all threads.",
      (cpu.user + cpu.system) / 1e6,
      "counter",
    ),
    line("process_resident_memory_bytes", "Resident memory of the node process.", memory.rss),
    line("nodejs_heap_used_bytes", "V8 heap in use.", memory.heapUsed),
  ].join("")
}
