/**
 * Group commit with appends in flight at once: answers are released in log order whatever order
 * the journal confirms in, a failure fails every waiting answer and nothing after it is released,
 * and the writer's bound on appends in flight is kept.
 */
import { describe, expect, it } from "vitest"
import type { Batch } from "../../actors/group-commit.ts"
import { type AppendResult, GroupCommit } from "../../actors/group-commit.ts"
import type { JournalRecord } from "../../core/events.ts"

const record = (): JournalRecord => ({ events: [] })

/** A journal whose appends the test confirms or fails by hand. */
const harness = (appendsInFlightMax: number) => {
  const pending: Array<{ records: ReadonlyArray<JournalRecord>; done: (result: AppendResult) => void }> = []
  const durable: Array<number> = []
  const failures: Array<unknown> = []
  let nextOffset = 0
  const commits = new GroupCommit(
    2,
    appendsInFlightMax,
    (records, done) => pending.push({ records, done }),
    (batch: Batch) => durable.push(batch.nextOffset),
    (failure) => failures.push(failure),
  )
  const confirm = (index: number) => {
    const append = pending[index]
    if (append === undefined) throw new Error(`no append ${index}`)
    nextOffset += append.records.length
    append.done({ _tag: "Durable", nextOffset })
  }
  return { commits, pending, durable, failures, confirm }
}

const turn = () => new Promise((resolve) => setImmediate(resolve))

describe("group commit with appends in flight", () => {
  it("given two batches in flight confirmed in reverse order, then answers are released in log order", async () => {
    const { commits, pending, durable, confirm } = harness(2)
    const released: Array<string> = []
    commits.add(record(), [], () => released.push("a"))
    commits.add(record(), [], () => released.push("b"))
    commits.add(record(), [], () => released.push("c"))
    await turn()
    expect(pending).toHaveLength(2)
    confirm(1)
    expect(released).toEqual([])
    confirm(0)
    expect(released).toEqual(["a", "b", "c"])
    expect(durable).toHaveLength(2)
    expect(commits.depth).toBe(0)
  })

  it("given one append allowed in flight, when more arrive, then the next batch waits for the first", async () => {
    const { commits, pending, confirm } = harness(1)
    commits.add(record(), [], () => {})
    await turn()
    commits.add(record(), [], () => {})
    await turn()
    expect(pending).toHaveLength(1)
    confirm(0)
    await turn()
    expect(pending).toHaveLength(2)
  })

  it("given an answer that writes nothing, then it waits for the batch in flight before it", async () => {
    const { commits, confirm } = harness(2)
    const released: Array<string> = []
    commits.add(record(), [], () => released.push("write"))
    await turn()
    commits.after(() => released.push("read"))
    expect(released).toEqual([])
    confirm(0)
    expect(released).toEqual(["write", "read"])
  })

  it("given the first batch fails while a later one is in flight, then no answer is released as durable", async () => {
    const { commits, pending, failures } = harness(2)
    const outcomes: Array<boolean> = []
    commits.add(record(), [], (durable) => outcomes.push(durable))
    commits.add(record(), [], (durable) => outcomes.push(durable))
    commits.add(record(), [], (durable) => outcomes.push(durable))
    await turn()
    pending[0]?.done({ _tag: "Failed", failure: "disk full" })
    expect(failures).toEqual(["disk full"])
    commits.abandon()
    pending[1]?.done({ _tag: "Durable", nextOffset: 3 })
    expect(outcomes).toEqual([false, false, false])
  })
})
