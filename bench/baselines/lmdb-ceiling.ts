/**
 * The durability ceiling of embedded mode: how many journal records per second the product's LMDB
 * journal adapter (persistence/lmdb) makes durable, every append fsync'd before it resolves, in the
 * shape the node uses it: one writer owning every shard, one append in flight, each append a node
 * flush holding `batchRecords` records of every shard.
 * Data goes to `dataDir`, which must be on the disk being measured.
 * Run: `node --import tsx bench/baselines/lmdb-ceiling.ts [--duration-ms 10000] [--batch-records 64]
 * [--shards 16]` (a temporary directory under BENCH_DIR or the OS temp directory).
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { pathToFileURL } from "node:url"
import { Context, Effect, Exit, Layer, Scope } from "effect"
import { Journal } from "../../persistence/journal.ts"
import { layerLmdb } from "../../persistence/lmdb/layer-lmdb.ts"
import { describeDisk } from "../support/journal-records.ts"
import { describeMachine } from "../support/machine.ts"
import {
  type AppendBatch,
  type CeilingResult,
  ceilingResult,
  formatCeiling,
  measureAppendLoops,
  naturalRecordBytes,
  numberArgument,
  recordPool,
} from "./ceiling.ts"

export type { CeilingResult } from "./ceiling.ts"

export interface LmdbCeilingOptions {
  /** A directory of the benchmark's own; the LMDB environment is created under it. */
  readonly dataDir: string
  readonly durationMs: number
  /** Encoded size of each record; default (or anything smaller) is the natural transfer record's. */
  readonly recordBytes?: number
  /** Records of each shard in one append. */
  readonly batchRecords: number
  /** Shards in each append; default 16 (the node's default SHARD_COUNT). */
  readonly shards?: number
  /** Appends before this are not measured; default 2000. */
  readonly warmupMs?: number
}

export const measureLmdbCeiling = async (options: LmdbCeilingOptions): Promise<CeilingResult> => {
  const shards = options.shards ?? 16
  const recordBytes = Math.max(options.recordBytes ?? 0, naturalRecordBytes())
  const scope = await Effect.runPromise(Scope.make())
  try {
    const shardIds = Array.from({ length: shards }, (_, shard) => shard)
    const writer = await Effect.runPromise(
      Effect.gen(function* () {
        // Built in the run's scope, so the journal stays open until the measurement is over.
        const journal = Context.get(yield* Layer.build(layerLmdb({ dataDir: options.dataDir })), Journal)
        return yield* journal.openWriter(shardIds)
      }).pipe(Scope.provide(scope)),
    )
    // One loop: the node keeps one flush in flight. Its records are dealt to the shards in turn.
    const appends: ReadonlyArray<AppendBatch> = [
      (records) =>
        Effect.runPromise(
          writer.appendShards(
            shardIds.map((shard) => ({ shard, records: records.filter((_, index) => index % shards === shard) })),
          ),
        ).then(() => undefined),
    ]
    const measurement = await measureAppendLoops(appends, {
      durationMs: options.durationMs,
      warmupMs: options.warmupMs ?? 2_000,
      batchRecords: options.batchRecords * shards,
      records: recordPool(recordBytes),
    })
    return ceilingResult("lmdb-journal", measurement, {
      dataDir: options.dataDir,
      disk: describeDisk(options.dataDir),
      shards,
      recordBytes,
      batchRecordsPerShard: options.batchRecords,
      appendsInFlight: 1,
      fsync: "every commit (the product's durableWriteOptions)",
      durationMs: options.durationMs,
    })
  } finally {
    await Effect.runPromise(Scope.close(scope, Exit.void))
  }
}

const main = async () => {
  const dataDir = mkdtempSync(join(process.env.BENCH_DIR ?? tmpdir(), "lmdb-ceiling-"))
  try {
    const options: LmdbCeilingOptions = {
      dataDir,
      durationMs: numberArgument("--duration-ms", 10_000),
      batchRecords: numberArgument("--batch-records", 64),
      shards: numberArgument("--shards", 16),
    }
    console.log(`machine: ${describeMachine()}`)
    console.log(`disk: ${describeDisk(dataDir)}`)
    const result = await measureLmdbCeiling(options)
    console.log(formatCeiling(result))
    console.log(`  ${JSON.stringify(result.settings)}`)
  } finally {
    rmSync(dataDir, { recursive: true, force: true })
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) await main()
