/**
 * In-memory Journal for unit tests: the same fencing and replay semantics as the durable adapters,
 * plus an outage switch so tests can make appends fail.
 */
import { Effect, Layer } from "effect"
import type { JournalRecord } from "../../core/events.ts"
import { Journal, type JournalEntry, JournalFenced, JournalUnavailable } from "../journal.ts"

export interface MemoryJournalControl {
  /** While true, every append and replay fails with JournalUnavailable. */
  outage: boolean
  readonly logs: Map<number, Array<JournalEntry>>
  /** Generation of the live writer per shard: shared by every journal built on this control. */
  readonly writerGenerations: Map<number, number>
}

export const makeMemoryJournal = (control: MemoryJournalControl) => {
  const writerGenerations = control.writerGenerations
  const log = (shard: number): Array<JournalEntry> => {
    let entries = control.logs.get(shard)
    if (entries === undefined) {
      entries = []
      control.logs.set(shard, entries)
    }
    return entries
  }
  return Journal.of({
    openWriter: (shard) =>
      Effect.sync(() => {
        const generation = (writerGenerations.get(shard) ?? 0) + 1
        writerGenerations.set(shard, generation)
        return {
          shard,
          append: (records: ReadonlyArray<JournalRecord>) =>
            Effect.suspend((): Effect.Effect<{ nextOffset: number }, JournalFenced | JournalUnavailable> => {
              if (writerGenerations.get(shard) !== generation) {
                return Effect.fail(new JournalFenced({ shard, message: "a newer writer owns the shard" }))
              }
              if (control.outage) return Effect.fail(new JournalUnavailable({ shard, message: "outage" }))
              const entries = log(shard)
              for (const record of records) entries.push({ offset: entries.length, record })
              return Effect.succeed({ nextOffset: entries.length })
            }),
        }
      }),
    replay: (shard, fromOffset, onEntries) =>
      Effect.suspend((): Effect.Effect<{ nextOffset: number }, JournalUnavailable> => {
        if (control.outage) return Effect.fail(new JournalUnavailable({ shard, message: "outage" }))
        const entries = log(shard)
        const batchSize = 1024
        for (let start = fromOffset; start < entries.length; start += batchSize) {
          onEntries(entries.slice(start, start + batchSize))
        }
        return Effect.succeed({ nextOffset: Math.max(fromOffset, entries.length) })
      }),
  })
}

export const newMemoryJournalControl = (): MemoryJournalControl => ({
  outage: false,
  logs: new Map(),
  writerGenerations: new Map(),
})

export const layerMemory = (control: MemoryJournalControl = newMemoryJournalControl()): Layer.Layer<Journal> =>
  Layer.succeed(Journal)(makeMemoryJournal(control))
