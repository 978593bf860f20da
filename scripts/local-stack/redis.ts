/**
 * Redis for the local stack: Debian's redis-server on loopback, without persistence (leases are
 * liveness state; losing them on a Redis restart is the failure the lease code must handle anyway).
 * On a fresh machine the package is installed with apt-get when this runs as root.
 */
import { Redis } from "ioredis"
import {
  ensureDirectory,
  isOnPath,
  runningPid,
  runToCompletion,
  spawnDetached,
  stopByPidFile,
  waitUntilReady,
} from "./process-control.ts"

export interface RedisServerOptions {
  readonly port: number
  readonly workingDirectory: string
  readonly logFile: string
  readonly readyDeadlineMs: number
  readonly log: (line: string) => void
}

const name = "redis"

/** redis-server rewrites its title to "redis-server 127.0.0.1:<port>", which keeps this marker. */
const commandMarker = "redis-server"

/** Installs redis-server from the Debian archive when it is missing and we are allowed to (root). */
const ensureRedisInstalled = async (log: (line: string) => void): Promise<void> => {
  if (isOnPath("redis-server")) return
  if (process.getuid?.() !== 0 || !isOnPath("apt-get")) {
    throw new Error("redis-server is not on PATH: run `apt-get update && apt-get install -y redis-server`")
  }
  log("redis: installing redis-server with apt-get")
  await runToCompletion("apt-get", ["update", "-qq"], "/")
  await runToCompletion("apt-get", ["install", "-y", "-qq", "redis-server"], "/")
}

/** Whether a Redis server answers PING with PONG at this URL (one attempt, no reconnects). */
export const redisAnswers = async (url: string): Promise<boolean> => {
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: 1_000,
    // A stopped (SIGSTOP) or wedged server accepts the TCP connection and never answers.
    commandTimeout: 2_000,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  })
  client.on("error", () => {})
  try {
    await client.connect()
    return (await client.ping()) === "PONG"
  } catch {
    return false
  } finally {
    client.disconnect()
  }
}

export const redisPid = (): number | undefined => runningPid(name, commandMarker)

export const startRedis = async (options: RedisServerOptions): Promise<number> => {
  await ensureRedisInstalled(options.log)
  ensureDirectory(options.workingDirectory)
  const pid = spawnDetached({
    name,
    command: "redis-server",
    // No snapshots and no append-only file; --daemonize no keeps the pid we record the server's own.
    args: [
      "--port",
      String(options.port),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      "no",
      "--daemonize",
      "no",
      "--dir",
      options.workingDirectory,
    ],
    cwd: options.workingDirectory,
    outputFile: options.logFile,
  })
  await waitUntilReady({
    name,
    answers: () => redisAnswers(`redis://127.0.0.1:${options.port}`),
    deadlineMs: options.readyDeadlineMs,
    pid,
    logFile: options.logFile,
  })
  return pid
}

export const stopRedis = (): Promise<boolean> => stopByPidFile(name, commandMarker)
