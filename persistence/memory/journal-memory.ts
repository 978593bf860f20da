/**
 * In-memory Journal for unit tests and simulations: the same fencing, atomic multi-shard appends
 * and replay semantics as the durable adapters, plus an outage switch so tests can make appends fail.
 */
import { Effect, Layer } from "effect"
import type { JournalRecord } from "../../core/events.ts"
import {
  Journal,
  type JournalEntry,
  JournalFenced,
  JournalUnavailable,
  type ShardRecords,
  shardSetWriterId,
  singleShardAppend,
  writerShards,
} from "../journal.ts"

export interface MemoryJournalControl {
  /** While true, every append and replay fails with JournalUnavailable. */
  outage: boolean
  /** Per shard, the log; entries before `discardedBefore` are removed (left as holes). */
  readonly logs: Map<number, Array<JournalEntry | undefined>>
  /** Per shard, the offset before which records were discarded. */
  readonly discardedBefore: Map<number, number>
  /** Generation of the live writer per shard: shared by every journal built on this control. */
  readonly writerGenerations: Map<number, number>
  /** Appends that succeeded, over all writers: what a test counts commits by. */
  appendsTotal: number
}

export const newMemoryJournalControl = (): MemoryJournalControl => ({
  outage: false,
  logs: new Map(),
  discardedBefore: new Map(),
  writerGenerations: new Map(),
  appendsTotal: 0,
})

const replayBatchEntriesMax = 1024

export const makeMemoryJournal = (control: MemoryJournalControl) => {
  const log = (shard: number): Array<JournalEntry | undefined> => {
    let entries = control.logs.get(shard)
    if (entries === undefined) {
      entries = []
      control.logs.set(shard, entries)
    }
    return entries
  }
  const openWriter = (requested: number | ReadonlyArray<number>) =>
    Effect.sync(() => {
      const shards = writerShards(requested)
      const generations = new Map<number, number>()
      for (const shard of shards) {
        const generation = (control.writerGenerations.get(shard) ?? 0) + 1
        control.writerGenerations.set(shard, generation)
        generations.set(shard, generation)
      }
      const appendShards = (batch: ReadonlyArray<ShardRecords>) =>
        Effect.suspend((): Effect.Effect<ReadonlyArray<number>, JournalFenced | JournalUnavailable> => {
          for (const { shard } of batch) {
            const generation = generations.get(shard)
            if (generation === undefined) return Effect.die(new Error(`writer does not own shard ${shard}`))
            if (control.writerGenerations.get(shard) !== generation) {
              return Effect.fail(new JournalFenced({ shard, message: "a newer writer owns the shard" }))
            }
          }
          if (control.outage)
            return Effect.fail(new JournalUnavailable({ shard: batch[0]?.shard ?? -1, message: "outage" }))
          const offsets = batch.map(({ shard, records }) => {
            const entries = log(shard)
            for (const record of records) entries.push({ offset: entries.length, record })
            return entries.length
          })
          control.appendsTotal++
          return Effect.succeed(offsets)
        })
      return { shards, appendsInFlightMax: 1, appendShards, append: singleShardAppend(shards, appendShards) }
    })
  return Journal.of({
    openWriter,
    // Writer generations are per shard: opening a writer fences each of its shards.
    writerIdOf: (shards) => shardSetWriterId("memory", shards),
    fence: () => Effect.void,
    replay: (shard, fromOffset, onEntries) =>
      Effect.suspend((): Effect.Effect<{ nextOffset: number }, JournalUnavailable> => {
        if (control.outage) return Effect.fail(new JournalUnavailable({ shard, message: "outage" }))
        const discarded = control.discardedBefore.get(shard) ?? 0
        if (fromOffset < discarded) {
          return Effect.die(
            new Error(`replay of shard ${shard} from ${fromOffset}: records before ${discarded} are gone`),
          )
        }
        const entries = log(shard)
        for (let start = fromOffset; start < entries.length; start += replayBatchEntriesMax) {
          onEntries(entries.slice(start, start + replayBatchEntriesMax) as Array<JournalEntry>)
        }
        return Effect.succeed({ nextOffset: Math.max(fromOffset, entries.length) })
      }),
    discardBefore: (shard, offset) =>
      Effect.sync(() => {
        const entries = log(shard)
        const from = control.discardedBefore.get(shard) ?? 0
        const to = Math.min(offset, entries.length)
        for (let index = from; index < to; index++) entries[index] = undefined
        control.discardedBefore.set(shard, Math.max(from, to))
      }),
  })
}

/** The records of a shard as they are now, for tests. */
export const memoryRecords = (control: MemoryJournalControl, shard: number): Array<JournalRecord> =>
  (control.logs.get(shard) ?? []).flatMap((entry) => (entry === undefined ? [] : [entry.record]))

export const layerMemory = (control: MemoryJournalControl = newMemoryJournalControl()): Layer.Layer<Journal> =>
  Layer.succeed(Journal)(makeMemoryJournal(control))
