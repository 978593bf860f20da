/**
 * Group commit for one shard: commands applied in memory wait here until the journal confirms the
 * batch that holds their records, and only then are their answers released. One append is in
 * flight per shard at a time; everything that arrives meanwhile joins the next batch, so the
 * journal sees one append per shard per batch however many commands arrive.
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
}

export type AppendBatch = (records: ReadonlyArray<JournalRecord>, done: (failure: unknown | undefined) => void) => void

const newBatch = (): Batch => ({ records: [], changed: [], settles: [], eventCount: 0 })

export class GroupCommit {
  /** Batches in order; while `appending`, the first one is in flight. */
  private readonly batches: Array<Batch> = []
  private appending = false
  private flushScheduled = false
  private queuedRecords = 0

  constructor(
    private readonly batchRecordsMax: number,
    private readonly append: AppendBatch,
    private readonly onDurable: (batch: Batch) => void,
    private readonly onFailure: (failure: unknown) => void,
  ) {}

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
    const inFlight = this.appending && this.batches.length === 1
    if (batch === undefined || inFlight || batch.records.length >= this.batchRecordsMax) {
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
    const batches = this.batches.splice(0)
    this.queuedRecords = 0
    for (const batch of batches) for (const settle of batch.settles) settle(false)
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.appending) return
    this.flushScheduled = true
    // setImmediate runs after the I/O phase, so every frame read in this loop turn joins the batch.
    setImmediate(() => {
      this.flushScheduled = false
      this.flush()
    })
  }

  private flush(): void {
    if (this.appending) return
    const batch = this.batches[0]
    if (batch === undefined) return
    if (batch.records.length === 0) {
      this.batches.shift()
      for (const settle of batch.settles) settle(true)
      this.flush()
      return
    }
    this.appending = true
    this.append(batch.records, (failure) => {
      this.appending = false
      if (failure !== undefined) {
        this.onFailure(failure)
        return
      }
      if (this.batches[0] !== batch) return // abandoned while in flight
      this.batches.shift()
      this.queuedRecords -= batch.records.length
      this.onDurable(batch)
      for (const settle of batch.settles) settle(true)
      if (this.batches.length > 0) this.flush()
    })
  }
}
