/**
 * Process plumbing for the local stack: where its files live, pid files, detached spawning, waiting
 * until a server answers (with a deadline) and stopping exactly the process a pid file names.
 * Servers are never found or stopped by name, so a developer's own Kafka or Redis is left alone.
 */
import { spawn } from "node:child_process"
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"

export type ServerName = "kafka" | "dynamodb" | "redis"

/** The repository root, found from this file so the scripts work from any working directory. */
export const repositoryRoot: string = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..")

/** Everything the stack writes (libraries, data, logs, pid files) sits under one gitignored directory. */
export const stackDirectory = (): string => resolve(repositoryRoot, process.env.STACK_DIR ?? ".stack")

export const ensureDirectory = (path: string): string => {
  mkdirSync(path, { recursive: true })
  return path
}

export const logsDirectory = (): string => ensureDirectory(join(stackDirectory(), "logs"))

export const pidsDirectory = (): string => ensureDirectory(join(stackDirectory(), "pids"))

const pidFilePath = (name: string): string => join(pidsDirectory(), `${name}.pid`)

/** An integer environment variable, or the fallback; a malformed value stops the script with its name. */
export const integerFromEnvironment = (variable: string, fallback: number): number => {
  const text = process.env[variable]
  if (text === undefined || text.trim() === "") return fallback
  const value = Number(text)
  if (!Number.isInteger(value) || value <= 0) throw new Error(`${variable}=${text} is not a positive integer`)
  return value
}

export const isProcessAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    // EPERM means the pid exists but belongs to someone else: alive, and not ours to signal.
    return (error as NodeJS.ErrnoException).code === "EPERM"
  }
}

/**
 * Whether the pid still runs the program we started. A pid file can outlive its process (a reboot, a
 * kill -9) and the kernel reuses pids, so the command line must still carry the marker we expect.
 */
const isOurProcess = (pid: number, commandMarker: string): boolean => {
  if (!isProcessAlive(pid)) return false
  const commandLinePath = `/proc/${pid}/cmdline`
  if (!existsSync(commandLinePath)) return true
  try {
    return readFileSync(commandLinePath, "utf8").replaceAll("\0", " ").includes(commandMarker)
  } catch {
    return false
  }
}

/** The pid a pid file names, if that process is alive and is still the program we started. */
export const runningPid = (name: string, commandMarker: string): number | undefined => {
  const path = pidFilePath(name)
  if (!existsSync(path)) return undefined
  const pid = Number(readFileSync(path, "utf8").trim())
  if (Number.isInteger(pid) && pid > 0 && isOurProcess(pid, commandMarker)) return pid
  rmSync(path, { force: true })
  return undefined
}

export interface DetachedCommand {
  readonly name: string
  readonly command: string
  readonly args: ReadonlyArray<string>
  readonly cwd: string
  /** Output of the process itself (stdout and stderr); servers with their own log files write little here. */
  readonly outputFile: string
}

/**
 * Starts a server in its own process group with its output in a file, records its pid and lets this
 * process exit without waiting for it: `stack:up` returns and the servers keep running.
 */
export const spawnDetached = (command: DetachedCommand): number => {
  const outputDescriptor = openSync(command.outputFile, "a")
  try {
    const child = spawn(command.command, [...command.args], {
      cwd: command.cwd,
      detached: true,
      stdio: ["ignore", outputDescriptor, outputDescriptor],
    })
    if (child.pid === undefined) throw new Error(`${command.name}: could not spawn ${command.command}`)
    // A spawn that fails asynchronously (ENOENT) reports here; the readiness wait then sees the dead pid.
    child.on("error", () => {})
    child.unref()
    writeFileSync(pidFilePath(command.name), `${child.pid}\n`)
    return child.pid
  } finally {
    closeSync(outputDescriptor)
  }
}

/** The last lines of a log file, for error messages that say why a server did not come up. */
export const tailOfFile = (path: string, bytesMax = 4000): string => {
  if (!existsSync(path)) return `(no ${path})`
  const size = statSync(path).size
  const descriptor = openSync(path, "r")
  try {
    const length = Math.min(size, bytesMax)
    const buffer = Buffer.alloc(length)
    readSyncFully(descriptor, buffer, size - length)
    return buffer.toString("utf8")
  } finally {
    closeSync(descriptor)
  }
}

const readSyncFully = (descriptor: number, buffer: Buffer, position: number): void => {
  let offset = 0
  while (offset < buffer.length) {
    const read = readSync(descriptor, buffer, offset, buffer.length - offset, position + offset)
    if (read === 0) break
    offset += read
  }
}

export const sleep = (durationMs: number): Promise<void> => new Promise((resume) => setTimeout(resume, durationMs))

