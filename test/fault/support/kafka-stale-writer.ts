/**
 * A journal writer in its own process, driven line by line over stdin, for the Kafka fencing fault
 * test: it plays the old owner of shard 0. Each line on stdout is one JSON event; an `acked` event
 * is printed only after the journal acknowledged the append, exactly as the runtime replies only
 * then, so the test knows which records anyone was told are durable.
 *
 * Environment: KAFKA_BROKERS, KAFKA_TOPIC, SHARD_COUNT. Commands (stdin):
 *   `append <id>`      append one record through the adapter's ShardWriter, report acked/failed
 *   `stream <count>`   append records stream-0, stream-1, ... back to back until one fails
 *   `hold <id>`        (raw-writer mode) send one record in a transaction, report `sent`, then wait
 *   `commit`           commit the held transaction, report acked/failed
 * Started with argument `raw`, it uses the adapter's producer and transaction code directly so it
 * can stop between send and commit; otherwise it goes through `layerKafka`.
 */
import { createInterface } from "node:readline"
import { Effect } from "effect"
import { Journal, type ShardWriter } from "../../../persistence/journal.ts"
import { layerKafka } from "../../../persistence/kafka/journal-kafka.ts"
import {
  closeQuietly,
  ensureJournalTopic,
  type KafkaJournalConfig,
  makeAdmin,
} from "../../../persistence/kafka/kafka-clients.ts"
import { isFencingError } from "../../../persistence/kafka/kafka-errors.ts"
import {
  appendInTransaction,
  connectAndFence,
  journalMessage,
  makeProducer,
} from "../../../persistence/kafka/kafka-writer.ts"
import { depositRecord } from "../../contract/fixtures.ts"

const shard = 0
const config: KafkaJournalConfig = {
  brokers: (process.env.KAFKA_BROKERS ?? "127.0.0.1:19092").split(","),
  topic: process.env.KAFKA_TOPIC ?? "stale-writer",
  shardCount: Number(process.env.SHARD_COUNT ?? "2"),
  replicationFactor: 1,
  requestTimeoutMs: 5_000,
  clientId: "stale-writer",
  transactionalIdPrefix: "fault",
}

/** The stale writer's records: one deposit to account `stale`, its payment id names the append. */
export const staleRecord = (id: string) => {
  const record = depositRecord("stale", 2, 1n)
  const [event] = record.events
  if (event === undefined) throw new Error("fixture without an event")
  return { events: [{ ...event, paymentId: id }] }
}

const report = (event: Record<string, unknown>): void => {
  process.stdout.write(`${JSON.stringify(event)}\n`)
}

const appendThroughWriter = (writer: ShardWriter, id: string) =>
  Effect.result(writer.append([staleRecord(id)])).pipe(
    Effect.map((result) => {
      if (result._tag === "Success") report({ event: "acked", id, nextOffset: result.success.nextOffset })
      else report({ event: "failed", id, tag: result.failure._tag })
      return result._tag === "Success"
    }),
  )

const runWithWriter = (lines: AsyncIterator<string>) =>
  Effect.gen(function* () {
    const writer = yield* (yield* Journal).openWriter(shard)
    report({ event: "opened" })
    for (let next = yield* nextLine(lines); !next.done; next = yield* nextLine(lines)) {
      const [command, argument = ""] = next.value.trim().split(" ")
      if (command === "append") yield* appendThroughWriter(writer, argument)
      if (command === "stream") {
        for (let index = 0; index < Number(argument); index++) {
          if (!(yield* appendThroughWriter(writer, `stream-${index}`))) break
        }
        report({ event: "stream-ended" })
      }
    }
  }).pipe(Effect.scoped, Effect.provide(layerKafka(config)))

const nextLine = (lines: AsyncIterator<string>) => Effect.promise(() => lines.next())

const runRaw = async (lines: AsyncIterator<string>): Promise<void> => {
  const admin = makeAdmin(config)
  await Effect.runPromise(
    ensureJournalTopic(admin, config).pipe(Effect.ensuring(closeQuietly(admin, config.requestTimeoutMs))),
  )
  const producer = makeProducer(config, shard)
  await connectAndFence(producer)
  report({ event: "opened" })
  for (let next = await lines.next(); !next.done; next = await lines.next()) {
    const [command, id = ""] = next.value.trim().split(" ")
    if (command !== "hold") continue
    const waitForCommitLine = async () => {
      report({ event: "sent", id })
      for (let line = await lines.next(); !line.done; line = await lines.next()) if (line.value === "commit") return
    }
    const message = journalMessage(config.topic, shard, staleRecord(id))
    await appendInTransaction(producer, config.topic, shard, [message], waitForCommitLine).then(
      (nextOffset) => report({ event: "acked", id, nextOffset }),
      (error: unknown) =>
        report({ event: "failed", id, tag: isFencingError(error) ? "JournalFenced" : "JournalUnavailable" }),
    )
  }
}

const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]()
const main = process.argv[2] === "raw" ? runRaw(lines) : Effect.runPromise(runWithWriter(lines))
main.then(
  () => process.exit(0),
  (error: unknown) => {
    report({ event: "crashed", message: String(error) })
    process.exit(1)
  },
)
