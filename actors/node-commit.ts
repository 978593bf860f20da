/**
 * Group commit for the whole node: commands applied in memory wait here until the journal confirms
 * the flush that holds their records, and only then are their answers released and their side
 * effects run. A flush carries the records of every shard that has any (one journal transaction:
 * one LMDB commit, one Kafka transaction), so the journal sees one append per node per event-loop
 * turn however many commands and shards there are, and the records of one command on two shards
 * (a transfer's debit and credit) always commit together.
 *
 * Up to `appendsInFlightMax` flushes may be in flight at once (the writer says how many it can
 * order). A flush is released only once it and every flush before it are durable, so answers leave
 * in log order whatever order the journal confirms in. Answers that write nothing (reads,
 * rejections, idempotent repeats) wait for the flush that was last in line when they were
 * decided: what they say may depend on records not yet durable.
 */
import type { JournalRecord } from "../core/events.ts"
import type { Entity } from "../core/ledger.ts"
import type { ShardRecords } from "../persistence/journal.ts"
import type { RuntimeClock } from "./clock.ts"
import { DurationHistogram } from "./duration-histogram.ts"

/** Called once per waiting answer: `true` when its flush is durable, `false` when it failed. */
export type Settle = (durable: boolean) => void

/** One shard's part of a flush. */
export interface ShardBatch {
  readonly shard: number
  readonly records: Array<JournalRecord>
  /** Entity versions the records' events produced, in order: what the shard's next snapshot must save. */
  readonly changed: Array<Entity>
  /** The `entityKey` of each of `changed` ("" for accounts), computed once when the events were applied. */
  readonly changedKeys: Array<string>
  eventCount: number
  /** The offset after the batch's records, once durable. */
  nextOffset: number
}

interface Flush {
  readonly batches: Map<number, ShardBatch>
  readonly settles: Array<Settle>
  recordCount: number
  /** open: takes more commands; sealed: takes none but is not sent yet; appending: in flight; durable: confirmed. */
  state: "open" | "sealed" | "appending" | "durable"
}

export type AppendResult =
  | { readonly _tag: "Durable"; readonly nextOffsets: ReadonlyArray<number> }
  | { readonly _tag: "Failed"; readonly failure: unknown }

export type AppendFlush = (batch: ReadonlyArray<ShardRecords>, done: (result: AppendResult) => void) => void

/** The flush a command being written goes into (opaque to callers). */
export type PendingCommand = Flush

const newFlush = (): Flush => ({ batches: new Map(), settles: [], recordCount: 0, state: "open" })

export class NodeCommit {
  /** Flushes in log order: durable and appending ones first, then at most one open one. */
  private flushes: Array<Flush> = []
  private appendsInFlight = 0
  private flushScheduled = false
  /** Records accepted and not yet durable, per shard. */
  private readonly queued: Int32Array
  private queuedTotal = 0
  /** Set by `abandon`: this commit belongs to a dropped incarnation and takes nothing more. */
  private abandoned = false
  /** Flushes made durable and records in them, since the node started: the commit-rate gauges. */
  commitsTotal = 0
  recordsTotal = 0
  /** How long appends took, from send to the journal's answer. */
  readonly appendDurations = new DurationHistogram()

  constructor(
    shardCount: number,
    private readonly flushRecordsMax: number,
    private readonly appendsInFlightMax: number,
    private readonly append: AppendFlush,
    /** Called in log order, once per shard batch of each durable flush, before its answers are released. */
    private readonly onDurable: (batch: ShardBatch) => void,
    private readonly onFailure: (failure: unknown) => void,
    private readonly clock: RuntimeClock,
  ) {
    if (!(Number.isInteger(appendsInFlightMax) && appendsInFlightMax >= 1)) {
      throw new Error(`appendsInFlightMax must be a positive integer, not ${appendsInFlightMax}`)
    }
    this.queued = new Int32Array(shardCount)
  }

  /** Records of `shard` accepted but not yet durable. */
  depthOf(shard: number): number {
    return this.queued[shard] ?? 0
  }

  get depth(): number {
    return this.queuedTotal
  }

