/**
 * The Journal on LMDB (embedded mode): a log of flushes. Each append (one node flush, many shards)
 * is one value under the next flush number, holding every shard's records (see flush-codec.ts); a
 * small table keeps each shard's next offset (offsets are contiguous per shard from 0) and the next
 * flush number. Writing one value per commit, instead of one key per record in each shard's own key
 * range, copies one B-tree path per commit instead of one per shard: about half the CPU per commit
 * and twice the commits per second on this machine's disk (measured with 16 shards).
 *
 * Each append is one synchronous write transaction on the calling thread, committed and synced
 * (fdatasync) before it returns; it is all or nothing across its shards and checks, atomically with
 * its writes, every shard's writer epoch (fencing) and that the shard's log ends where this writer
 * expects (so no append lands once an earlier one of the same writer did not). Synchronous because
 * the node already groups a flush's commands into one append and keeps one append in flight: handed
 * to lmdb-js's write thread instead, each commit cost about 300 us of CPU against 170 us here (the
 * thread hand-off and promise), and at 5,000 and 10,000 transfers/s p50 was 2.6 to 12.8 ms against
 * 2.1 to 5.0 ms synchronously, p99 30 to 109 against 17 to 74 ms (interleaved runs, same window).
 * Requests that arrive during the sync wait in the socket buffers and join the next flush. Flushes
 * every shard's snapshot covers are discarded.
 */
import { Effect, Layer } from "effect"
import { decodeJournalRecord, encodeJournalRecord } from "../../core/events.ts"
import {
  Journal,
  type JournalEntry,
  JournalFenced,
  JournalUnavailable,
  type JournalWriter,
  type ShardRecords,
  shardSetWriterId,
  singleShardAppend,
  writerShards,
} from "../journal.ts"
import {
  acquireLedgerEnvironment,
  type LedgerEnvironment,
  type LmdbConfig,
  type LmdbUnavailable,
  lmdbErrorMessage,
} from "./environment.ts"
import { decodeFlushHeader, encodeFlush, type FlushHeader, sectionTexts } from "./flush-codec.ts"

/** Key of the journal-ends table that holds the next flush number (shards are 0 and up). */
const nextFlushKey = -1

/** Entries handed to `onEntries` at once during replay: bounds the memory of one read. */
const replayBatchEntriesMax = 1024
/** Flushes read per read of a replay. */
const replayFlushesPerRead = 64

interface WriterState {
  readonly shards: ReadonlyArray<number>
  /** Per owned shard, the writer epoch this writer holds. */
  readonly epochs: ReadonlyMap<number, number>
  /** Per owned shard, the next offset to write; advanced inside the transaction callback, in the order appends run. */
  readonly nextOffsets: Map<number, number>
  /** Set once an append failed or the scope closed: the in-memory offsets may be ahead of disk. */
  stopped: JournalUnavailable | JournalFenced | undefined
  /** Set inside the write transaction when an append's callback threw; later callbacks refuse. */
  broken: boolean
}

/**
 * Appends the node keeps in flight: one (an append is synchronous, so a second could only wait).
 * Even when commits went through lmdb-js's write thread, a second append in flight was mostly a
 * small commit right behind each large one: at 10,000 transfers/s, 0.065 commits per transfer and
 * p99 117 ms with two, 0.043 and 51 ms with one (same machine, same window). The writer still
 * applies appends in call order and never lands one after an earlier one failed (see
 * `appendInTransaction`).
 */
const appendsInFlightMax = 1

/** Every shard's next offset as recorded (shard keys are 0 and up), read in whichever transaction is current. */
const readEnds = (environment: LedgerEnvironment): Map<number, number> => {
  const ends = new Map<number, number>()
  for (const { key, value } of environment.journalEnds.getRange({ start: 0 })) ends.set(key, value)
  return ends
}

/**
 * A later append of a writer must never land once an earlier one did not, whether the appends
 * are synchronous as here or overlap in a batched write transaction. Their callbacks run in call
 * order:
 * - an earlier callback that threw marks the writer broken here, at once, so later callbacks refuse;
 * - an earlier commit that failed left a shard's recorded end behind `nextOffsets`, which the
 *   end check refuses;
 * - an earlier append fenced means an epoch moved, which every later one sees too.
 */
const appendInTransaction = (
  environment: LedgerEnvironment,
  state: WriterState,
  encoded: ReadonlyArray<{ readonly shard: number; readonly texts: ReadonlyArray<string> }>,
): ReadonlyArray<number> | { readonly fencedShard: number } => {
  if (state.broken) throw new Error("journal: an earlier append of this writer failed")
  try {
    for (const { shard } of encoded) {
      if (environment.writerEpochs.get(shard) !== state.epochs.get(shard)) return { fencedShard: shard }
      const expected = state.nextOffsets.get(shard) as number
      const recorded = environment.journalEnds.get(shard) ?? 0
      if (recorded !== expected) throw new Error(`journal shard ${shard} ends at ${recorded}, writer at ${expected}`)
    }
    const ends = readEnds(environment)
    const flush = environment.journalEnds.get(nextFlushKey) ?? 0
    const sections = encoded.map(({ shard, texts }) => {
      const firstOffset = state.nextOffsets.get(shard) as number
      ends.set(shard, firstOffset + texts.length)
      return { shard, firstOffset, texts }
    })
    environment.journalFlushes.putSync(flush, encodeFlush(sections, ends))
    environment.journalEnds.putSync(nextFlushKey, flush + 1)
    return sections.map(({ shard, firstOffset, texts }) => {
      const next = firstOffset + texts.length
      environment.journalEnds.putSync(shard, next)
      state.nextOffsets.set(shard, next)
      return next
    })
  } catch (error) {
    state.broken = true
    throw error
  }
}

