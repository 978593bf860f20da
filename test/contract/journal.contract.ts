/**
 * The contract every Journal adapter passes (memory, LMDB, Kafka): ordered durable appends,
 * replay from an offset, independent shards, and fencing of a stale writer.
 */
import { Effect, type Layer, type Scope } from "effect"
import { describe, expect, it } from "vitest"
import type { JournalRecord } from "../../core/events.ts"
import { Journal, type JournalEntry } from "../../persistence/journal.ts"
import { depositRecord } from "./fixtures.ts"

const collect = (shard: number, fromOffset: number) =>
  Effect.gen(function* () {
    const journal = yield* Journal
    const entries: Array<JournalEntry> = []
    const { nextOffset } = yield* journal.replay(shard, fromOffset, (batch) => entries.push(...batch))
    return { entries, nextOffset }
  })

/** `makeLayer` is called once per test and must give a journal with empty shards 0 and 1. */
export const journalContract = (
  name: string,
  makeLayer: () => Layer.Layer<Journal, unknown>,
  options: { timeoutMs?: number } = {},
) => {
  const run = <A, E>(program: Effect.Effect<A, E, Journal | Scope.Scope>): Promise<A> =>
    Effect.runPromise(Effect.scoped(program).pipe(Effect.provide(makeLayer())) as Effect.Effect<A, unknown>)
  const timeout = options.timeoutMs ?? 10_000

  describe(`Journal contract: ${name}`, () => {
    it(
      "replays appended records in order, exactly as written",
      () =>
        run(
          Effect.gen(function* () {
            const journal = yield* Journal
            const writer = yield* journal.openWriter(0)
            const first = [depositRecord("acc-1", 2, 1n), depositRecord("acc-1", 3, 123_456_789_012_345_678_901n)]
            const second = [depositRecord("acc-2", 2, 42n)]
            const afterFirst = yield* writer.append(first)
            const afterSecond = yield* writer.append(second)
            expect(afterSecond.nextOffset).toBeGreaterThan(afterFirst.nextOffset)
            const all = yield* collect(0, 0)
            expect(all.entries.map((entry) => entry.record)).toEqual([...first, ...second])
            expect(all.nextOffset).toBe(afterSecond.nextOffset)
            const offsets = all.entries.map((entry) => entry.offset)
            expect([...offsets].sort((a, b) => a - b)).toEqual(offsets)
            const tail = yield* collect(0, afterFirst.nextOffset)
            expect(tail.entries.map((entry) => entry.record)).toEqual(second)
            const none = yield* collect(0, afterSecond.nextOffset)
            expect(none.entries).toEqual([])
            expect(none.nextOffset).toBe(afterSecond.nextOffset)
          }),
        ),
      timeout,
    )

    it(
      "keeps shards apart",
      () =>
        run(
          Effect.gen(function* () {
            const journal = yield* Journal
            const writer0 = yield* journal.openWriter(0)
            const writer1 = yield* journal.openWriter(1)
            yield* writer0.append([depositRecord("acc-0", 2, 10n)])
            yield* writer1.append([depositRecord("acc-1", 2, 11n), depositRecord("acc-1", 3, 12n)])
            const shard0 = yield* collect(0, 0)
            const shard1 = yield* collect(1, 0)
            expect(shard0.entries.map((entry) => entry.record)).toEqual([depositRecord("acc-0", 2, 10n)])
            expect(shard1.entries).toHaveLength(2)
          }),
        ),
      timeout,
    )

    it(
      "fences the earlier writer of a shard once a new one opens",
      () =>
        run(
          Effect.gen(function* () {
            const journal = yield* Journal
            const stale = yield* journal.openWriter(0)
            const beforeTakeover: ReadonlyArray<JournalRecord> = [depositRecord("acc-1", 2, 5n)]
            yield* stale.append(beforeTakeover)
            const current = yield* journal.openWriter(0)
            const staleAttempt = yield* Effect.result(stale.append([depositRecord("acc-1", 3, 666n)]))
            expect(staleAttempt._tag).toBe("Failure")
            if (staleAttempt._tag === "Failure") expect(staleAttempt.failure._tag).toBe("JournalFenced")
            yield* current.append([depositRecord("acc-1", 3, 7n)])
            const all = yield* collect(0, 0)
            expect(all.entries.map((entry) => entry.record)).toEqual([...beforeTakeover, depositRecord("acc-1", 3, 7n)])
          }),
        ),
      timeout,
    )

    it(
      "appends many records in one batch",
      () =>
        run(
          Effect.gen(function* () {
            const journal = yield* Journal
            const writer = yield* journal.openWriter(1)
            const batch = Array.from({ length: 500 }, (_, index) =>
              depositRecord("acc-9", index + 2, BigInt(index + 1)),
            )
            yield* writer.append(batch)
            const all = yield* collect(1, 0)
            expect(all.entries.map((entry) => entry.record)).toEqual(batch)
          }),
        ),
      timeout,
    )
  })
}