export interface ReadinessWait {
  readonly name: string
  /** Resolves true when the server answers a real request; must not throw for "not yet". */
  readonly answers: () => Promise<boolean>
  readonly deadlineMs: number
  readonly pollIntervalMs?: number
  /** When the server's process dies, waiting stops at once instead of running into the deadline. */
  readonly pid?: number
  readonly logFile: string
}

/** One probe may not hang the wait: a server that accepts connections but never replies counts as "not yet". */
const probeTimeoutMs = 5_000

const answersWithin = (answers: () => Promise<boolean>, timeoutMs: number): Promise<boolean> => {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs)
  })
  return Promise.race([answers().catch(() => false), timeout]).finally(() => clearTimeout(timer))
}

/** Polls until the server answers; fails with the log tail if the process dies or the deadline passes. */
export const waitUntilReady = async (wait: ReadinessWait): Promise<void> => {
  const deadline = Date.now() + wait.deadlineMs
  for (;;) {
    if (await answersWithin(wait.answers, probeTimeoutMs)) return
    if (wait.pid !== undefined && !isProcessAlive(wait.pid)) {
      throw new Error(`${wait.name} exited before it answered; last log lines:\n${tailOfFile(wait.logFile)}`)
    }
    if (Date.now() >= deadline) {
      throw new Error(
        `${wait.name} did not answer within ${wait.deadlineMs} ms; last log lines:\n${tailOfFile(wait.logFile)}`,
      )
    }
    await sleep(wait.pollIntervalMs ?? 250)
  }
}

/** Signals the process a pid file names, waits for it to exit (SIGKILL after the grace period) and removes the file. */
export const stopByPidFile = async (name: string, commandMarker: string, gracePeriodMs = 15_000): Promise<boolean> => {
  const pid = runningPid(name, commandMarker)
  if (pid === undefined) return false
  signal(pid, "SIGTERM")
  const deadline = Date.now() + gracePeriodMs
  while (isProcessAlive(pid) && Date.now() < deadline) await sleep(100)
  if (isProcessAlive(pid)) {
    signal(pid, "SIGKILL")
    while (isProcessAlive(pid)) await sleep(50)
  }
  rmSync(pidFilePath(name), { force: true })
  return true
}

const signal = (pid: number, name: NodeJS.Signals): void => {
  try {
    process.kill(pid, name)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error
  }
}

/**
 * Runs a short command to completion (Maven, the storage formatter, apt-get) and returns its stdout,
 * failing with its output. Asynchronous, so the other servers keep starting while Maven resolves.
 */
export const runToCompletion = (command: string, args: ReadonlyArray<string>, cwd: string): Promise<string> =>
  new Promise((succeed, fail) => {
    const outputBytesMax = 1024 * 1024
    const child = spawn(command, [...args], { cwd, stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    // Bounded: the tail is what explains a failure.
    child.stdout.on("data", (chunk: Buffer) => {
      stdout = (stdout + chunk.toString("utf8")).slice(-outputBytesMax)
    })
    child.stderr.on("data", (chunk: Buffer) => {
      stderr = (stderr + chunk.toString("utf8")).slice(-outputBytesMax)
    })
    child.on("error", (error) => fail(new Error(`${command} could not run: ${error.message}`)))
    child.on("close", (status) => {
      if (status === 0) succeed(stdout)
      else fail(new Error(`${command} ${args.join(" ")} exited ${status}:\n${stdout}\n${stderr}`))
    })
  })

/** Whether an executable is on PATH, without running it. */
export const isOnPath = (executable: string): boolean =>
  (process.env.PATH ?? "").split(":").some((directory) => directory !== "" && existsSync(join(directory, executable)))

/**
 * Runs `work` while holding a lock file, so two `stackUp` calls in different processes (a test worker and
 * a terminal) do not start the same server twice. A lock whose holder died is taken over.
 */
export const withLockFile = async <A>(name: string, deadlineMs: number, work: () => Promise<A>): Promise<A> => {
  const path = join(pidsDirectory(), `${name}.lock`)
  const deadline = Date.now() + deadlineMs
  for (;;) {
    try {
      writeFileSync(path, `${process.pid}\n`, { flag: "wx" })
      break
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error
      const holder = Number(readFileSync(path, "utf8").trim())
      if (!Number.isInteger(holder) || holder <= 0 || !isProcessAlive(holder)) {
        rmSync(path, { force: true })
        continue
      }
      if (Date.now() >= deadline) throw new Error(`${path} is held by pid ${holder} for more than ${deadlineMs} ms`)
      await sleep(200)
    }
  }
  try {
    return await work()
  } finally {
    rmSync(path, { force: true })
  }
}