const makeWriter = (environment: LedgerEnvironment, state: WriterState): JournalWriter => {
  const firstShard = state.shards[0] ?? -1
  const unavailable = (error: unknown) =>
    new JournalUnavailable({ shard: firstShard, message: lmdbErrorMessage(error) })
  const stop = (error: JournalUnavailable | JournalFenced) => {
    state.stopped ??= error
    return Effect.fail(error)
  }
  const appendShards = (batch: ReadonlyArray<ShardRecords>) =>
    Effect.suspend(() => {
      if (state.stopped !== undefined) return Effect.fail(state.stopped)
      for (const { shard } of batch) {
        if (!state.epochs.has(shard)) return Effect.die(new Error(`journal: writer does not own shard ${shard}`))
      }
      // Encoding happens before the transaction, which holds LMDB's write lock, so that it waits on no JSON work.
      const encoded = batch.map(({ shard, records }) => ({ shard, texts: records.map(encodeJournalRecord) }))
      return Effect.try({
        try: () => environment.root.transactionSync(() => appendInTransaction(environment, state, encoded)),
        catch: unavailable,
      }).pipe(
        Effect.catch(stop),
        Effect.flatMap((result) =>
          "fencedShard" in result
            ? stop(
                new JournalFenced({
                  shard: result.fencedShard,
                  message: `writer epoch ${state.epochs.get(result.fencedShard)} was superseded`,
                }),
              )
            : Effect.succeed(result),
        ),
      )
    })
  return {
    shards: state.shards,
    appendsInFlightMax,
    appendShards,
    append: singleShardAppend(state.shards, appendShards),
  }
}

/** Bumps each shard's writer epoch durably and reads where its log ends, in one transaction. */
const openWriter = (environment: LedgerEnvironment, requested: number | ReadonlyArray<number>) => {
  const shards = writerShards(requested)
  return Effect.acquireRelease(
    Effect.tryPromise({
      try: () =>
        environment.root.transaction((): WriterState => {
          const epochs = new Map<number, number>()
          const nextOffsets = new Map<number, number>()
          for (const shard of shards) {
            const epoch = (environment.writerEpochs.get(shard) ?? 0) + 1
            environment.writerEpochs.putSync(shard, epoch)
            epochs.set(shard, epoch)
            nextOffsets.set(shard, environment.journalEnds.get(shard) ?? 0)
          }
          return { shards, epochs, nextOffsets, stopped: undefined, broken: false }
        }),
      catch: (error) => new JournalUnavailable({ shard: shards[0] ?? -1, message: lmdbErrorMessage(error) }),
    }),
    (state) =>
      Effect.sync(() => {
        state.stopped ??= new JournalFenced({ shard: shards[0] ?? -1, message: "the writer was closed" })
      }),
  ).pipe(Effect.map((state) => makeWriter(environment, state)))
}

/** The first and last flush numbers stored, or undefined when the log is empty. */
const flushRange = (environment: LedgerEnvironment): { readonly first: number; readonly last: number } | undefined => {
  let first: number | undefined
  for (const key of environment.journalFlushes.getKeys({ limit: 1 })) first = key
  let last: number | undefined
  for (const key of environment.journalFlushes.getKeys({ reverse: true, limit: 1 })) last = key
  return first === undefined || last === undefined ? undefined : { first, last }
}

const headerOf = (
  environment: LedgerEnvironment,
  flush: number,
): { readonly bytes: Uint8Array; readonly header: FlushHeader } => {
  const bytes = environment.journalFlushes.getBinary(flush)
  if (bytes === undefined) throw new Error(`journal flush ${flush} is missing`)
  return { bytes, header: decodeFlushHeader(bytes) }
}

/**
 * The first flush whose end for `shard` passes `fromOffset` (the flush holding the record at
 * `fromOffset`, or the first after it): ends only grow with the flush number, so a binary search.
 */
const firstFlushAfter = (
  environment: LedgerEnvironment,
  shard: number,
  fromOffset: number,
  first: number,
  last: number,
) => {
  let low = first
  let high = last + 1
  while (low < high) {
    const middle = Math.floor((low + high) / 2)
    if ((headerOf(environment, middle).header.ends.get(shard) ?? 0) > fromOffset) high = middle
    else low = middle + 1
  }
  return low
}

