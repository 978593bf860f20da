/**
 * The DynamoDB-API server of the local stack: dynalite (MIT, LevelDB-backed) run as its own Node
 * process with a persistent data directory, so the tables survive restarts of the node under test.
 * DynamoDB Local is not used: its licence is AWS's own terms, which this workplace does not accept.
 * dynalite has no TransactWriteItems; the snapshot adapter is designed to need only single-item
 * conditional writes, so that gap is harmless here.
 */
import { createRequire } from "node:module"
import { dirname, join } from "node:path"
import { DynamoDBClient, ListTablesCommand } from "@aws-sdk/client-dynamodb"
import {
  ensureDirectory,
  repositoryRoot,
  runningPid,
  spawnDetached,
  stopByPidFile,
  waitUntilReady,
} from "./process-control.ts"

export interface DynamodbServerOptions {
  readonly port: number
  readonly dataDirectory: string
  readonly logFile: string
  readonly readyDeadlineMs: number
}

const name = "dynamodb"

/** dynalite's cli path is on the process's command line, which tells our server from a reused pid. */
const cliPath = (): string =>
  join(dirname(createRequire(join(repositoryRoot, "package.json")).resolve("dynalite/package.json")), "cli.js")

const commandMarker = "dynalite"

/** Any static credentials work against a local server; the SDK only needs some to sign requests. */
export const localDynamodbClient = (endpoint: string): DynamoDBClient =>
  new DynamoDBClient({
    endpoint,
    region: "us-east-1",
    credentials: { accessKeyId: "local", secretAccessKey: "local" },
    maxAttempts: 1,
  })

/** Whether a DynamoDB-API server answers ListTables at this endpoint. */
export const dynamodbAnswers = async (endpoint: string): Promise<boolean> => {
  const client = localDynamodbClient(endpoint)
  try {
    await client.send(new ListTablesCommand({ Limit: 1 }), { abortSignal: AbortSignal.timeout(2_000) })
    return true
  } catch {
    return false
  } finally {
    client.destroy()
  }
}

export const dynamodbPid = (): number | undefined => runningPid(name, commandMarker)

export const startDynamodb = async (options: DynamodbServerOptions): Promise<number> => {
  ensureDirectory(options.dataDirectory)
  const pid = spawnDetached({
    name,
    command: process.execPath,
    args: [cliPath(), "--port", String(options.port), "--host", "127.0.0.1", "--path", options.dataDirectory],
    cwd: repositoryRoot,
    outputFile: options.logFile,
  })
  await waitUntilReady({
    name,
    answers: () => dynamodbAnswers(`http://127.0.0.1:${options.port}`),
    deadlineMs: options.readyDeadlineMs,
    pid,
    logFile: options.logFile,
  })
  return pid
}

export const stopDynamodb = (): Promise<boolean> => stopByPidFile(name, commandMarker)
