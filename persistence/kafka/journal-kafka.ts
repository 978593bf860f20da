/**
 * The Kafka Journal layer (aws mode): partition `shard` of one topic is shard `shard`'s journal.
 * At build it checks the topic (creating it when missing) and connects the admin client that
 * replays use for partition offsets; closing the layer disconnects it. Writers and replays bring
 * their own producer or consumer, closed with them.
 */
import { Effect, Layer } from "effect"
import { Journal, type JournalUnavailable, writerShards } from "../journal.ts"
import { boundedPromise, ensureJournalTopic, type KafkaJournalConfig, makeKafka, unavailable } from "./kafka-clients.ts"
import { replayShard } from "./kafka-replay.ts"
import { openKafkaWriter } from "./kafka-writer.ts"

export type { KafkaJournalConfig } from "./kafka-clients.ts"

const makeKafkaJournal = Effect.fnUntraced(function* (config: KafkaJournalConfig) {
  const kafka = makeKafka(config)
  yield* ensureJournalTopic(kafka, config)
  const admin = kafka.admin()
  yield* Effect.acquireRelease(
    boundedPromise(-1, "connecting the Kafka admin client", config.requestTimeoutMs, () => admin.connect()).pipe(
      Effect.mapError((failure) => unavailable(-1, "Kafka journal start", failure.cause)),
    ),
    () =>
      Effect.promise(() => admin.disconnect().catch(() => undefined)).pipe(
        Effect.timeout(config.requestTimeoutMs),
        Effect.ignore,
      ),
  )
  /** Per shard, the offset after the last batch this process had acknowledged: replays read up to it. */
  const acknowledgedThrough = new Map<number, number>()
  const checkShard = (shard: number) => {
    if (!Number.isInteger(shard) || shard < 0 || shard >= config.shardCount) {
      throw new Error(`shard ${shard} outside 0..${config.shardCount - 1}`)
    }
  }
  return Journal.of({
    openWriter: (requested) =>
      Effect.suspend(() => {
        const shards = writerShards(requested)
        for (const shard of shards) checkShard(shard)
        return openKafkaWriter(kafka, config, shards, (shard, nextOffset) => {
          acknowledgedThrough.set(shard, Math.max(acknowledgedThrough.get(shard) ?? 0, nextOffset))
        })
      }),
    replay: (shard, fromOffset, onEntries) =>
      Effect.suspend(() => {
        checkShard(shard)
        return replayShard({ kafka, admin, config }, shard, fromOffset, acknowledgedThrough.get(shard) ?? 0, onEntries)
      }),
    // The topic is the system of record and keeps its own retention (retention.ms); nothing is deleted here.
    discardBefore: () => Effect.void,
  })
})

export const layerKafka = (config: KafkaJournalConfig): Layer.Layer<Journal, JournalUnavailable> =>
  Layer.effect(Journal)(makeKafkaJournal(config))
