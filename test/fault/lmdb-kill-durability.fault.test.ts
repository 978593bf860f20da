/**
 * Durability of the LMDB journal under process crashes: a child process appends batches to a few
 * shards and prints each acknowledged batch; it is killed with SIGKILL at random moments, several
 * rounds on the same data directory, each new run continuing where the journal ends. After every
 * round the replay must hold every acknowledged batch exactly once, whole, in order, at the offsets
 * the child was told, with contiguous offsets; a batch that was never acknowledged may be present
 * only whole and only as the last batch its run appended to that shard.
 *
 * SIGKILL tests process crashes only. Durability against power loss comes from the commit itself:
 * an append resolves only after LMDB's commit has fdatasync'd the data pages and written the meta
 * page through an O_DSYNC descriptor (`overlappingSync` off, see persistence/lmdb/environment.ts).
 *
 * A second test pauses a writer process, lets a second process take the shards over, and checks
 * that the paused one is fenced when it wakes, and that a live process's lock keeps others out.
 */
import { type ChildProcess, spawn } from "node:child_process"
import fs from "node:fs"
import os from "node:os"
import path from "node:path"
import { fileURLToPath } from "node:url"
import { Effect } from "effect"
import { afterEach, describe, expect, it } from "vitest"
import type { JournalRecord } from "../../core/events.ts"
import { Journal, type JournalEntry } from "../../persistence/journal.ts"
import { layerLmdb } from "../../persistence/lmdb/layer-lmdb.ts"
import { appenderShards, checksumOf } from "./support/lmdb-appender.ts"

const root = fileURLToPath(new URL("../..", import.meta.url))
const appenderScript = path.join(root, "test/fault/support/lmdb-appender.ts")

interface Ack {
  readonly shard: number
  readonly batch: string
  readonly fromOffset: number
  readonly nextOffset: number
  readonly records: number
  readonly checksum: string
}

interface Appender {
  readonly child: ChildProcess
  readonly acks: Array<Ack>
  readonly lines: Array<string>
  readonly stderr: () => string
  /** Resolves with the first line matching, rejects if the process exits before printing it. */
  readonly waitForLine: (matches: (line: string) => boolean) => Promise<string>
  readonly exited: Promise<number | null>
}

const children: Array<ChildProcess> = []
const dataDirs: Array<string> = []
afterEach(() => {
  for (const child of children.splice(0))
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
  for (const dataDir of dataDirs.splice(0)) fs.rmSync(dataDir, { recursive: true, force: true })
})

const startAppender = (dataDir: string, runId: string, extraArgs: ReadonlyArray<string> = []): Appender => {
  const child = spawn(process.execPath, ["--import", "tsx", appenderScript, dataDir, runId, ...extraArgs], {
    cwd: root,
    stdio: ["ignore", "pipe", "pipe"],
  })
  children.push(child)
  const acks: Array<Ack> = []
  const lines: Array<string> = []
  const waiters: Array<{ matches: (line: string) => boolean; resolve: (line: string) => void }> = []
  let stderr = ""
  let pending = ""
  // Only whole lines count: a line cut by the kill was never an acknowledgement the child finished.
  child.stdout?.on("data", (chunk: Buffer) => {
    pending += chunk.toString("utf8")
    const parts = pending.split("\n")
    pending = parts.pop() ?? ""
    for (const line of parts) {
      lines.push(line)
      if (line.startsWith("ack ")) acks.push(JSON.parse(line.slice(4)) as Ack)
      for (const waiter of waiters.filter((candidate) => candidate.matches(line))) {
        waiters.splice(waiters.indexOf(waiter), 1)
        waiter.resolve(line)
      }
    }
  })
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString("utf8")
  })
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
  const waitForLine = (matches: (line: string) => boolean) =>
    new Promise<string>((resolve, reject) => {
      const seen = lines.find(matches)
      if (seen !== undefined) return resolve(seen)
      waiters.push({ matches, resolve })
      void exited.then((code) => reject(new Error(`appender ${runId} exited (${code}) first: ${stderr}`)))
    })
  return { child, acks, lines, stderr: () => stderr, waitForLine, exited }
}

const freshDataDir = () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "payments-lmdb-fault-"))
  dataDirs.push(dataDir)
  return dataDir
}

const replayShard = (dataDir: string, shard: number): Promise<ReadonlyArray<JournalEntry>> =>
  Effect.runPromise(
    Effect.gen(function* () {
      const entries: Array<JournalEntry> = []
      yield* (yield* Journal).replay(shard, 0, (batch) => entries.push(...batch))
      return entries
    }).pipe(Effect.provide(layerLmdb({ dataDir }))),
  )

interface Segment {
  readonly batch: string
  readonly fromOffset: number
  readonly records: Array<JournalRecord>
}

