/**
 * A stale process cannot get a journal append acknowledged once a new owner has opened the shard.
 * The old owner is a real child process (test/fault/support/kafka-stale-writer.ts) on the real
 * broker; this test is the new owner. It is paused (SIGSTOP) mid-transaction and mid-stream, then
 * resumed: every append it tries afterwards fails with JournalFenced, and the journal the new owner
 * replays holds exactly the records somebody was told were durable.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { randomUUID } from "node:crypto"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"
import { Effect, type Scope } from "effect"
import { afterEach, beforeAll, describe, expect, it } from "vitest"
import type { JournalRecord } from "../../core/events.ts"
import { Journal, type ShardWriter } from "../../persistence/journal.ts"
import { type KafkaJournalConfig, layerKafka } from "../../persistence/kafka/journal-kafka.ts"
import { stackUp } from "../../scripts/local-stack/stack.ts"
import { depositRecord } from "../contract/fixtures.ts"

const root = fileURLToPath(new URL("../..", import.meta.url))
const shardCount = 2
let brokers = ""

beforeAll(async () => {
  brokers = (await stackUp()).kafkaBrokers
})

interface StaleEvent {
  readonly event: "opened" | "acked" | "failed" | "sent" | "stream-ended" | "crashed"
  readonly id?: string
  readonly tag?: string
}

interface StaleWriter {
  readonly child: ChildProcess
  readonly events: Array<StaleEvent>
  readonly waitFor: (predicate: (event: StaleEvent) => boolean, what: string) => Promise<StaleEvent>
  readonly send: (line: string) => void
  readonly stderr: () => string
}

const children: Array<ChildProcess> = []

afterEach(() => {
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGCONT")
      child.kill("SIGKILL")
    }
  }
})

const startStaleWriter = async (topic: string, mode: "writer" | "raw"): Promise<StaleWriter> => {
  const child = spawn(process.execPath, ["--import", "tsx", "test/fault/support/kafka-stale-writer.ts", mode], {
    cwd: root,
    env: { ...process.env, KAFKA_BROKERS: brokers, KAFKA_TOPIC: topic, SHARD_COUNT: String(shardCount) },
    stdio: ["pipe", "pipe", "pipe"],
  })
  children.push(child)
  const events: Array<StaleEvent> = []
  const waiters = new Set<() => void>()
  let stderr = ""
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-10_000)
  })
  if (child.stdout === null) throw new Error("stale writer without stdout")
  createInterface({ input: child.stdout }).on("line", (line) => {
    events.push(JSON.parse(line) as StaleEvent)
    for (const wake of waiters) wake()
  })
  const waitFor = (predicate: (event: StaleEvent) => boolean, what: string) =>
    new Promise<StaleEvent>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`stale writer: no ${what} in 30 s; stderr:\n${stderr}`)), 30_000)
      const check = () => {
        const found = events.find(predicate)
        if (found === undefined) return
        clearTimeout(timer)
        waiters.delete(check)
        resolve(found)
      }
      waiters.add(check)
      check()
    })
  const writer: StaleWriter = {
    child,
    events,
    waitFor,
    send: (line) => child.stdin?.write(`${line}\n`),
    stderr: () => stderr,
  }
  await waitFor((event) => event.event === "opened", "open")
  return writer
}

const newOwnerConfig = (topic: string): KafkaJournalConfig => ({
  brokers: brokers.split(","),
  topic,
  shardCount,
  replicationFactor: 1,
  requestTimeoutMs: 5_000,
  clientId: "new-owner",
  // The same prefix as the stale writer's: the transactional id of shard 0 is the same.
  transactionalIdPrefix: "fault",
})

/** Runs the new owner's side with the Kafka journal of `topic`. */
const asNewOwner = <A, E>(topic: string, program: Effect.Effect<A, E, Journal | Scope.Scope>): Promise<A> =>
  Effect.runPromise(Effect.scoped(program).pipe(Effect.provide(layerKafka(newOwnerConfig(topic)))))

const ownerRecord = (index: number): JournalRecord => depositRecord("owner", index + 2, BigInt(index + 1))

/** Payment ids of the stale writer's records in shard 0, and the new owner's records, as replayed. */
const replayShardZero = Effect.gen(function* () {
  const journal = yield* Journal
  const records: Array<JournalRecord> = []
  yield* journal.replay(0, 0, (entries) => records.push(...entries.map((entry) => entry.record)))
  const staleIds = records.flatMap((record) =>
    record.events.filter((event) => event.accountId === "stale").map((event) => event.paymentId),
  )
  const ownerRecords = records.filter((record) => record.events.every((event) => event.accountId === "owner"))
  return { staleIds, ownerRecords }
})

