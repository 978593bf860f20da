/**
 * The Journal on LMDB (embedded mode): records keyed [shard, offset] with offsets contiguous per
 * shard from 0, a writer epoch per shard for fencing, and appends that resolve only once their
 * transaction is synced to disk (see `durableWriteOptions` in environment.ts).
 *
 * Each append is one child transaction inside lmdb-js's batched write transaction: appends of
 * different shards queued while the previous commit syncs share the next commit (one fdatasync),
 * while each append stays all or nothing (a throw aborts only its child) and checks its epoch
 * atomically with its writes.
 */
import { Effect, Layer } from "effect"
import { decodeJournalRecord, encodeJournalRecord, type JournalRecord } from "../../core/events.ts"
import { Journal, type JournalEntry, JournalFenced, JournalUnavailable, type ShardWriter } from "../journal.ts"
import {
  acquireLedgerEnvironment,
  type JournalKey,
  type LedgerEnvironment,
  type LmdbConfig,
  type LmdbUnavailable,
  lmdbErrorMessage,
} from "./environment.ts"

/** Entries handed to `onEntries` at once during replay: bounds the memory of one read. */
const replayBatchEntriesMax = 1024

/** Returned by an append's transaction callback when another writer owns the shard. */
const fenced = Symbol("fenced")

/** The offset after the shard's last record, read in whichever transaction is current. */
const journalEnd = (environment: LedgerEnvironment, shard: number): number => {
  for (const key of environment.journal.getKeys({
    start: [shard, Number.MAX_SAFE_INTEGER],
    end: [shard, -1],
    reverse: true,
    limit: 1,
  })) {
    return key[1] + 1
  }
  return 0
}

/**
 * True when the shard's log ends exactly at `offset`: offsets are contiguous from 0, so that is
 * "the record before it exists and the one at it does not". Two point lookups cost less than
 * the reverse cursor of `journalEnd`, and every append asks.
 */
const endsAt = (environment: LedgerEnvironment, shard: number, offset: number): boolean =>
  !environment.journal.doesExist([shard, offset]) &&
  (offset === 0 || environment.journal.doesExist([shard, offset - 1]))

interface WriterState {
  readonly epoch: number
  /** Next offset to write; advanced inside the transaction callback, in the order appends run. */
  nextOffset: number
  /** Set once an append failed or the scope closed: the in-memory offset may be ahead of disk. */
  stopped: JournalUnavailable | JournalFenced | undefined
  /** Set inside the write transaction when an append's callback threw; later callbacks refuse. */
  broken: boolean
}

/**
 * Appends one writer may have in flight: one in the commit that is syncing and one queued for the
 * next, so a shard joins every commit. More would only split a shard's records into several
 * appends (each with its own transaction callback) within the same commit.
 */
const appendsInFlightMax = 2

/**
 * Appends of one writer overlap (see `appendsInFlightMax`), so a later append must never land
 * once an earlier one did not. Their callbacks run in call order, in the same or later commits:
 * - an earlier callback that threw marks the writer broken here, at once, so later callbacks refuse;
 * - an earlier commit that failed left the log's real end behind `nextOffset`, and the end check
 *   (one cursor step) refuses every later append;
 * - an earlier append fenced means the epoch moved, which every later one sees too.
 */
const appendInTransaction = (
  environment: LedgerEnvironment,
  shard: number,
  state: WriterState,
  encoded: ReadonlyArray<string>,
): number | typeof fenced => {
  if (state.broken) throw new Error(`journal shard ${shard}: an earlier append of this writer failed`)
  try {
    if (environment.writerEpochs.get(shard) !== state.epoch) return fenced
    if (!endsAt(environment, shard, state.nextOffset)) {
      throw new Error(`journal shard ${shard} ends at ${journalEnd(environment, shard)}, writer at ${state.nextOffset}`)
    }
    let offset = state.nextOffset
    for (const text of encoded) {
      environment.journal.putSync([shard, offset], text)
      offset++
    }
    state.nextOffset = offset
    return offset
  } catch (error) {
    state.broken = true
    throw error
  }
}

