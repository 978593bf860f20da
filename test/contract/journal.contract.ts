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

    it(
      "appends to several shards in one atomic unit and gives each shard's next offset",
      () =>
        run(
          Effect.gen(function* () {
            const journal = yield* Journal
            const writer = yield* journal.openWriter([1, 0])
            expect(writer.shards).toEqual([0, 1])
            const zero = [depositRecord("acc-0", 2, 1n)]
            const one = [depositRecord("acc-1", 2, 2n), depositRecord("acc-1", 3, 3n)]
            const [afterZero, afterOne] = yield* writer.appendShards([
              { shard: 0, records: zero },
              { shard: 1, records: one },
            ])
            const shard0 = yield* collect(0, 0)
            const shard1 = yield* collect(1, 0)
            expect(shard0.entries.map((entry) => entry.record)).toEqual(zero)
            expect(shard1.entries.map((entry) => entry.record)).toEqual(one)
            expect(shard0.nextOffset).toBe(afterZero)
            expect(shard1.nextOffset).toBe(afterOne)
            const [later] = yield* writer.appendShards([{ shard: 1, records: [depositRecord("acc-1", 4, 4n)] }])
            expect((yield* collect(1, afterOne ?? 0)).entries.map((entry) => entry.record)).toEqual([
              depositRecord("acc-1", 4, 4n),
            ])
            expect((yield* collect(1, 0)).nextOffset).toBe(later)
          }),
        ),
      timeout,
    )

    it(
      "fences an earlier writer of the same shards, all of them at once",
      () =>
        run(
          Effect.gen(function* () {
            const journal = yield* Journal
            const stale = yield* journal.openWriter([0, 1])
            yield* stale.appendShards([{ shard: 0, records: [depositRecord("acc-0", 2, 1n)] }])
            const current = yield* journal.openWriter([0, 1])
            const staleAttempt = yield* Effect.result(
              stale.appendShards([
                { shard: 0, records: [depositRecord("acc-0", 3, 666n)] },
                { shard: 1, records: [depositRecord("acc-1", 2, 666n)] },
              ]),
            )
            expect(staleAttempt._tag).toBe("Failure")
            if (staleAttempt._tag === "Failure") expect(staleAttempt.failure._tag).toBe("JournalFenced")
            yield* current.appendShards([{ shard: 1, records: [depositRecord("acc-1", 2, 7n)] }])
            expect((yield* collect(0, 0)).entries.map((entry) => entry.record)).toEqual([depositRecord("acc-0", 2, 1n)])
            expect((yield* collect(1, 0)).entries.map((entry) => entry.record)).toEqual([depositRecord("acc-1", 2, 7n)])
          }),
        ),
      timeout,
    )

    it(
      "fences the previous owner of a shard that held it in another set, once its writer id is fenced",
      () =>
        run(
          Effect.gen(function* () {
            const journal = yield* Journal
            // The previous owner wrote shards 0 and 1 under one writer; the new owner takes shard 0 alone.
            const previous = yield* journal.openWriter([0, 1])
            yield* previous.appendShards([{ shard: 0, records: [depositRecord("acc-0", 2, 1n)] }])
            const previousId = journal.writerIdOf([0, 1])
            expect(previousId).not.toBe(journal.writerIdOf([0]))
            expect(journal.writerIdOf([1, 0])).toBe(previousId)
            yield* journal.fence(previousId)
            const current = yield* journal.openWriter(0)
            const staleAttempt = yield* Effect.result(
              previous.appendShards([{ shard: 0, records: [depositRecord("acc-0", 3, 666n)] }]),
            )
            expect(staleAttempt._tag === "Failure" && staleAttempt.failure._tag).toBe("JournalFenced")
            yield* current.appendShards([{ shard: 0, records: [depositRecord("acc-0", 3, 7n)] }])
            expect((yield* collect(0, 0)).entries.map((entry) => entry.record)).toEqual([
              depositRecord("acc-0", 2, 1n),
              depositRecord("acc-0", 3, 7n),
            ])
          }),
        ),
      timeout,
    )

    it(
      "discarding what a snapshot covers keeps the rest, and a new writer continues after it",
      () =>
        run(
          Effect.gen(function* () {
            const journal = yield* Journal
            const writer = yield* journal.openWriter(0)
            const covered = yield* writer.append([depositRecord("acc-1", 2, 1n), depositRecord("acc-1", 3, 2n)])
            const end = yield* writer.append([depositRecord("acc-1", 4, 3n)])
            yield* journal.discardBefore(0, covered.nextOffset)
            const after = yield* collect(0, covered.nextOffset)
            expect(after.entries.map((entry) => entry.record)).toEqual([depositRecord("acc-1", 4, 3n)])
            // Everything covered: the log's end must still be where the next writer continues.
            yield* journal.discardBefore(0, end.nextOffset)
            const next = yield* journal.openWriter(0)
            const appended = yield* next.append([depositRecord("acc-1", 5, 4n)])
            expect(appended.nextOffset).toBeGreaterThan(end.nextOffset)
            const tail = yield* collect(0, end.nextOffset)
            expect(tail.entries.map((entry) => entry.record)).toEqual([depositRecord("acc-1", 5, 4n)])
          }),
        ),
      timeout,
    )
  })
}
