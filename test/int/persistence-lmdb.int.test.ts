/**
 * The LMDB adapters (embedded mode) on a real LMDB environment in a fresh temporary data
 * directory per test: the port contracts, plus what only a durable store can show: state and
 * epochs survive closing and reopening, and the data directory admits one node at a time.
 */
import fs from "node:fs"
import os from "node:os"
import path from "node:path"
import { Effect, Layer, type Scope } from "effect"
import { afterEach, describe, expect, it } from "vitest"
import { buildSegment } from "../../actors/segment-builder.ts"
import { decodeSection } from "../../core/segment-codec.ts"
import { Journal, type JournalEntry } from "../../persistence/journal.ts"
import { layerLmdb } from "../../persistence/lmdb/layer-lmdb.ts"
import { ShardLeases } from "../../persistence/shard-leases.ts"
import { SnapshotStore } from "../../persistence/snapshot-store.ts"
import { accountEntity, depositRecord, paymentEntity } from "../contract/fixtures.ts"
import { journalContract } from "../contract/journal.contract.ts"
import { entriesOf, snapshotStoreContract } from "../contract/snapshot-store.contract.ts"

const dataDirs: Array<string> = []
const freshDataDir = (): string => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "payments-lmdb-"))
  dataDirs.push(dataDir)
  return dataDir
}
afterEach(() => {
  for (const dataDir of dataDirs.splice(0)) fs.rmSync(dataDir, { recursive: true, force: true })
})

journalContract("lmdb", () => layerLmdb({ dataDir: freshDataDir() }))
snapshotStoreContract("lmdb", () => layerLmdb({ dataDir: freshDataDir() }))

type Ports = Journal | SnapshotStore | ShardLeases

/** Opens the environment, runs `program`, and closes the environment again (releasing the lock). */
const withNode = <A, E>(dataDir: string, program: Effect.Effect<A, E, Ports | Scope.Scope>): Promise<A> =>
  Effect.runPromise(Effect.scoped(program).pipe(Effect.provide(layerLmdb({ dataDir }))) as Effect.Effect<A, unknown>)

/** Opens the directory, takes shard 0's lease and says its epoch. */
const leaseEpochOf = (dataDir: string): Promise<number> =>
  withNode(dataDir, ShardLeases.use((leases) => leases.acquire(0)).pipe(Effect.map((lease) => lease.epoch)))

const replayAll = (shard: number) =>
  Effect.gen(function* () {
    const journal = yield* Journal
    const entries: Array<JournalEntry> = []
    const { nextOffset } = yield* journal.replay(shard, 0, (batch) => entries.push(...batch))
    return { entries, nextOffset }
  })