const makeWriter = (environment: LedgerEnvironment, shard: number, state: WriterState): ShardWriter => {
  const unavailable = (error: unknown) => new JournalUnavailable({ shard, message: lmdbErrorMessage(error) })
  const stop = (error: JournalUnavailable | JournalFenced) => {
    state.stopped ??= error
    return Effect.fail(error)
  }
  return {
    shard,
    appendsInFlightMax,
    append: (records: ReadonlyArray<JournalRecord>) =>
      Effect.suspend(() => {
        if (state.stopped !== undefined) return Effect.fail(state.stopped)
        // Encoding happens before the transaction so the shared write batch waits on no JSON work.
        const encoded = records.map(encodeJournalRecord)
        return Effect.tryPromise({
          try: () => environment.root.childTransaction(() => appendInTransaction(environment, shard, state, encoded)),
          catch: unavailable,
        }).pipe(
          Effect.catch(stop),
          Effect.flatMap((result) =>
            result === fenced
              ? stop(new JournalFenced({ shard, message: `writer epoch ${state.epoch} was superseded` }))
              : Effect.succeed({ nextOffset: result }),
          ),
        )
      }),
  }
}

/** Bumps the shard's writer epoch durably and reads where its log ends, in one transaction. */
const openWriter = (environment: LedgerEnvironment, shard: number) =>
  Effect.acquireRelease(
    Effect.tryPromise({
      try: () =>
        environment.root.transaction((): WriterState => {
          const epoch = (environment.writerEpochs.get(shard) ?? 0) + 1
          environment.writerEpochs.putSync(shard, epoch)
          return { epoch, nextOffset: journalEnd(environment, shard), stopped: undefined, broken: false }
        }),
      catch: (error) => new JournalUnavailable({ shard, message: lmdbErrorMessage(error) }),
    }),
    (state) =>
      Effect.sync(() => {
        state.stopped ??= new JournalFenced({ shard, message: "the writer was closed" })
      }),
  ).pipe(Effect.map((state) => makeWriter(environment, shard, state)))

const readRaw = (environment: LedgerEnvironment, shard: number, fromOffset: number, toOffset: number) =>
  Effect.try({
    try: () => Array.from(environment.journal.getRange({ start: [shard, fromOffset], end: [shard, toOffset] })),
    catch: (error) => new JournalUnavailable({ shard, message: lmdbErrorMessage(error) }),
  })

/** A gap, a foreign key or a record that does not decode is damage or a bug: stop, do not guess. */
const decodeEntries = (
  shard: number,
  fromOffset: number,
  toOffset: number,
  raw: ReadonlyArray<{ readonly key: JournalKey; readonly value: string }>,
): ReadonlyArray<JournalEntry> => {
  if (raw.length !== toOffset - fromOffset) {
    throw new Error(`journal shard ${shard}: read ${raw.length} records in [${fromOffset}, ${toOffset})`)
  }
  return raw.map(({ key, value }, index) => {
    const offset = fromOffset + index
    if (key[0] !== shard || key[1] !== offset) throw new Error(`journal shard ${shard}: offset ${offset} missing`)
    return { offset, record: decodeJournalRecord(value) }
  })
}

/**
 * Reads up to the end as of the call, in batches, yielding between them so a long replay does not
 * hold the event loop. Records before that end never change, so later batches may use newer read
 * snapshots. A record that does not decode is a bug or corruption, so it dies rather than fails.
 */
const replay = (
  environment: LedgerEnvironment,
  shard: number,
  fromOffset: number,
  onEntries: (entries: ReadonlyArray<JournalEntry>) => void,
) =>
  Effect.gen(function* () {
    const end = yield* Effect.try({
      try: () => {
        // Sees every commit that resolved before this call, not a read snapshot from an earlier turn.
        environment.root.resetReadTxn()
        return journalEnd(environment, shard)
      },
      catch: (error) => new JournalUnavailable({ shard, message: lmdbErrorMessage(error) }),
    })
    for (let offset = fromOffset; offset < end; offset += replayBatchEntriesMax) {
      const toOffset = Math.min(end, offset + replayBatchEntriesMax)
      const raw = yield* readRaw(environment, shard, offset, toOffset)
      onEntries(yield* Effect.sync(() => decodeEntries(shard, offset, toOffset, raw)))
      yield* Effect.yieldNow
    }
    return { nextOffset: Math.max(fromOffset, end) }
  })

export const makeLmdbJournal = (environment: LedgerEnvironment): Journal["Service"] =>
  Journal.of({
    openWriter: (shard) => openWriter(environment, shard),
    replay: (shard, fromOffset, onEntries) => replay(environment, shard, fromOffset, onEntries),
  })

/** The journal alone on its own environment; `layerLmdb` provides it with the other ports. */
export const layerLmdbJournal = (config: LmdbConfig): Layer.Layer<Journal, LmdbUnavailable> =>
  Layer.effect(Journal)(acquireLedgerEnvironment(config).pipe(Effect.map(makeLmdbJournal)))
