/**
 * The LMDB journal writer with several appends in flight at once (the node keeps one, but the
 * writer promises order to any caller that overlaps them): they land in call order and contiguous,
 * and once the writer is fenced, none of the appends it still had in flight lands after the new
 * writer's.
 */
import fs from "node:fs"
import os from "node:os"
import path from "node:path"
import { Effect, Fiber, type Scope } from "effect"
import { afterEach, describe, expect, it } from "vitest"
import { Journal, type JournalEntry } from "../../persistence/journal.ts"
import { layerLmdb } from "../../persistence/lmdb/layer-lmdb.ts"
import { depositRecord } from "../contract/fixtures.ts"

const dataDirs: Array<string> = []
afterEach(() => {
  for (const dataDir of dataDirs.splice(0)) fs.rmSync(dataDir, { recursive: true, force: true })
})

const run = <A, E>(program: Effect.Effect<A, E, Journal | Scope.Scope>): Promise<A> => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "payments-lmdb-pipelining-"))
  dataDirs.push(dataDir)
  return Effect.runPromise(Effect.scoped(program).pipe(Effect.provide(layerLmdb({ dataDir }))) as Effect.Effect<A>)
}

const sequencesOf = (entries: ReadonlyArray<JournalEntry>) =>
  entries.map((entry) => (entry.record.events[0] as { readonly sequence: number }).sequence)

describe("LMDB journal writer with appends in flight", () => {
  it("given as many appends in flight as it takes, then they land contiguous and in call order", async () => {
    const result = await run(
      Effect.gen(function* () {
        const journal = yield* Journal
        const writer = yield* journal.openWriter(3)
        const inFlight = 3
        const appends = Array.from({ length: inFlight * 3 }, (_, index) => [
          depositRecord("acct-1", 2 * index + 1, 5n),
          depositRecord("acct-1", 2 * index + 2, 5n),
        ])
        const offsets: Array<number> = []
        for (let start = 0; start < appends.length; start += inFlight) {
          const wave = appends.slice(start, start + inFlight).map((records) => writer.append(records))
          const results = yield* Effect.all(wave, { concurrency: "unbounded" })
          offsets.push(...results.map((appended) => appended.nextOffset))
        }
        const entries: Array<JournalEntry> = []
        yield* journal.replay(3, 0, (batch) => entries.push(...batch))
        return { offsets, entries, count: appends.length }
      }),
    )
    expect(result.offsets).toEqual(Array.from({ length: result.count }, (_, index) => 2 * index + 2))
    expect(result.entries.map((entry) => entry.offset)).toEqual(Array.from({ length: 2 * result.count }, (_, i) => i))
    expect(sequencesOf(result.entries)).toEqual(Array.from({ length: 2 * result.count }, (_, index) => index + 1))
  })

  it("given a new writer opened while the old one has appends in flight, then nothing of the old lands after it", async () => {
    const result = await run(
      Effect.gen(function* () {
        const journal = yield* Journal
        const old = yield* journal.openWriter(5)
        const before = yield* Effect.all(
          [old.append([depositRecord("acct-1", 1, 5n)]), old.append([depositRecord("acct-1", 2, 5n)])],
          { concurrency: "unbounded" },
        )
        // Started before the new writer is opened, so they are in flight in the same write batch.
        const late = yield* Effect.forkChild(
          Effect.all([old.append([depositRecord("acct-1", 3, 5n)]), old.append([depositRecord("acct-1", 4, 5n)])], {
            concurrency: "unbounded",
            mode: "result",
          }),
        )
        yield* Effect.yieldNow
        const fresh = yield* journal.openWriter(5)
        const lateResults = yield* Fiber.join(late)
        yield* fresh.append([depositRecord("acct-1", 100, 5n)])
        const entries: Array<JournalEntry> = []
        yield* journal.replay(5, 0, (batch) => entries.push(...batch))
        return { before, lateResults, entries }
      }),
    )
    expect(result.before.map((appended) => appended.nextOffset)).toEqual([1, 2])
    const landed = sequencesOf(result.entries)
    // The late appends were queued before the new writer's epoch bump or after it: either they
    // landed, in order, before the new writer's record, or they failed and are absent.
    expect(landed.at(-1)).toBe(100)
    expect(landed.slice(0, 2)).toEqual([1, 2])
    const lateLanded = landed.slice(2, -1)
    const lateSucceeded = result.lateResults.filter((outcome) => outcome._tag === "Success").length
    expect(lateLanded).toEqual([3, 4].slice(0, lateSucceeded))
    expect(result.entries.map((entry) => entry.offset)).toEqual(landed.map((_, index) => index))
  })
})
