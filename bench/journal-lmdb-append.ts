/**
 * Append latency (p50/p99/p99.9) and throughput of the LMDB journal (embedded mode), every append
 * fsync'd before it resolves, for batches of 1, 16 and 128 records of about 300 bytes: one shard
 * appending alone, then 16 shards appending concurrently (one append in flight per shard, as the
 * runtime's group commit does), where lmdb-js gathers the shards' appends into shared commits.
 * Then the replay time of a 10k-record shard. Data goes to a temporary directory under
 * BENCH_DIR (default: the OS temp directory), which must be on the disk being measured.
 * Run: `node --import tsx bench/journal-lmdb-append.ts` (BENCH_APPENDS sets appends per run).
 */

import { execFileSync } from "node:child_process"
import { randomUUID } from "node:crypto"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { pathToFileURL } from "node:url"
import { Effect, type Scope } from "effect"
import * as hdr from "hdr-histogram-js"
import { type Event, encodeJournalRecord, type JournalRecord } from "../core/events.ts"
import type { AccountId, TenantId } from "../core/ids.ts"
import type { Currency } from "../core/money.ts"
import { Journal, type ShardWriter } from "../persistence/journal.ts"
import { layerLmdb } from "../persistence/lmdb/layer-lmdb.ts"
import { describeMachine } from "./support/machine.ts"

const batchSizes = [1, 16, 128]
const concurrentShards = 16
/** Appends measured per shard, batch size and scenario, after a warm-up. */
const appendsPerRun = Number(process.env.BENCH_APPENDS ?? "2000")
const warmUpAppends = 100
const replayRecords = 10_000

/** A transfer debit with production-shaped ids: about 300 bytes once encoded. */
export const transferRecord = (index: number): JournalRecord => {
  const event: Event = {
    _tag: "TransferDebited",
    schemaVersion: 1,
    tenantId: "tenant-bench-0001" as TenantId,
    accountId: `acct-${String(index % 10_000).padStart(8, "0")}` as AccountId,
    paymentId: `pay-${randomUUID()}`,
    correlationId: randomUUID(),
    sequence: index + 1,
    timestampMs: 1_700_000_000_000 + index,
    to: `acct-${String((index * 7) % 10_000).padStart(8, "0")}` as AccountId,
    amountMinor: BigInt(1_000 + index),
    currency: "EUR" as Currency,
    settled: index % 2 === 0,
  }
  return { events: [event] }
}

export const newHistogram = () =>
  hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 })

const printResult = (label: string, batchSize: number, latencyMicros: hdr.Histogram, elapsedMs: number): void => {
  const ms = (percentile: number) => (latencyMicros.getValueAtPercentile(percentile) / 1000).toFixed(2)
  const appendsPerSecond = (latencyMicros.totalCount / elapsedMs) * 1000
  console.log(
    `${label.padEnd(10)} batch ${String(batchSize).padStart(3)}: p50 ${ms(50)} ms, p99 ${ms(99)} ms, ` +
      `p99.9 ${ms(99.9)} ms, max ${(latencyMicros.maxValue / 1000).toFixed(2)} ms; ` +
      `${appendsPerSecond.toFixed(0)} appends/s, ${(appendsPerSecond * batchSize).toFixed(0)} records/s`,
  )
}

/** One shard's loop: `count` sequential appends of fresh records, each timed into `latencyMicros`. */
const appendLoop = (writer: ShardWriter, batchSize: number, count: number, latencyMicros: hdr.Histogram | undefined) =>
  Effect.gen(function* () {
    let index = 0
    for (let appended = 0; appended < count; appended++) {
      const batch = Array.from({ length: batchSize }, () => transferRecord(index++))
      const sentAt = performance.now()
      yield* writer.append(batch)
      latencyMicros?.recordValue(Math.max(1, Math.round((performance.now() - sentAt) * 1000)))
    }
  })

/** Every shard appends `appendsPerRun` batches concurrently, after a warm-up; one histogram for all. */
const measure = (label: string, writers: ReadonlyArray<ShardWriter>, batchSize: number) =>
  Effect.gen(function* () {
    yield* Effect.forEach(writers, (writer) => appendLoop(writer, batchSize, warmUpAppends, undefined), {
      concurrency: "unbounded",
    })
    const latencyMicros = newHistogram()
    const startedAt = performance.now()
    yield* Effect.forEach(writers, (writer) => appendLoop(writer, batchSize, appendsPerRun, latencyMicros), {
      concurrency: "unbounded",
    })
    printResult(label, batchSize, latencyMicros, performance.now() - startedAt)
  })

const appendRuns = Effect.gen(function* () {
  const journal = yield* Journal
  let nextShard = 0
  const openShards = (count: number) =>
    Effect.forEach(Array.from({ length: count }), () => journal.openWriter(nextShard++))
  for (const batchSize of batchSizes) yield* measure("1 shard", yield* openShards(1), batchSize)
  for (const batchSize of batchSizes) {
    yield* measure(`${concurrentShards} shards`, yield* openShards(concurrentShards), batchSize)
  }
  return nextShard
})

const replayRun = (shard: number) =>
  Effect.gen(function* () {
    const journal = yield* Journal
    const writer = yield* journal.openWriter(shard)
    for (let start = 0; start < replayRecords; start += 500) {
      yield* writer.append(Array.from({ length: 500 }, (_, index) => transferRecord(start + index)))
    }
    let records = 0
    const startedAt = performance.now()
    yield* journal.replay(shard, 0, (entries) => {
      records += entries.length
    })
    console.log(`replay of ${records} records (decoded): ${(performance.now() - startedAt).toFixed(1)} ms`)
  })

export const describeDisk = (directory: string): string => {
  try {
    return execFileSync("df", ["-T", "-h", directory], { encoding: "utf8" }).trim().split("\n").at(-1) ?? "unknown"
  } catch {
    return "unknown"
  }
}

const main = async () => {
  const dataDir = mkdtempSync(join(process.env.BENCH_DIR ?? tmpdir(), "journal-lmdb-bench-"))
  const recordBytes = encodeJournalRecord(transferRecord(123)).length
  console.log(`machine: ${describeMachine()}`)
  console.log(`disk: ${describeDisk(dataDir)}`)
  console.log(
    `LMDB journal, every append fsync'd; records ~${recordBytes} B; ${appendsPerRun} appends per shard per run ` +
      `after ${warmUpAppends} warm-up; one append in flight per shard`,
  )
  const run = <A, E>(program: Effect.Effect<A, E, Journal | Scope.Scope>) =>
    Effect.runPromise(Effect.scoped(program).pipe(Effect.provide(layerLmdb({ dataDir }))))
  try {
    const shardsUsed = await run(appendRuns)
    await run(replayRun(shardsUsed))
  } finally {
    rmSync(dataDir, { recursive: true, force: true })
  }
}

// Imported by the LMDB ceiling (bench/baselines/lmdb-ceiling.ts) for its records: run only as a script.
if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) await main()
