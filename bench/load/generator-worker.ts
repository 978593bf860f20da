/**
 * A generator worker process (forked by `runLoad` with `--import tsx`), so the load never shares
 * the server's or the parent's event loop. It receives its share of the plan, opens its
 * connections, says ready, starts at the common start time, reports every second and, at the end,
 * its merged figures; then it exits.
 */
import type http from "node:http"
import { type Channel, connectionTargetOf, httpAgentOf, httpChannel, webSocketChannel } from "./channels.ts"
import { OpenLoopGenerator } from "./generator.ts"
import type { FromWorker, ToWorker, WorkerShare } from "./messages.ts"

const post = (message: FromWorker): Promise<void> =>
  new Promise((resolve) => {
    if (process.send === undefined) throw new Error("generator-worker runs only as a forked child")
    process.send(message, undefined, {}, () => resolve())
  })

const openChannels = async (
  share: WorkerShare,
  onAnswer: Parameters<typeof webSocketChannel>[2],
): Promise<{ channels: Array<Channel>; agent: http.Agent | undefined }> => {
  const { target, inFlightMaxPerConnection } = share.plan
  if (target.protocol === "http") {
    const agent = httpAgentOf(share.connections)
    const channels = Array.from({ length: share.connections }, (_, index) =>
      httpChannel(connectionTargetOf(target, index), agent, onAnswer),
    )
    return { channels, agent }
  }
  const channels = await Promise.all(
    Array.from({ length: share.connections }, (_, index) =>
      webSocketChannel(connectionTargetOf(target, index), inFlightMaxPerConnection, onAnswer),
    ),
  )
  return { channels, agent: undefined }
}

const work = async (share: WorkerShare) => {
  const generator = new OpenLoopGenerator(share, (report) => void post(report))
  const { channels, agent } = await openChannels(share, generator.onAnswer)
  const start = new Promise<number>((resolve) => {
    process.on("message", (message: ToWorker) => {
      if (message.type === "start") resolve(message.startAtEpochMs)
    })
  })
  await post({ type: "ready" })
  const startAtEpochMs = await start
  // Wall clocks agree across processes; performance.now() origins do not.
  const startPerfMs = performance.now() + (startAtEpochMs - Date.now())
  const done = await generator.run(channels, startPerfMs)
  await post(done)
  for (const channel of channels) channel.close()
  agent?.destroy()
}

process.once("message", (message: ToWorker) => {
  if (message.type !== "init") return
  work(message.share).then(
    () => process.exit(0),
    (error: unknown) =>
      post({ type: "failed", message: error instanceof Error ? error.message : String(error) }).then(() =>
        process.exit(1),
      ),
  )
})
// The parent going away ends the worker: a generator must never outlive its run.
process.on("disconnect", () => process.exit(0))
