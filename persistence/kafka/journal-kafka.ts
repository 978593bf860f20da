/**
 * The Kafka Journal layer (aws mode) on @platformatic/kafka: partition `shard` of one topic is shard
 * `shard`'s journal. At build it checks
 * the topic (creating it when missing) and learns the broker's Fetch version through the admin
 * client that replays use; closing the layer closes it. Writers bring their own producer, closed
 * with them.
 */
import { Effect, Layer } from "effect"
import { Journal, type JournalUnavailable, writerShards } from "../journal.ts"
import {
  boundedPromise,
  closeQuietly,
  ensureJournalTopic,
  type KafkaJournalConfig,
  makeAdmin,
  unavailable,
} from "./kafka-clients.ts"
import { chooseFetchApi, replayShard } from "./kafka-replay.ts"
import { fenceTransactionalId, openKafkaWriter, transactionalIdOf } from "./kafka-writer.ts"

export type { KafkaJournalConfig } from "./kafka-clients.ts"

const makeKafkaJournal = Effect.fnUntraced(function* (config: KafkaJournalConfig) {
  const admin = yield* Effect.acquireRelease(
    Effect.sync(() => makeAdmin(config)),
    (admin) => closeQuietly(admin, config.requestTimeoutMs),
  )
  yield* ensureJournalTopic(admin, config)
  const fetchApi = yield* boundedPromise(-1, "asking the broker's API versions", config.requestTimeoutMs, async () =>
    chooseFetchApi(await admin.listApis()),
  ).pipe(Effect.mapError((failure) => unavailable(-1, "Kafka journal start", failure.cause)))
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
        return openKafkaWriter(config, shards, (shard, nextOffset) => {
          acknowledgedThrough.set(shard, Math.max(acknowledgedThrough.get(shard) ?? 0, nextOffset))
        })
      }),
    replay: (shard, fromOffset, onEntries) =>
      Effect.suspend(() => {
        checkShard(shard)
        return replayShard(
          { admin, fetchApi, config },
          shard,
          fromOffset,
          acknowledgedThrough.get(shard) ?? 0,
          onEntries,
        )
      }),
    writerIdOf: (shards) => transactionalIdOf(config, writerShards(shards)),
    fence: (writerId) => fenceTransactionalId(config, writerId),
    // The topic is the system of record and keeps its own retention (retention.ms); nothing is deleted here.
    discardBefore: () => Effect.void,
  })
})

export const layerKafka = (config: KafkaJournalConfig): Layer.Layer<Journal, JournalUnavailable> =>
  Layer.effect(Journal)(makeKafkaJournal(config))
