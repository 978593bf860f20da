/**
 * Child process of the LMDB kill-durability fault test: opens the embedded persistence on the
 * data directory given as argument, opens a writer per shard (fencing the previous run's) and
 * appends batches of random size to every shard concurrently, printing one line per acknowledged batch:
 *   ack {"shard","batch","fromOffset","nextOffset","records","checksum"}
 * Each batch id carries the run id, so the test can tell runs and batches apart in the replay.
 *
 * Usage: node --import tsx test/fault/support/lmdb-appender.ts <dataDir> <runId> [--pause-after <batches>]
 * With --pause-after, every shard stops appending after that many batches and the process prints
 * "paused" and waits, holding no transaction, until SIGUSR2; then it tries one more append per
 * shard and prints "fenced <shard>" or "appended <shard>" for each, and exits.
 */
import { createHash } from "node:crypto"
import { pathToFileURL } from "node:url"
import { Effect } from "effect"
import type { Event, JournalRecord } from "../../../core/events.ts"
import { encodeJournalRecord } from "../../../core/events.ts"
import type { AccountId, TenantId } from "../../../core/ids.ts"
import type { Currency } from "../../../core/money.ts"
import { Journal, type ShardWriter } from "../../../persistence/journal.ts"
import { layerLmdb } from "../../../persistence/lmdb/layer-lmdb.ts"

export const appenderShards = [0, 1, 2, 3] as const
const batchRecordsMax = 24

export const checksumOf = (records: ReadonlyArray<JournalRecord>): string => {
  const hash = createHash("sha256")
  for (const record of records) hash.update(encodeJournalRecord(record)).update("\n")
  return hash.digest("hex").slice(0, 16)
}

/** Record `index` of batch `batchId`: its payment id names the batch, so replay can regroup it. */
const recordOf = (batchId: string, index: number): JournalRecord => {
  const amountMinor = BigInt(Math.floor(Math.random() * 1_000_000_000)) * 1_000_000_007n + 1n
  const event: Event = {
    _tag: "FundsDeposited",
    schemaVersion: 1,
    tenantId: "fault-tenant" as TenantId,
    accountId: `acc-${index % 7}` as AccountId,
    paymentId: `${batchId}/${index}`,
    correlationId: `corr-${batchId}/${index}`,
    sequence: index + 2,
    timestampMs: Date.now(),
    amountMinor,
    currency: "EUR" as Currency,
  }
  return { events: [event] }
}

const args = process.argv.slice(2)
const [dataDir, runId] = args
const pauseIndex = args.indexOf("--pause-after")
const pauseAfterBatches = pauseIndex >= 0 ? Number(args[pauseIndex + 1]) : Number.POSITIVE_INFINITY

const print = (line: string) => process.stdout.write(`${line}\n`)

const appendBatches = (shard: number, writer: ShardWriter) =>
  Effect.gen(function* () {
    for (let batchIndex = 0; batchIndex < pauseAfterBatches; batchIndex++) {
      const batchId = `${runId}:${shard}:${batchIndex}`
      const size = 1 + Math.floor(Math.random() * batchRecordsMax)
      const records = Array.from({ length: size }, (_, index) => recordOf(batchId, index))
      const { nextOffset } = yield* writer.append(records)
      const fromOffset = nextOffset - size
      const checksum = checksumOf(records)
      print(`ack ${JSON.stringify({ shard, batch: batchId, fromOffset, nextOffset, records: size, checksum })}`)
    }
  })

const waitForSignal = (signal: NodeJS.Signals) =>
  Effect.callback<void>((resume) => {
    // A signal listener alone does not keep the event loop alive.
    const keepAlive = setInterval(() => {}, 1_000)
    process.once(signal, () => {
      clearInterval(keepAlive)
      resume(Effect.void)
    })
  })

const tryOnceMore = (shard: number, writer: ShardWriter) =>
  writer.append([recordOf(`${runId}:${shard}:late`, 0)]).pipe(
    Effect.match({
      onFailure: (error) => print(`${error._tag === "JournalFenced" ? "fenced" : "failed"} ${shard}`),
      onSuccess: () => print(`appended ${shard}`),
    }),
  )

const program = Effect.gen(function* () {
  const journal = yield* Journal
  // Each writer fences every earlier one and continues the log where it ends.
  const writers = yield* Effect.forEach(appenderShards, (shard) =>
    Effect.map(journal.openWriter(shard), (writer) => ({ shard, writer })),
  )
  print(`ready ${process.pid}`)
  yield* Effect.forEach(writers, ({ shard, writer }) => appendBatches(shard, writer), { concurrency: "unbounded" })
  if (!Number.isFinite(pauseAfterBatches)) return
  print("paused")
  yield* waitForSignal("SIGUSR2")
  yield* Effect.forEach(writers, ({ shard, writer }) => tryOnceMore(shard, writer))
})

const main = (dataDirectory: string) =>
  Effect.runPromise(Effect.scoped(program).pipe(Effect.provide(layerLmdb({ dataDir: dataDirectory })))).then(
    () => process.exit(0),
    (error: unknown) => {
      console.error(`lmdb-appender failed: ${String(error)}`)
      process.exit(1)
    },
  )

// The test imports `checksumOf` and `appenderShards` from here: run only as the entry point.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  if (dataDir === undefined || runId === undefined) {
    console.error("usage: lmdb-appender.ts <dataDir> <runId> [--pause-after <batches>]")
    process.exit(2)
  }
  void main(dataDir)
}
