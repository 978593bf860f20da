/**
 * The Journal port: an append-only log per shard of journal records (one accepted command each).
 * A shard has one writer at a time; opening a writer fences every earlier writer of that shard,
 * so a stale owner can never get an append acknowledged after a new owner has started.
 */
import { Context, type Effect, Schema, type Scope } from "effect"
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

export interface ShardWriter {
  readonly shard: number
  /**
   * How many appends may be in flight at once (absent: one). A writer that takes more than one
   * must apply them in call order and never make an append durable once an earlier one failed.
   */
  readonly appendsInFlightMax?: number
  /**
   * Appends the records of one group commit, in order, all or nothing, and returns the offset
   * a replay must start from to read whatever is appended after them.
   */
  readonly append: (
    records: ReadonlyArray<JournalRecord>,
  ) => Effect.Effect<{ readonly nextOffset: number }, JournalUnavailable | JournalFenced>
}

export class Journal extends Context.Service<
  Journal,
  {
    /** Opens the only live writer of a shard, fencing earlier ones; closed with the scope. */
    readonly openWriter: (shard: number) => Effect.Effect<ShardWriter, JournalUnavailable, Scope.Scope>
    /**
     * Reads a shard's durable records from `fromOffset` to the end as of the call, handing them to
     * `onEntries` in order and in bounded batches; returns the offset after the last one read.
     */
    readonly replay: (
      shard: number,
      fromOffset: number,
      onEntries: (entries: ReadonlyArray<JournalEntry>) => void,
    ) => Effect.Effect<{ readonly nextOffset: number }, JournalUnavailable>
  }
>()("payments/Journal") {}
