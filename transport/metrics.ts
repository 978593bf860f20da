/**
 * The node's gauges in the Prometheus text exposition format, served at `GET /metrics` for
 * operators and for benchmarks (which wait for snapshots to catch up before they measure). Only
 * node-wide figures, never anything of a tenant's.
 */
import { type DurationHistogram, durationBucketsMs } from "../actors/duration-histogram.ts"
import type { NodeMetrics } from "../actors/processor.ts"
import { eventLoopDelayMs, gcPauses, heapRetainedBytes } from "./process-metrics.ts"

type NumericMetric = Exclude<keyof NodeMetrics, "journalAppendDurations" | "handOffDurations" | "lastHandOffMs">

interface Metric {
  readonly name: string
  readonly help: string
  readonly of: NumericMetric
  readonly type: "gauge" | "counter"
}

/** The sample lines of one duration histogram, in seconds; `labels` like `kind="minor",`. */
const histogramSamples = (name: string, values: DurationHistogram, labels = ""): Array<string> => {
  const { cumulative, sumMs, count } = values.snapshot()
  const braces = labels === "" ? "" : `{${labels.replace(/,$/, "")}}`
  return [
    ...durationBucketsMs.map(
      (boundMs, index) => `${name}_bucket{${labels}le="${boundMs / 1000}"} ${cumulative[index]}`,
    ),
    `${name}_bucket{${labels}le="+Inf"} ${count}`,
    `${name}_sum${braces} ${sumMs / 1000}`,
    `${name}_count${braces} ${count}`,
  ]
}

/** A duration histogram in the Prometheus text format, in seconds. */
const histogram = (name: string, help: string, values: DurationHistogram): string =>
  [`# HELP ${name} ${help}`, `# TYPE ${name} histogram`, ...histogramSamples(name, values), ""].join("\n")

/** The event loop's delay as a summary at three quantiles, in seconds. */
const eventLoopLines = (): Array<string> => {
  const name = "nodejs_eventloop_delay_seconds"
  const delay = eventLoopDelayMs()
  return [
    `# HELP ${name} How late the event loop ran a 10 ms timer, since the node started.`,
    `# TYPE ${name} summary`,
    `${name}{quantile="0.5"} ${delay.p50 / 1000}`,
    `${name}{quantile="0.99"} ${delay.p99 / 1000}`,
    `${name}{quantile="1"} ${delay.max / 1000}`,
    "",
  ]
}

const gcHistogram = (): string => {
  const name = "nodejs_gc_duration_seconds"
  const samples = [...gcPauses.entries()].flatMap(([kind, values]) => histogramSamples(name, values, `kind="${kind}",`))
  return [`# HELP ${name} Garbage collection pauses, by kind.`, `# TYPE ${name} histogram`, ...samples, ""].join("\n")
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
    histogram(
      "payments_handoff_duration_seconds",
      "Shard hand-offs, from a new assignment until its shards serve.",
      values.handOffDurations,
    ),
    line(
      "payments_handoff_last_seconds",
      "The latest hand-off's duration (NaN before the first).",
      values.lastHandOffMs / 1000,
    ),
    line(
      "process_cpu_seconds_total",
      "CPU time of the node process, user and system, all threads.",
      (cpu.user + cpu.system) / 1e6,
      "counter",
    ),
    gcHistogram(),
    eventLoopLines().join("\n"),
    line("process_resident_memory_bytes", "Resident memory of the node process.", memory.rss),
    line("nodejs_heap_used_bytes", "V8 heap in use.", memory.heapUsed),
    line(
      "nodejs_heap_retained_bytes",
      "V8 old generation in use right after the latest full collection (NaN before the first).",
      heapRetainedBytes,
    ),
  ].join("")
}