/** Cuts a shard's log into runs of records of one batch, checking each is whole and in order. */
const segmentsOf = (shard: number, entries: ReadonlyArray<JournalEntry>): Array<Segment> => {
  const segments: Array<Segment> = []
  entries.forEach((entry, offset) => {
    expect(entry.offset).toBe(offset)
    const paymentId = entry.record.events[0]?.paymentId ?? ""
    const [batch = "", index = ""] = paymentId.split("/")
    const last = segments.at(-1)
    if (last?.batch === batch) {
      expect(Number(index)).toBe(last.records.length)
      last.records.push(entry.record)
    } else {
      expect(Number(index)).toBe(0)
      expect(batch.split(":")[1]).toBe(String(shard))
      segments.push({ batch, fromOffset: offset, records: [entry.record] })
    }
  })
  return segments
}

/** Run number and batch number of a batch id `r<run>:<shard>:<batch>`. */
const positionOf = (batch: string): [number, number] => {
  const [run = "", , index = ""] = batch.split(":")
  return [Number(run.slice(1)), Number(index)]
}

const verifyShard = async (dataDir: string, shard: number, acks: ReadonlyArray<Ack>) => {
  const segments = segmentsOf(shard, await replayShard(dataDir, shard))
  const byBatch = new Map(segments.map((segment) => [segment.batch, segment]))
  // Exactly once: no batch id appears in two places.
  expect(byBatch.size).toBe(segments.length)
  // In order: runs follow each other, and batches within a run.
  for (let index = 1; index < segments.length; index++) {
    const [previousRun, previousBatch] = positionOf(segments[index - 1]?.batch ?? "")
    const [run, batch] = positionOf(segments[index]?.batch ?? "")
    expect(run > previousRun || (run === previousRun && batch === previousBatch + 1)).toBe(true)
  }
  const acknowledged = new Set<string>()
  for (const ack of acks.filter((candidate) => candidate.shard === shard)) {
    const segment = byBatch.get(ack.batch)
    expect(segment, `acknowledged batch ${ack.batch} is missing`).toBeDefined()
    expect(segment?.fromOffset).toBe(ack.fromOffset)
    expect(segment?.records.length).toBe(ack.records)
    expect((segment?.fromOffset ?? 0) + (segment?.records.length ?? 0)).toBe(ack.nextOffset)
    expect(checksumOf(segment?.records ?? [])).toBe(ack.checksum)
    acknowledged.add(ack.batch)
  }
  // An unacknowledged batch can only be the one in flight when its run was killed: its run's last.
  segments.forEach((segment, index) => {
    if (acknowledged.has(segment.batch)) return
    const next = segments[index + 1]
    expect(next === undefined || positionOf(next.batch)[0] > positionOf(segment.batch)[0]).toBe(true)
  })
  return { segments: segments.length, acknowledged: acknowledged.size }
}

const randomBetween = (lowMs: number, highMs: number) => lowMs + Math.floor(Math.random() * (highMs - lowMs))
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe("LMDB journal under SIGKILL", () => {
  it("keeps every acknowledged batch exactly once, whole and in order, across kills at random moments", async () => {
    const dataDir = freshDataDir()
    const acks: Array<Ack> = []
    const rounds = 6
    for (let round = 1; round <= rounds; round++) {
      const appender = startAppender(dataDir, `r${round}`)
      await appender.waitForLine((line) => line.startsWith("ready "))
      await sleep(randomBetween(100, 900))
      appender.child.kill("SIGKILL")
      await appender.exited
      expect(appender.acks.length).toBeGreaterThan(0)
      acks.push(...appender.acks)
      for (const shard of appenderShards) await verifyShard(dataDir, shard, acks)
    }
    let acknowledged = 0
    for (const shard of appenderShards) acknowledged += (await verifyShard(dataDir, shard, acks)).acknowledged
    expect(acknowledged).toBe(acks.length)
  }, 120_000)

  it("locks out a second process, and fences a paused writer once another process took its shards", async () => {
    const dataDir = freshDataDir()
    const stale = startAppender(dataDir, "r1", ["--pause-after", "3"])
    await stale.waitForLine((line) => line === "paused")

    const refused = startAppender(dataDir, "r2")
    expect(await refused.exited).toBe(1)
    expect(refused.stderr()).toContain(`is in use by another node (pid ${stale.child.pid}`)
    // The lock is the first line of defence; with it gone (an operator's mistake), fencing holds.
    fs.rmSync(path.join(dataDir, "node.lock"))
    const current = startAppender(dataDir, "r2", ["--pause-after", "2"])
    await current.waitForLine((line) => line === "paused")

    stale.child.kill("SIGUSR2")
    expect(await stale.exited).toBe(0)
    expect(stale.lines.filter((line) => line.startsWith("fenced ")).sort()).toEqual(
      appenderShards.map((shard) => `fenced ${shard}`),
    )
    current.child.kill("SIGUSR2")
    expect(await current.exited).toBe(0)
    expect(current.lines.filter((line) => line.startsWith("appended ")).sort()).toEqual(
      appenderShards.map((shard) => `appended ${shard}`),
    )
    for (const shard of appenderShards) {
      const segments = segmentsOf(shard, await replayShard(dataDir, shard))
      expect(segments.map((segment) => segment.batch)).toEqual([
        `r1:${shard}:0`,
        `r1:${shard}:1`,
        `r1:${shard}:2`,
        `r2:${shard}:0`,
        `r2:${shard}:1`,
        `r2:${shard}:late`,
      ])
    }
  }, 60_000)
})
