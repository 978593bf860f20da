/**
 * Starts the echo baseline (echo-server.ts) as a process of its own, so it does not share an event
 * loop with the load generator or the benchmark's orchestration, and stops it.
 */
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("../..", import.meta.url))
const serverPath = fileURLToPath(new URL("./echo-server.ts", import.meta.url))

/** The API key of the echo server's tenant when the caller does not name tenants. */
export const echoApiKey = "bench-echo-key"

export interface EchoServer {
  readonly port: number
  /** The key the load generator must present at the upgrade. */
  readonly apiKey: string
  readonly stop: () => Promise<void>
}

export interface EchoServerOptions {
  /** `tenantId:apiKey` pairs as in the node's TENANTS; default `bench:<echoApiKey>`. */
  readonly tenants?: string
  readonly readyTimeoutMs?: number
  /** Node flags for the server process, e.g. `--cpu-prof --cpu-prof-dir=<dir>` (written when it stops). */
  readonly nodeArguments?: ReadonlyArray<string>
}

export const startEchoServer = (options: EchoServerOptions = {}): Promise<EchoServer> => {
  const tenants = options.tenants ?? `bench:${echoApiKey}`
  const apiKey = tenants.split(",")[0]?.split(":").slice(1).join(":") ?? echoApiKey
  const child = spawn(
    process.execPath,
    [...(options.nodeArguments ?? []), "--import", "tsx", serverPath, "--port", "0"],
    {
      cwd: root,
      env: { ...process.env, MODE: "embedded", TENANTS: tenants },
      stdio: ["ignore", "pipe", "pipe"],
    },
  )
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM")
    await exited
  }
  let output = ""
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void stop()
      reject(new Error(`echo server not listening after ${options.readyTimeoutMs ?? 30_000} ms:\n${output}`))
    }, options.readyTimeoutMs ?? 30_000)
    const onData = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-10_000)
      const match = /^listening (\d+)$/m.exec(output)
      if (match?.[1] === undefined) return
      clearTimeout(timer)
      child.stdout?.off("data", onData)
      resolve({ port: Number(match[1]), apiKey, stop })
    }
    child.stdout?.on("data", onData)
    child.stderr?.on("data", (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-10_000)
    })
    child.once("exit", (code) => {
      clearTimeout(timer)
      reject(new Error(`echo server exited with ${code}:\n${output}`))
    })
  })
}
