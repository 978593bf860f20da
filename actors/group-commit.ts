/**
 * Group commit for one shard: commands applied in memory wait here until the journal confirms the
 * batch that holds their records, and only then are their answers released. Everything that
 * arrives while earlier batches are in flight joins the next batch, so the journal sees one append
 * per shard per batch however many commands arrive.
 *
 * Up to `appendsInFlightMax` batches may be in flight at once (the journal writer says how many it
 * can take: it must keep them in order and never make one durable after an earlier one failed).
 * A batch is released only once it and every batch before it are durable, so answers leave in
 * log order whatever order the journal confirms in. With one append in flight, a shard whose
 * batch is syncing misses the journal's next commit; with two it joins every commit.
 *
 * Answers that do not write (reads, rejections, idempotent repeats) are released after the batch
 * that was last in line when they were decided: what they say may depend on commands not yet
 * durable, and nothing is told to a client before the log holds what it was told.
 */
import type { JournalRecord } from "../core/events.ts"
import type { Entity } from "../core/ledger.ts"

/** Called once per waiting answer: `true` when its batch is durable, `false` when it failed. */
export type Settle = (durable: boolean) => void

export interface Batch {
  readonly records: Array<JournalRecord>
  /** Entity versions the batch's events produced, in order: what a snapshot must save. */
  readonly changed: Array<Entity>
  readonly settles: Array<Settle>
  eventCount: number
  /** open: takes more commands; appending: in flight; durable: confirmed, waiting for the batches before it. */
  state: "open" | "appending" | "durable"
  /** The offset after the batch's records, once durable: what a snapshot that includes it may claim. */
  nextOffset: number
}

export type AppendResult =
  | { readonly _tag: "Durable"; readonly nextOffset: number }
  | { readonly _tag: "Failed"; readonly failure: unknown }

export type AppendBatch = (records: ReadonlyArray<JournalRecord>, done: (result: AppendResult) => void) => void

const newBatch = (): Batch => ({ records: [], changed: [], settles: [], eventCount: 0, state: "open", nextOffset: 0 })

export class GroupCommit {
  /** Batches in log order: durable and appending ones first, then at most one open one. */
  private batches: Array<Batch> = []
  private appendsInFlight = 0
  private flushScheduled = false
  private queuedRecords = 0

  constructor(
    private readonly batchRecordsMax: number,
    private readonly appendsInFlightMax: number,
    private readonly append: AppendBatch,
    /** Called in log order, once per durable batch. */
    private readonly onDurable: (batch: Batch) => void,
    private readonly onFailure: (failure: unknown) => void,
  ) {
    if (!(Number.isInteger(appendsInFlightMax) && appendsInFlightMax >= 1)) {
      throw new Error(`appendsInFlightMax must be a positive integer, not ${appendsInFlightMax}`)
    }
  }

  /** Records accepted but not yet durable. */
  get depth(): number {
    return this.queuedRecords
  }

  get idle(): boolean {
    return this.batches.length === 0
  }

  /** Queues one command's record with the entities it changed and the release of its answer. */
  add(record: JournalRecord, changed: ReadonlyArray<Entity>, settle: Settle): void {
    let batch = this.batches[this.batches.length - 1]
    if (batch === undefined || batch.state !== "open" || batch.records.length >= this.batchRecordsMax) {
      batch = newBatch()
      this.batches.push(batch)
    }
    batch.records.push(record)
    for (const entity of changed) batch.changed.push(entity)
    batch.eventCount += record.events.length
    batch.settles.push(settle)
    this.queuedRecords++
    this.scheduleFlush()
  }

  /** Releases an answer that writes nothing once everything queued before it is durable. */
  after(settle: Settle): void {
    const last = this.batches[this.batches.length - 1]
    if (last === undefined) settle(true)
    else last.settles.push(settle)
  }

  /** Fails every waiting answer; used when the shard is dropped for a rebuild. */
  abandon(): void {
    const batches = this.batches
    this.batches = []
    this.queuedRecords = 0
    for (const batch of batches) for (const settle of batch.settles) settle(false)
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.appendsInFlight >= this.appendsInFlightMax) return
    this.flushScheduled = true
    // setImmediate runs after the I/O phase, so every frame read in this loop turn joins the batch.
    setImmediate(() => {
      this.flushScheduled = false
      this.flush()
    })
  }

  /** Sends open batches, oldest first, while the writer has room. Every batch holds a record: only `add` makes one. */
  private flush(): void {
    for (const batch of this.batches) {
      if (this.appendsInFlight >= this.appendsInFlightMax) return
      if (batch.state === "open") this.send(batch)
    }
  }

  private send(batch: Batch): void {
    batch.state = "appending"
    this.appendsInFlight++
    const batches = this.batches
    this.append(batch.records, (result) => {
      if (this.batches !== batches) return // abandoned while in flight: its answers were already failed
      this.appendsInFlight--
      if (result._tag === "Failed") {
        this.onFailure(result.failure)
        return
      }
      batch.state = "durable"
      batch.nextOffset = result.nextOffset
      this.release()
      if (this.batches.length > 0) this.scheduleFlush()
    })
  }

  /** Releases durable batches from the head of the line, in order, up to the first one not durable. */
  private release(): void {
    while (this.batches[0]?.state === "durable") {
      const batch = this.batches.shift() as Batch
      this.queuedRecords -= batch.records.length
      this.onDurable(batch)
      for (const settle of batch.settles) settle(true)
    }
  }
}