/** Decodes the shard's records at or after `fromOffset` in one flush; a record that does not decode is corruption. */
const entriesOf = (bytes: Uint8Array, header: FlushHeader, shard: number, fromOffset: number): Array<JournalEntry> => {
  const entries: Array<JournalEntry> = []
  for (const section of header.sections) {
    if (section.shard !== shard) continue
    sectionTexts(bytes, section).forEach((text, index) => {
      const offset = section.firstOffset + index
      if (offset >= fromOffset) entries.push({ offset, record: decodeJournalRecord(text) })
    })
  }
  return entries
}

/**
 * Reads up to the end as of the call, in batches, yielding between reads so a long replay does not
 * hold the event loop. Flushes before that end never change, so later reads may use newer read
 * snapshots. A gap in a shard's offsets, or a record that does not decode, is damage or a bug: it
 * dies rather than fails.
 */
const replay = (
  environment: LedgerEnvironment,
  shard: number,
  fromOffset: number,
  onEntries: (entries: ReadonlyArray<JournalEntry>) => void,
) =>
  Effect.gen(function* () {
    const bounds = yield* Effect.try({
      try: () => {
        // Sees every commit that resolved before this call, not a read snapshot from an earlier turn.
        environment.root.resetReadTxn()
        const end = environment.journalEnds.get(shard) ?? 0
        const range = end > fromOffset ? flushRange(environment) : undefined
        return { end, range }
      },
      catch: (error) => new JournalUnavailable({ shard, message: lmdbErrorMessage(error) }),
    })
    if (bounds.range === undefined) return { nextOffset: Math.max(fromOffset, bounds.end) }
    const { first, last } = bounds.range
    let flush = yield* Effect.sync(() => firstFlushAfter(environment, shard, fromOffset, first, last))
    let expected = fromOffset
    let pending: Array<JournalEntry> = []
    while (flush <= last && expected < bounds.end) {
      const read = yield* Effect.try({
        try: () => Array.from(environment.journalFlushes.getRange({ start: flush, end: flush + replayFlushesPerRead })),
        catch: (error) => new JournalUnavailable({ shard, message: lmdbErrorMessage(error) }),
      })
      yield* Effect.sync(() => {
        for (const { value } of read) {
          for (const entry of entriesOf(value, decodeFlushHeader(value), shard, expected)) {
            if (entry.offset !== expected) throw new Error(`journal shard ${shard}: offset ${expected} missing`)
            pending.push(entry)
            expected++
            if (pending.length === replayBatchEntriesMax) {
              onEntries(pending)
              pending = []
            }
          }
        }
      })
      flush += replayFlushesPerRead
      yield* Effect.yieldNow
    }
    if (pending.length > 0) onEntries(pending)
    if (expected < bounds.end)
      return yield* Effect.die(new Error(`journal shard ${shard}: records ${expected}..${bounds.end} missing`))
    return { nextOffset: Math.max(fromOffset, bounds.end) }
  })

/** Flushes deleted per transaction when discarding: keeps each transaction (and the event loop) short. */
const discardFlushesPerTransaction = 256

/**
 * Deletes, oldest first, the flushes whose every section every shard's snapshots already cover,
 * but never the last one (the log's end must stay readable for the ends it carries). A shard that
 * has not said since this process started where its snapshots stand keeps its flushes.
 */
const makeDiscard = (environment: LedgerEnvironment) => {
  const coveredBefore = new Map<number, number>()
  const covered = (header: FlushHeader) =>
    header.sections.every((section) => section.firstOffset + section.records <= (coveredBefore.get(section.shard) ?? 0))
  return (shard: number, offset: number) =>
    Effect.gen(function* () {
      coveredBefore.set(shard, Math.max(coveredBefore.get(shard) ?? 0, offset))
      for (;;) {
        const deleted = yield* Effect.tryPromise({
          try: () =>
            environment.root.childTransaction(() => {
              const range = flushRange(environment)
              let removed = 0
              for (let flush = range?.first ?? 0; range !== undefined && flush < range.last; flush++) {
                if (removed >= discardFlushesPerTransaction || !covered(headerOf(environment, flush).header)) break
                environment.journalFlushes.removeSync(flush)
                removed++
              }
              return removed
            }),
          catch: (error) => new JournalUnavailable({ shard, message: lmdbErrorMessage(error) }),
        })
        if (deleted < discardFlushesPerTransaction) return
        yield* Effect.yieldNow
      }
    })
}

export const makeLmdbJournal = (environment: LedgerEnvironment): Journal["Service"] => {
  const discardBefore = makeDiscard(environment)
  return Journal.of({
    openWriter: (shards) => openWriter(environment, shards),
    replay: (shard, fromOffset, onEntries) => replay(environment, shard, fromOffset, onEntries),
    // Writer epochs are per shard, in the append's own transaction: a new owner fences each shard it opens.
    writerIdOf: (shards) => shardSetWriterId("lmdb", shards),
    fence: () => Effect.void,
    discardBefore,
  })
}

/** The journal alone on its own environment; `layerLmdb` provides it with the other ports. */
export const layerLmdbJournal = (config: LmdbConfig): Layer.Layer<Journal, LmdbUnavailable> =>
  Layer.effect(Journal)(acquireLedgerEnvironment(config).pipe(Effect.map(makeLmdbJournal)))
