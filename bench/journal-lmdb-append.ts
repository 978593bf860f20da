/**
 * Append latency (p50/p99/p99.9) and throughput of the LMDB journal (embedded mode), every append
 * fsync'd before it resolves, for batches of 1, 16 and 128 records per shard: one shard, then
 * appends holding 16 shards' records each (one node flush, one append in flight, as the node
 * does). Timed by the same loop as the benchmark suite's LMDB ceiling. Then the replay time of a 10k-record shard. Data goes to a
 * temporary directory under BENCH_DIR (default: the OS temp directory), on the disk being measured.
 * Run: `node --import tsx bench/journal-lmdb-append.ts` (BENCH_SECONDS sets each run's length).
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { Journal } from "../persistence/journal.ts"
import { layerLmdb } from "../persistence/lmdb/layer-lmdb.ts"
import { formatCeiling } from "./baselines/ceiling.ts"
import { measureLmdbCeiling } from "./baselines/lmdb-ceiling.ts"
import { describeDisk, transferRecord } from "./support/journal-records.ts"
import { describeMachine } from "./support/machine.ts"

const batchSizes = [1, 16, 128]
const durationMs = Number(process.env.BENCH_SECONDS ?? "5") * 1000
const replayRecords = 10_000

const replayRun = (dataDir: string) =>
  Effect.gen(function* () {
    const journal = yield* Journal
    const writer = yield* journal.openWriter(0)
    for (let start = 0; start < replayRecords; start += 500) {
      yield* writer.append(Array.from({ length: 500 }, (_, index) => transferRecord(start + index)))
    }
    let records = 0
    const startedAt = performance.now()
    yield* journal.replay(0, 0, (entries) => {
      records += entries.length
    })
    console.log(`replay of ${records} records (decoded): ${(performance.now() - startedAt).toFixed(1)} ms`)
  }).pipe(Effect.scoped, Effect.provide(layerLmdb({ dataDir })))

const baseDirectory = mkdtempSync(join(process.env.BENCH_DIR ?? tmpdir(), "journal-lmdb-bench-"))
try {
  console.log(`machine: ${describeMachine()}`)
  console.log(`disk: ${describeDisk(baseDirectory)}`)
  console.log(`LMDB journal, every append fsync'd; ${durationMs / 1000} s per run after a warm-up`)
  for (const shards of [1, 16]) {
    for (const batchRecords of batchSizes) {
      const dataDir = mkdtempSync(join(baseDirectory, "run-"))
      const result = await measureLmdbCeiling({ dataDir, durationMs, batchRecords, shards })
      console.log(
        `${String(shards).padStart(2)} shard(s), batch ${String(batchRecords).padStart(3)}: ${formatCeiling(result)}`,
      )
    }
  }
  await Effect.runPromise(replayRun(mkdtempSync(join(baseDirectory, "replay-"))))
} finally {
  rmSync(baseDirectory, { recursive: true, force: true })
}
