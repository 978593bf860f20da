/**
 * The Journal port: an append-only log per shard of journal records (one accepted command's events
 * on that shard each). A writer holds a set of shards and appends to several of them in one atomic
 * unit (one LMDB transaction, one Kafka transaction), which is how a node commits a transfer's debit
 * and credit together when it owns both shards, and how one flush serves every shard at once.
 * Opening a writer fences every earlier writer of its shards, so a stale owner can never get an
 * append acknowledged after a new owner has started.
 */
import { Context, Effect, Schema, type Scope } from "effect"
import type { JournalRecord } from "../core/events.ts"

/**
 * The journal cannot be reached or refused the write. The append was not acknowledged; its records
 * may or may not be durable (a networked journal cannot recall a request), and rebuilding the shard
 * (fence, then replay) settles which.
 */
export class JournalUnavailable extends Schema.TaggedError<JournalUnavailable>()("JournalUnavailable", {
  shard: Schema.Number,
  message: Schema.String,
}) {}

/** Another writer owns the shard now; this writer must stop serving it. */
export class JournalFenced extends Schema.TaggedError<JournalFenced>()("JournalFenced", {
  shard: Schema.Number,
  message: Schema.String,
}) {}

export interface JournalEntry {
  /** Position of the record in its shard's log; increasing, not necessarily contiguous. */
  readonly offset: number
  readonly record: JournalRecord
}

/** Records for one shard within an atomic append. */
export interface ShardRecords {
  readonly shard: number
  readonly records: ReadonlyArray<JournalRecord>
}

export interface JournalWriter {
  /** The shards this writer owns, ascending. */
  readonly shards: ReadonlyArray<number>
  /**
   * How many appends may be in flight at once. A writer that takes more than one applies them in
   * call order and never makes an append durable once an earlier one failed.
   */
  readonly appendsInFlightMax: number
  /**
   * Appends the records of several shards (each at most once, all owned), all or nothing, and
   * returns for each element of `batch` the offset a replay of that shard must start from to read
   * whatever is appended after it.
   */
  readonly appendShards: (
    batch: ReadonlyArray<ShardRecords>,
  ) => Effect.Effect<ReadonlyArray<number>, JournalUnavailable | JournalFenced>
  /** `appendShards` for a writer of one shard: the records of one group commit, in order. */
  readonly append: (
    records: ReadonlyArray<JournalRecord>,
  ) => Effect.Effect<{ readonly nextOffset: number }, JournalUnavailable | JournalFenced>
}

/** A writer of one shard (what `openWriter(shard)` gives). */
export type ShardWriter = JournalWriter

export class Journal extends Context.Service<
  Journal,
  {
    /** Opens the only live writer of a set of shards (or one shard), fencing earlier ones; closed with the scope. */
    readonly openWriter: (
      shards: number | ReadonlyArray<number>,
    ) => Effect.Effect<JournalWriter, JournalUnavailable, Scope.Scope>
    /**
     * Reads a shard's durable records from `fromOffset` to the end as of the call, handing them to
     * `onEntries` in order and in bounded batches; returns the offset after the last one read.
     */
    readonly replay: (
      shard: number,
      fromOffset: number,
      onEntries: (entries: ReadonlyArray<JournalEntry>) => void,
    ) => Effect.Effect<{ readonly nextOffset: number }, JournalUnavailable>
    /** The id a writer of this shard set has (Kafka: its transactional id); an ownership registers it with its claim. */
    readonly writerIdOf: (shards: ReadonlyArray<number>) => string
    /**
     * Fences every writer opened with `writerId`: the previous owner of a shard being taken, whose
     * writer held another shard set, gets nothing acknowledged from then on. A journal that fences
     * per shard anyway (LMDB, memory) has nothing to do.
     */
    readonly fence: (writerId: string) => Effect.Effect<void, JournalUnavailable>
    /**
     * Lets the journal discard a shard's records before `offset`: a snapshot holds their effects.
     * The embedded journal deletes them (its disk is bounded by what snapshots have not covered);
     * the Kafka journal keeps its topic's own retention and discards nothing here.
     */
    readonly discardBefore: (shard: number, offset: number) => Effect.Effect<void, JournalUnavailable>
  }
>()("payments/Journal") {}

/** A writer id for journals that fence per shard: it names the set, for the operators' logs. */
export const shardSetWriterId = (prefix: string, shards: ReadonlyArray<number>): string =>
  `${prefix}-shards-${writerShards(shards).join("_")}`

/** The shard set of `openWriter`'s argument, ascending and without repeats. */
export const writerShards = (shards: number | ReadonlyArray<number>): ReadonlyArray<number> =>
  typeof shards === "number" ? [shards] : [...new Set(shards)].sort((a, b) => a - b)

/**
 * `append` in terms of `appendShards`, for adapters: only a writer of exactly one shard may use it,
 * since records name no shard of their own.
 */
export const singleShardAppend =
  (shards: ReadonlyArray<number>, appendShards: JournalWriter["appendShards"]): JournalWriter["append"] =>
  (records) => {
    const [shard] = shards
    if (shards.length !== 1 || shard === undefined) {
      return Effect.die(new Error(`append(records) needs a writer of one shard; this one holds ${shards.join(",")}`))
    }
    return appendShards([{ shard, records }]).pipe(Effect.map(([nextOffset]) => ({ nextOffset: nextOffset ?? 0 })))
  }