const appendOwnerRecords = (writer: ShardWriter, count: number) =>
  Effect.forEach(
    Array.from({ length: count }, (_, index) => ownerRecord(index)),
    (record) => writer.append([record]),
  )

const ackedIds = (writer: StaleWriter): ReadonlyArray<string | undefined> =>
  writer.events.filter((event) => event.event === "acked").map((event) => event.id)

const uniqueTopic = (): string => `fencing-${randomUUID()}`

describe("Kafka journal fencing of a stale process", () => {
  it("fails the stale process's next append with JournalFenced once a new owner opened", async () => {
    const topic = uniqueTopic()
    const stale = await startStaleWriter(topic, "writer")
    stale.send("append before-takeover")
    await stale.waitFor((event) => event.id === "before-takeover", "ack before the takeover")
    const replayed = await asNewOwner(
      topic,
      Effect.gen(function* () {
        const writer = yield* (yield* Journal).openWriter(0)
        // Fencing happens at open, before the new owner's first append.
        yield* Effect.promise(async () => {
          stale.send("append after-open")
          await stale.waitFor((event) => event.id === "after-open", "answer after the open")
        })
        yield* appendOwnerRecords(writer, 2)
        yield* Effect.promise(async () => {
          stale.send("stream 5")
          await stale.waitFor((event) => event.event === "stream-ended", "end of the stream")
        })
        return yield* replayShardZero
      }),
    )
    const failures = stale.events.filter((event) => event.event === "failed")
    expect(failures.map((event) => [event.id, event.tag])).toEqual([
      ["after-open", "JournalFenced"],
      ["stream-0", "JournalFenced"],
    ])
    expect(ackedIds(stale)).toEqual(["before-takeover"])
    expect(replayed.staleIds).toEqual(["before-takeover"])
    expect(replayed.ownerRecords).toEqual([ownerRecord(0), ownerRecord(1)])
  }, 90_000)

  it("never acknowledges a transaction that a paused old owner commits after the takeover", async () => {
    const topic = uniqueTopic()
    const stale = await startStaleWriter(topic, "raw")
    stale.send("hold committed-before")
    await stale.waitFor((event) => event.event === "sent" && event.id === "committed-before", "first send")
    stale.send("commit")
    await stale.waitFor((event) => event.event === "acked" && event.id === "committed-before", "first ack")
    stale.send("hold held-over")
    await stale.waitFor((event) => event.event === "sent" && event.id === "held-over", "send of the held batch")
    stale.child.kill("SIGSTOP")
    const replayed = await asNewOwner(
      topic,
      Effect.gen(function* () {
        const writer = yield* (yield* Journal).openWriter(0)
        yield* appendOwnerRecords(writer, 1)
        yield* Effect.promise(async () => {
          stale.child.kill("SIGCONT")
          stale.send("commit")
          await stale.waitFor((event) => event.event === "failed" && event.id === "held-over", "refused commit")
        })
        return yield* replayShardZero
      }),
    )
    expect(stale.events.find((event) => event.id === "held-over" && event.event === "failed")?.tag).toBe(
      "JournalFenced",
    )
    expect(ackedIds(stale)).toEqual(["committed-before"])
    expect(replayed.staleIds).toEqual(["committed-before"])
    expect(replayed.ownerRecords).toEqual([ownerRecord(0)])
  }, 90_000)

  it("a stream paused at arbitrary points keeps exactly its acknowledged appends", async () => {
    for (let round = 0; round < 3; round++) {
      const topic = uniqueTopic()
      const stale = await startStaleWriter(topic, "writer")
      stale.send("stream 100000")
      await stale.waitFor((event) => event.id === "stream-20", "twenty acks")
      // Somewhere in the middle of an append: before its send, between send and commit, or in the commit.
      await new Promise((resume) => setTimeout(resume, Math.floor(Math.random() * 20)))
      stale.child.kill("SIGSTOP")
      const replayed = await asNewOwner(
        topic,
        Effect.gen(function* () {
          const writer = yield* (yield* Journal).openWriter(0)
          yield* appendOwnerRecords(writer, 3)
          yield* Effect.promise(async () => {
            stale.child.kill("SIGCONT")
            await stale.waitFor((event) => event.event === "stream-ended", "end of the stream")
          })
          return yield* replayShardZero
        }),
      )
      const failures = stale.events.filter((event) => event.event === "failed")
      expect(
        failures.map((event) => event.tag),
        stale.stderr(),
      ).toEqual(["JournalFenced"])
      expect(replayed.staleIds).toEqual(ackedIds(stale))
      expect(replayed.ownerRecords).toEqual([ownerRecord(0), ownerRecord(1), ownerRecord(2)])
      stale.child.kill("SIGKILL")
    }
  }, 180_000)
})
