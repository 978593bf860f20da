/**
 * The SnapshotStore port: per shard, the ledger as of a journal offset, kept as immutable segments
 * so that recovery replays only what came after and a save costs a few large writes however many
 * payments it covers.
 *
 * A save writes one segment: the accounts changed since the previous segment (every account, when
 * the segment is a base), the entries (payments, deposits, credits) that changed, and every live
 * entry, split by tenant into parts of at most `partBytesMax`; then it moves the checkpoint to it.
 * The checkpoint is the commit point: recovery reads accounts from the checkpoint's base segment
 * and the segments after it up to the checkpoint's segment, live entries from that segment, and
 * the fingerprints of every stored segment, which locate each entry for a later lookup. A segment
 * whose save was cut short is never the checkpoint's and is read only through fingerprints, where
 * the newer segment of every entry it holds wins. Saves and claims are conditional on the shard's
 * ownership epoch, so a stale owner cannot move the checkpoint of a newer one.
 *
 * The store moves bytes; what they encode is `core/segment-codec.ts`'s.
 */
import { Context, type Effect, Schema } from "effect"

export class SnapshotUnavailable extends Schema.TaggedError<SnapshotUnavailable>()("SnapshotUnavailable", {
  shard: Schema.Number,
  message: Schema.String,
}) {}

/** The shard's checkpoint carries a newer epoch: this process no longer owns the shard. */
export class SnapshotFenced extends Schema.TaggedError<SnapshotFenced>()("SnapshotFenced", {
  shard: Schema.Number,
  epoch: Schema.Number,
}) {}

export interface ShardCheckpoint {
  readonly shard: number
  readonly epoch: number
  /** Journal offset to replay from: every record before it is included in the segments. */
  readonly nextOffset: number
  /** The last segment of this checkpoint (the one its save wrote). */
  readonly segment: number
  /** The newest segment that holds every account; the segments from it to `segment` hold the accounts. */
  readonly base: number
}

/** One part of a segment: entities of one tenant, each section encoded by the segment codec. */
export interface SegmentPart {
  readonly tenantId: string
  /** 0, 1, ... within (segment, tenant). */
  readonly part: number
  readonly accounts: Uint8Array
  readonly entries: Uint8Array
  readonly live: Uint8Array
  /** One fingerprint per element of `entries`, in the same order. */
  readonly fingerprints: Uint8Array
}

/** Where an entry section lives, and what it holds. */
export interface SegmentFingerprints {
  readonly segment: number
  readonly tenantId: string
  readonly part: number
  readonly savedAtMs: number
  readonly fingerprints: Uint8Array
}

export interface ClaimedSnapshot {
  readonly checkpoint: ShardCheckpoint
  /** Account sections of segments base..segment, oldest first: a later version of an account wins. */
  readonly accounts: ReadonlyArray<Uint8Array>
  /** Live sections of the checkpoint's segment. */
  readonly live: ReadonlyArray<Uint8Array>
  /**
   * Every stored part of every segment, with the fingerprints of its entries (none for a part
   * without entries). Parts of a segment after the checkpoint's are left over from a save cut short.
   */
  readonly parts: ReadonlyArray<SegmentFingerprints>
}

/** The parts of one stored segment, enough to delete it. */
export interface StoredSegment {
  readonly segment: number
  readonly parts: ReadonlyArray<{ readonly tenantId: string; readonly part: number }>
}

export class SnapshotStore extends Context.Service<
  SnapshotStore,
  {
    /** Largest part (sum of its sections) the store takes in one write. */
    readonly partBytesMax: number
    /**
     * Claims the shard for `epoch`: fails with SnapshotFenced if this or a newer epoch has claimed
     * it (an epoch is claimed at most once, so two ownerships never share one), and from then on
     * saves with an older epoch fail. Returns the latest snapshot, if any.
     */
    readonly claim: (
      shard: number,
      epoch: number,
    ) => Effect.Effect<ClaimedSnapshot | undefined, SnapshotUnavailable | SnapshotFenced>
    /**
     * Records `writer` (the journal writer id of this ownership) as the shard's writer, if `epoch`
     * still holds the claim, and returns the writer recorded before it. A new owner fences that
     * writer before it writes or replays: a journal that fences per writer id (Kafka: per shard
     * set) cannot otherwise stop a previous owner of another set.
     */
    readonly registerWriter: (
      shard: number,
      epoch: number,
      writer: string,
    ) => Effect.Effect<string | undefined, SnapshotUnavailable | SnapshotFenced>
    /** Writes segment `checkpoint.segment`'s parts, then moves the checkpoint to it; conditional on the epoch. */
    readonly save: (
      checkpoint: ShardCheckpoint,
      savedAtMs: number,
      parts: ReadonlyArray<SegmentPart>,
    ) => Effect.Effect<void, SnapshotUnavailable | SnapshotFenced>
    /** The entries section of one part with its fingerprints, or undefined when the part is gone. */
    readonly readEntries: (
      shard: number,
      segment: number,
      tenantId: string,
      part: number,
    ) => Effect.Effect<
      { readonly entries: Uint8Array; readonly fingerprints: Uint8Array } | undefined,
      SnapshotUnavailable
    >
    /** Deletes segments no checkpoint needs any more (older than the base, entries past their window). */
    readonly deleteSegments: (
      shard: number,
      segments: ReadonlyArray<StoredSegment>,
    ) => Effect.Effect<void, SnapshotUnavailable>
  }
>()("payments/SnapshotStore") {}
