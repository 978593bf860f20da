/**
 * The Journal on LMDB (embedded mode): records keyed [shard, offset] with offsets contiguous per
 * shard from 0, a writer epoch per shard for fencing, and appends that resolve only once their
 * transaction is synced to disk (see `durableWriteOptions` in environment.ts).
 *
 * Each append is one child transaction inside lmdb-js's batched write transaction, covering every
 * shard of one node flush: appends queued while the previous commit syncs share the next commit
 * (one fdatasync), while each append stays all or nothing across its shards (a throw aborts only
 * its child) and checks every epoch atomically with its writes. Records a snapshot covers are
 * discarded (`discardBefore`), so the journal's disk is bounded by what snapshots have not covered.
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
  singleShardAppend,
  writerShards,
} from "../journal.ts"
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
 * Appends one writer may have in flight: one in the commit that is syncing and one queued for the
 * next, so the node joins every commit. More would only split a flush into several appends (each
 * with its own transaction callback) within the same commit.
 */
const appendsInFlightMax = 2

/**
 * Appends of one writer overlap (see `appendsInFlightMax`), so a later append must never land
 * once an earlier one did not. Their callbacks run in call order, in the same or later commits:
 * - an earlier callback that threw marks the writer broken here, at once, so later callbacks refuse;
 * - an earlier commit that failed left a log's real end behind `nextOffsets`, and the end check
 *   refuses every later append;
 * - an earlier append fenced means an epoch moved, which every later one sees too.
 * The whole batch is one child transaction: all its shards' records land, or none.
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
      const nextOffset = state.nextOffsets.get(shard) as number
      if (!endsAt(environment, shard, nextOffset)) {
        throw new Error(`journal shard ${shard} ends at ${journalEnd(environment, shard)}, writer at ${nextOffset}`)
      }
    }
    return encoded.map(({ shard, texts }) => {
      let offset = state.nextOffsets.get(shard) as number
      for (const text of texts) {
        environment.journal.putSync([shard, offset], text)
        offset++
      }
      state.nextOffsets.set(shard, offset)
      return offset
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
      // Encoding happens before the transaction so the shared write batch waits on no JSON work.
      const encoded = batch.map(({ shard, records }) => ({ shard, texts: records.map(encodeJournalRecord) }))
      return Effect.tryPromise({
        try: () => environment.root.childTransaction(() => appendInTransaction(environment, state, encoded)),
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
            nextOffsets.set(shard, journalEnd(environment, shard))
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

/** Keys deleted per transaction when discarding: keeps each transaction (and the event loop) short. */
const discardSliceKeysMax = 4096

/**
 * Deletes a shard's records before `offset`, in slices, but never its last record: the end of the
 * log is where the next writer continues, and an empty log would make it start again at 0.
 */
const discardBefore = (environment: LedgerEnvironment, shard: number, offset: number) =>
  Effect.gen(function* () {
    for (;;) {
      const deleted = yield* Effect.tryPromise({
        try: () =>
          environment.root.childTransaction(() => {
            const last = journalEnd(environment, shard) - 1
            const keys = Array.from(
              environment.journal.getKeys({
                start: [shard, 0],
                end: [shard, Math.min(offset, last)],
                limit: discardSliceKeysMax,
              }),
            )
            for (const key of keys) environment.journal.removeSync(key)
            return keys.length
          }),
        catch: (error) => new JournalUnavailable({ shard, message: lmdbErrorMessage(error) }),
      })
      if (deleted < discardSliceKeysMax) return
      yield* Effect.yieldNow
    }
  })

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
    openWriter: (shards) => openWriter(environment, shards),
    replay: (shard, fromOffset, onEntries) => replay(environment, shard, fromOffset, onEntries),
    discardBefore: (shard, offset) => discardBefore(environment, shard, offset),
  })

/** The journal alone on its own environment; `layerLmdb` provides it with the other ports. */
export const layerLmdbJournal = (config: LmdbConfig): Layer.Layer<Journal, LmdbUnavailable> =>
  Layer.effect(Journal)(acquireLedgerEnvironment(config).pipe(Effect.map(makeLmdbJournal)))