  /** Queues one command's records (one per shard it touched) and the release of its answer, all in one flush. */
  /**
   * Starts one command's writes: its records (at most `recordsMax`, one per shard it touches) all
   * go into the flush this returns, followed by `record` calls and one `finish`. Writing straight
   * into the flush's batches spares a command its own arrays of records and versions.
   */
  begin(recordsMax: number): PendingCommand | undefined {
    if (this.abandoned) return undefined
    let flush = this.flushes[this.flushes.length - 1]
    if (flush === undefined || flush.state !== "open" || flush.recordCount + recordsMax > this.flushRecordsMax) {
      flush = newFlush()
      this.flushes.push(flush)
    }
    return flush
  }

  /** The batch of `shard` in the command's flush, with one more record: the caller adds the versions it produced. */
  record(flush: PendingCommand, shard: number, record: JournalRecord): ShardBatch {
    let batch = flush.batches.get(shard)
    if (batch === undefined) {
      batch = { shard, records: [], changed: [], changedKeys: [], eventCount: 0, nextOffset: 0 }
      flush.batches.set(shard, batch)
    }
    batch.records.push(record)
    batch.eventCount += record.events.length
    flush.recordCount++
    this.queued[shard] = (this.queued[shard] ?? 0) + 1
    this.queuedTotal++
    return batch
  }

  /** Ends the command: its answer is released with its flush. */
  finish(flush: PendingCommand, settle: Settle): void {
    flush.settles.push(settle)
    this.scheduleFlush()
  }

  /**
   * Closes the open flush to further commands, so that `after` then waits for exactly what is
   * queued now: a snapshot uses it to capture state at a flush boundary.
   */
  seal(): void {
    const last = this.flushes[this.flushes.length - 1]
    if (last?.state === "open") last.state = "sealed"
  }

  /** Releases an answer that writes nothing once everything queued before it is durable. */
  after(settle: Settle): void {
    if (this.abandoned) {
      settle(false)
      return
    }
    const last = this.flushes[this.flushes.length - 1]
    if (last === undefined) settle(true)
    else last.settles.push(settle)
  }

  /** Fails every waiting answer; used when the node's shards are dropped for a rebuild. */
  abandon(): void {
    this.abandoned = true
    const flushes = this.flushes
    this.flushes = []
    this.queued.fill(0)
    this.queuedTotal = 0
    for (const flush of flushes) for (const settle of flush.settles) settle(false)
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.appendsInFlight >= this.appendsInFlightMax) return
    this.flushScheduled = true
    this.clock.defer(() => {
      this.flushScheduled = false
      this.flush()
    })
  }

  /** Sends open flushes, oldest first, while the writer has room. Every flush holds a record: only `add` makes one. */
  private flush(): void {
    // A copy: a journal that answers at once releases (and removes) flushes during this loop.
    for (const flush of [...this.flushes]) {
      if (this.appendsInFlight >= this.appendsInFlightMax) return
      if (flush.state === "open" || flush.state === "sealed") this.send(flush)
    }
  }

  private send(flush: Flush): void {
    flush.state = "appending"
    this.appendsInFlight++
    const flushes = this.flushes
    const batches = [...flush.batches.values()]
    const sentAt = performance.now()
    this.append(batches, (result) => {
      if (this.flushes !== flushes) return // abandoned while in flight: its answers were already failed
      this.appendsInFlight--
      this.appendDurations.record(performance.now() - sentAt)
      if (result._tag === "Failed") {
        this.onFailure(result.failure)
        return
      }
      for (const [index, batch] of batches.entries()) batch.nextOffset = result.nextOffsets[index] as number
      flush.state = "durable"
      this.release()
      if (this.flushes.length > 0) this.scheduleFlush()
    })
  }

  /** Releases durable flushes from the head of the line, in order, up to the first one not durable. */
  private release(): void {
    while (this.flushes[0]?.state === "durable") {
      const flush = this.flushes.shift() as Flush
      this.commitsTotal++
      this.recordsTotal += flush.recordCount
      this.queuedTotal -= flush.recordCount
      for (const batch of flush.batches.values()) {
        this.queued[batch.shard] = (this.queued[batch.shard] ?? 0) - batch.records.length
        this.onDurable(batch)
      }
      for (const settle of flush.settles) settle(true)
    }
  }
}
