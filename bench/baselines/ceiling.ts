/**
 * What the durability ceilings share: their result shape, production-shaped journal records of a
 * chosen size, and the measuring loop (one append in flight per shard, every shard at once, for a
 * fixed time after a warm-up), so the Kafka and LMDB ceilings and the journal writers they are
 * compared with are timed by the same code.
 */
import type * as hdr from "hdr-histogram-js"
import { encodeJournalRecord, type JournalRecord } from "../../core/events.ts"
import { newLatencyHistogram as newHistogram } from "../load/histograms.ts"
import { transferRecord } from "../support/journal-records.ts"

export interface CeilingResult {
  readonly name: string
  readonly recordsPerSecond: number
  readonly appendLatencyMs: { readonly p50: number; readonly p99: number; readonly p999: number }
  readonly settings: Record<string, unknown>
}

/** Distinct records built before a run and reused in turn, so building them is not timed. */
const recordPoolSize = 4096

/** The encoded size of the benchmark's transfer record as it is, with nothing added. */
export const naturalRecordBytes = (): number => Buffer.byteLength(encodeJournalRecord(transferRecord(0)))

/**
 * A transfer record whose encoding is `recordBytes` long (when that is at least the natural size):
 * the correlation id is lengthened, which adds exactly one byte per ASCII character.
 */
const sizedRecord = (index: number, recordBytes: number): JournalRecord => {
  const record = transferRecord(index)
  const missingBytes = recordBytes - Buffer.byteLength(encodeJournalRecord(record))
  const event = record.events[0]
  if (missingBytes <= 0 || event === undefined) return record
  return { ...record, events: [{ ...event, correlationId: event.correlationId + "x".repeat(missingBytes) }] }
}

export const recordPool = (recordBytes: number): ReadonlyArray<JournalRecord> =>
  Array.from({ length: recordPoolSize }, (_, index) => sizedRecord(index, recordBytes))

export type AppendBatch = (records: ReadonlyArray<JournalRecord>) => Promise<void>

export interface LoopOptions {
  readonly durationMs: number
  readonly warmupMs: number
  readonly batchRecords: number
  readonly records: ReadonlyArray<JournalRecord>
}

export interface LoopMeasurement {
  readonly latencyMicros: hdr.Histogram
  readonly recordsAppended: number
  readonly elapsedMs: number
}

/**
 * Every append function runs its own loop, one batch in flight at a time (the journal's group
 * commit for one shard), all loops at once. Appends that start in the warm-up are not counted.
 * The loops stop by themselves at the deadline; a failed append fails the measurement.
 */
export const measureAppendLoops = async (
  appends: ReadonlyArray<AppendBatch>,
  options: LoopOptions,
): Promise<LoopMeasurement> => {
  const latencyMicros = newHistogram()
  const startedAt = performance.now()
  const measuredFrom = startedAt + options.warmupMs
  const deadline = measuredFrom + options.durationMs
  let recordsAppended = 0
  const loop = async (append: AppendBatch, loopIndex: number) => {
    let next = (loopIndex * 997) % options.records.length
    while (performance.now() < deadline) {
      const batch: Array<JournalRecord> = []
      for (let count = 0; count < options.batchRecords; count++) {
        batch.push(options.records[next] as JournalRecord)
        next = (next + 1) % options.records.length
      }
      const sentAt = performance.now()
      await append(batch)
      if (sentAt < measuredFrom) continue
      latencyMicros.recordValue(Math.max(1, Math.round((performance.now() - sentAt) * 1000)))
      recordsAppended += batch.length
    }
  }
  await Promise.all(appends.map((append, index) => loop(append, index)))
  // The last appends end after the deadline: the measured window runs until the last one ended.
  return { latencyMicros, recordsAppended, elapsedMs: performance.now() - measuredFrom }
}

export const ceilingResult = (
  name: string,
  measurement: LoopMeasurement,
  settings: Record<string, unknown>,
): CeilingResult => {
  const ms = (percentile: number) => measurement.latencyMicros.getValueAtPercentile(percentile) / 1000
  return {
    name,
    recordsPerSecond: Math.round((measurement.recordsAppended / measurement.elapsedMs) * 1000),
    appendLatencyMs: { p50: ms(50), p99: ms(99), p999: ms(99.9) },
    settings: { ...settings, appendsMeasured: measurement.latencyMicros.totalCount },
  }
}

export const formatCeiling = (result: CeilingResult): string =>
  `${result.name}: ${result.recordsPerSecond} records/s, append p50 ${result.appendLatencyMs.p50.toFixed(2)} ms, ` +
  `p99 ${result.appendLatencyMs.p99.toFixed(2)} ms, p99.9 ${result.appendLatencyMs.p999.toFixed(2)} ms`

/** A positive number given on the command line as `<name> <value>`, for the ceilings' own CLIs. */
export const numberArgument = (name: string, fallback: number): number => {
  const index = process.argv.indexOf(name)
  const value = index >= 0 ? Number(process.argv[index + 1]) : fallback
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number`)
  return value
}