describe("LMDB persistence across restarts", () => {
  it("keeps journal, checkpoint, entities and epochs after the environment is closed and reopened", async () => {
    const dataDir = freshDataDir()
    const written = [depositRecord("acc-1", 2, 10n), depositRecord("acc-1", 3, 987_654_321_987_654_321n)]
    const account = accountEntity("acc-1", 987_654_321_987_654_331n, 3)
    const payment = paymentEntity("pay-1", "settled")
    const first = await withNode(
      dataDir,
      Effect.gen(function* () {
        const lease = yield* (yield* ShardLeases).acquire(5)
        const store = yield* SnapshotStore
        yield* store.claim(5, lease.epoch)
        const writer = yield* (yield* Journal).openWriter(5)
        const appended = yield* writer.append(written)
        const built = buildSegment(
          {
            accounts: account.kind === "account" ? [account.value] : [],
            entries: payment.kind === "account" ? [] : [payment],
            live: [],
          },
          store.partBytesMax,
        )
        const checkpoint = { shard: 5, epoch: lease.epoch, nextOffset: appended.nextOffset, segment: 7, base: 7 }
        yield* store.save(
          checkpoint,
          1_700_000_000_000,
          built.parts.map((part) => part.part),
        )
        return { epoch: lease.epoch, nextOffset: appended.nextOffset, checkpoint }
      }),
    )
    expect(first.nextOffset).toBe(2)

    await withNode(
      dataDir,
      Effect.gen(function* () {
        const replayed = yield* replayAll(5)
        expect(replayed.entries).toEqual([
          { offset: 0, record: written[0] },
          { offset: 1, record: written[1] },
        ])
        expect(replayed.nextOffset).toBe(2)
        const lease = yield* (yield* ShardLeases).acquire(5)
        expect(lease.epoch).toBeGreaterThan(first.epoch)
        const snapshot = yield* (yield* SnapshotStore).claim(5, lease.epoch)
        expect(snapshot?.checkpoint).toEqual(first.checkpoint)
        expect((snapshot?.accounts ?? []).flatMap((section) => decodeSection(section))).toEqual([account])
        expect(snapshot?.parts.map((part) => part.segment)).toEqual([7])
        // The writer of the new run continues the log where the previous run left it.
        const writer = yield* (yield* Journal).openWriter(5)
        expect((yield* writer.append([depositRecord("acc-1", 4, 1n)])).nextOffset).toBe(3)
      }),
    )
  })

  it("keeps lease and claim epochs increasing across reopens, so an old owner stays fenced", async () => {
    const dataDir = freshDataDir()
    const epochs: Array<number> = []
    for (let run = 0; run < 3; run++) {
      epochs.push(
        await withNode(
          dataDir,
          Effect.map(
            ShardLeases.use((leases) => leases.acquire(0)),
            (l) => l.epoch,
          ),
        ),
      )
    }
    expect(epochs).toEqual([1, 2, 3])
    await withNode(
      dataDir,
      SnapshotStore.use((store) => store.claim(0, 3)),
    )
    const staleClaim = await withNode(dataDir, Effect.result(SnapshotStore.use((store) => store.claim(0, 2))))
    expect(staleClaim._tag).toBe("Failure")
    if (staleClaim._tag === "Failure") expect(staleClaim.failure._tag).toBe("SnapshotFenced")
    const staleSave = await withNode(
      dataDir,
      Effect.result(
        SnapshotStore.use((store) => store.save({ shard: 0, epoch: 2, nextOffset: 1, segment: 1, base: 1 }, 0, [])),
      ),
    )
    expect(staleSave._tag).toBe("Failure")
    if (staleSave._tag === "Failure") expect(staleSave.failure._tag).toBe("SnapshotFenced")
  })

  it("refuses a second environment on a data directory that is open, with a message that says so", async () => {
    const dataDir = freshDataDir()
    const second = await withNode(
      dataDir,
      Effect.gen(function* () {
        yield* (yield* ShardLeases).acquire(0)
        return yield* Effect.result(Effect.scoped(Layer.build(layerLmdb({ dataDir }))))
      }),
    )
    expect(second._tag).toBe("Failure")
    if (second._tag === "Failure") {
      expect(second.failure._tag).toBe("LmdbUnavailable")
      expect(second.failure.message).toMatch(/already open in this process/)
    }
    // Closing the first released the lock: the directory opens again.
    expect(await leaseEpochOf(dataDir)).toBe(2)
  })

  it("takes over a stale lock left by a dead process, and refuses one held by a live process", async () => {
    const dataDir = freshDataDir()
    const lockPath = path.join(dataDir, "node.lock")
    // A pid above the kernel's pid_max cannot be alive.
    fs.writeFileSync(lockPath, "4194305\n")
    expect(await leaseEpochOf(dataDir)).toBe(1)
    expect(fs.existsSync(lockPath)).toBe(false)
    // The parent of this worker is alive and is not this process.
    fs.writeFileSync(lockPath, `${process.ppid}\n`)
    const refused = await Effect.runPromise(Effect.result(Effect.scoped(Layer.build(layerLmdb({ dataDir })))))
    expect(refused._tag).toBe("Failure")
    if (refused._tag === "Failure") {
      expect(refused.failure.message).toMatch(new RegExp(`in use by another node \\(pid ${process.ppid}`))
    }
    expect(fs.readFileSync(lockPath, "utf8")).toBe(`${process.ppid}\n`)
  })

  it("keeps segments as files the catalog names: a save cut short or fenced leaves none, a delete frees the disk", async () => {
    const dataDir = freshDataDir()
    const shardDir = path.join(dataDir, "segments", "1")
    const files = () => (fs.existsSync(shardDir) ? fs.readdirSync(shardDir).sort() : [])
    const segmentOf = (store: SnapshotStore["Service"], balance: bigint) =>
      buildSegment(
        {
          accounts: [accountEntity("acc-1", balance, 2)].flatMap((e) => (e.kind === "account" ? [e.value] : [])),
          entries: [],
          live: [],
        },
        store.partBytesMax,
      ).parts.map((part) => part.part)
    await withNode(
      dataDir,
      Effect.gen(function* () {
        const store = yield* SnapshotStore
        yield* store.claim(1, 1)
        yield* store.save({ shard: 1, epoch: 1, nextOffset: 1, segment: 10, base: 10 }, 0, segmentOf(store, 1n))
        yield* store.save({ shard: 1, epoch: 1, nextOffset: 2, segment: 11, base: 11 }, 0, segmentOf(store, 2n))
        expect(files()).toEqual(["10-1.seg", "11-1.seg"])
        yield* store.deleteSegments(1, [{ segment: 10, parts: [] }])
        expect(files()).toEqual(["11-1.seg"])
      }),
    )
    // A save of epoch 1 cut short after its file was written: nothing names the file.
    fs.copyFileSync(path.join(shardDir, "11-1.seg"), path.join(shardDir, "12-1.seg"))
    await withNode(
      dataDir,
      Effect.gen(function* () {
        const store = yield* SnapshotStore
        const claimed = yield* store.claim(1, 2)
        expect(claimed?.checkpoint.segment).toBe(11)
        expect(claimed?.parts.map((part) => part.segment)).toEqual([11])
        expect(files()).toEqual(["11-1.seg"])
        const fenced = yield* Effect.result(
          store.save({ shard: 1, epoch: 1, nextOffset: 3, segment: 12, base: 12 }, 0, segmentOf(store, 3n)),
        )
        expect(fenced._tag).toBe("Failure")
        expect(files()).toEqual(["11-1.seg"])
        yield* store.save({ shard: 1, epoch: 2, nextOffset: 3, segment: 12, base: 12 }, 0, segmentOf(store, 4n))
        expect(files()).toEqual(["11-1.seg", "12-2.seg"])
      }),
    )
    // A cataloged file that is missing is damage: the claim fails instead of losing accounts.
    fs.rmSync(path.join(shardDir, "12-2.seg"))
    const damaged = await withNode(dataDir, Effect.result(SnapshotStore.use((store) => store.claim(1, 3))))
    expect(damaged._tag).toBe("Failure")
    if (damaged._tag === "Failure") expect(damaged.failure._tag).toBe("SnapshotUnavailable")
  })

  it("reads entries back through a bounded set of open files, and closes a deleted segment's file", async () => {
    const dataDir = freshDataDir()
    const openSegmentFiles = () =>
      fs.readdirSync("/proc/self/fd").filter((fd) => {
        try {
          return fs.readlinkSync(path.join("/proc/self/fd", fd)).startsWith(path.join(dataDir, "segments"))
        } catch {
          return false // the directory listing's own descriptor, closed meanwhile
        }
      }).length
    const segments = 80
    await withNode(
      dataDir,
      Effect.gen(function* () {
        const store = yield* SnapshotStore
        yield* store.claim(1, 1)
        for (let segment = 1; segment <= segments; segment++) {
          const entry = paymentEntity(`pay-${segment}`, "settled")
          const parts = buildSegment({ accounts: [], entries: entriesOf([entry]), live: [] }, store.partBytesMax).parts
          const checkpoint = { shard: 1, epoch: 1, nextOffset: segment, segment, base: 1 }
          yield* store.save(
            checkpoint,
            0,
            parts.map((part) => part.part),
          )
        }
        for (let segment = 1; segment <= segments; segment++) {
          const read = yield* store.readEntries(1, segment, paymentEntity("any", "settled").value.tenantId, 0)
          const [entry] = decodeSection(read?.entries as Uint8Array)
          expect(entry).toEqual(paymentEntity(`pay-${segment}`, "settled"))
        }
        expect(openSegmentFiles()).toBe(64)
        yield* store.deleteSegments(
          1,
          Array.from({ length: segments - 1 }, (_, index) => ({ segment: index + 1, parts: [] })),
        )
        expect(openSegmentFiles()).toBe(1)
      }),
    )
    expect(openSegmentFiles()).toBe(0)
  })
})
