/**
 * Runs the product as a real process (the same compiled entry point as `npm start`) for
 * end-to-end and crash tests: on a free loopback port, with its own data directory, killable with
 * any signal. The sources are compiled once per test run first, so no stale build is run.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import { createServer } from "node:net"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("../..", import.meta.url))

let built = process.env.PAYMENTS_TEST_BUILD_DONE === "1"

/**
 * Compiles the product to dist/ (what `npm start` runs), once. Under vitest the global setup does it
 * before any worker starts and marks it done in the environment: a worker compiling while another
 * worker's node loads dist/ would hand that node half-written modules.
 */
export const ensureBuilt = (): void => {
  if (built) return
  const result = spawnSync(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "tsconfig.build.json"], {
    cwd: root,
    encoding: "utf8",
  })
  if (result.status !== 0) throw new Error(`building the node failed:\n${result.stdout}${result.stderr}`)
  built = true
  process.env.PAYMENTS_TEST_BUILD_DONE = "1"
}

/** The arguments that run the compiled node, as `npm start` does (package.json). */
export const nodeEntryArguments: ReadonlyArray<string> = ["--max-semi-space-size=64", "dist/main.js"]

export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() =>
        typeof address === "object" && address !== null ? resolve(address.port) : reject(new Error("no port")),
      )
    })
  })

/**
 * The environment a node under test starts from: this process's, without what the test runner adds
 * to it (vitest sets MODE=test and NODE_ENV=test, which would misconfigure the node and change
 * client libraries' defaults), on loopback.
 */
export const nodeEnvironment = (): Record<string, string | undefined> => ({
  ...process.env,
  MODE: "embedded",
  NODE_ENV: "production",
  HOST: "127.0.0.1",
})

export interface NodeProcess {
  readonly port: number
  readonly child: ChildProcess
  /** Everything the process wrote, for the failure message of a test. */
  readonly output: () => string
  readonly kill: (signal?: NodeJS.Signals) => Promise<void>
}

/** Nodes started by this process and still running. */
const running = new Set<ChildProcess>()

/**
 * Kills every node still running. A test that fails before it stops its node would leave it
 * running after the test file ends, taking CPU from every later test and benchmark: the test
 * setup (`test/support/stop-nodes.ts`) calls this after each file.
 */
export const killRunningNodes = async (): Promise<void> => {
  const children = [...running]
  await Promise.all(
    children.map(
      (child) =>
        new Promise<void>((resolve) => {
          child.once("exit", () => resolve())
          if (!child.kill("SIGKILL")) resolve()
        }),
    ),
  )
}

/** `nodeArguments` go before the entry point, e.g. `--cpu-prof` for a benchmark's profile. */
export const startNodeProcess = async (
  env: Record<string, string>,
  readyTimeoutMs = 60_000,
  nodeArguments: ReadonlyArray<string> = [],
): Promise<NodeProcess> => {
  ensureBuilt()
  const port = await freePort()
  const child = spawn(process.execPath, [...nodeArguments, ...nodeEntryArguments], {
    cwd: root,
    env: { ...nodeEnvironment(), ...env, PORT: String(port) },
    stdio: ["ignore", "pipe", "pipe"],
  })
  let output = ""
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-20_000)
  }
  child.stdout?.on("data", keep)
  child.stderr?.on("data", keep)
  running.add(child)
  const exited = new Promise<void>((resolve) =>
    child.once("exit", () => {
      running.delete(child)
      resolve()
    }),
  )
  const kill = async (signal: NodeJS.Signals = "SIGKILL") => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal)
    await exited
  }
  const deadline = Date.now() + readyTimeoutMs
  for (;;) {
    if (child.exitCode !== null) throw new Error(`node exited with ${child.exitCode}:\n${output}`)
    const ready = await fetch(`http://127.0.0.1:${port}/readyz`).then(
      (response) => response.status === 200,
      () => false,
    )
    if (ready) break
    if (Date.now() > deadline) {
      await kill()
      throw new Error(`node not ready in ${readyTimeoutMs} ms:\n${output}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return { port, child, output: () => output, kill }
}
