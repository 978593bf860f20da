/**
 * `npm run cluster:up -- --nodes 3`: a local cluster of aws-mode nodes on loopback over the local
 * stack (started if needed): node i listens for partners on 8080+i and for peers on 7400+i, all
 * in one owners' group. It runs in the foreground, printing each node's output prefixed with its
 * id; Ctrl-C sends every node SIGTERM (each drains) and exits when they have.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import { resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"
import { stackUp } from "../local-stack/stack.ts"

const { values } = parseArgs({
  options: {
    nodes: { type: "string", default: "3" },
    "shard-count": { type: "string", default: "16" },
    topic: { type: "string", default: "payments-cluster-journal" },
  },
})
const nodeCount = Number(values.nodes)
if (!Number.isInteger(nodeCount) || nodeCount < 1 || nodeCount > 16) throw new Error("--nodes must be 1 to 16")

const root = resolve(fileURLToPath(new URL("../..", import.meta.url)))
const built = spawnSync("npm", ["run", "build", "--silent"], { cwd: root, stdio: "inherit" })
if (built.status !== 0) process.exit(built.status ?? 1)

const stack = await stackUp({ log: (line) => console.log(`[local-stack] ${line}`) })
const adminApiKey = process.env.ADMIN_API_KEY ?? "local-cluster-admin-key"
const children: Array<ChildProcess> = []
for (let index = 1; index <= nodeCount; index++) {
  const nodeId = `node-${index}`
  const child = spawn(process.execPath, ["--max-semi-space-size=64", "dist/main.js"], {
    cwd: root,
    env: {
      ...process.env,
      MODE: "aws",
      HOST: "127.0.0.1",
      PORT: String(8080 + index),
      NODE_ID: nodeId,
      CLUSTER_PORT: String(7400 + index),
      CLUSTER_ADVERTISE: `127.0.0.1:${7400 + index}`,
      ADMIN_API_KEY: adminApiKey,
      TENANTS: process.env.TENANTS ?? "demo:demo-key",
      KAFKA_BROKERS: stack.kafkaBrokers,
      DYNAMODB_ENDPOINT: stack.dynamodbEndpoint,
      REDIS_URL: stack.redisUrl,
      KAFKA_TOPIC: values.topic,
      DYNAMODB_TABLE_PREFIX: values.topic,
      REDIS_KEY_PREFIX: values.topic,
      SHARD_COUNT: values["shard-count"],
    },
    stdio: ["ignore", "pipe", "pipe"],
  })
  const prefix = (chunk: Buffer) =>
    process.stdout.write(
      chunk
        .toString()
        .split("\n")
        .filter((line) => line.length > 0)
        .map((line) => `[${nodeId}] ${line}\n`)
        .join(""),
    )
  child.stdout?.on("data", prefix)
  child.stderr?.on("data", prefix)
  children.push(child)
}
console.log(
  `cluster of ${nodeCount}: partners on http://127.0.0.1:8081..${8080 + nodeCount}, ` +
    `GET /v1/cluster with "Authorization: Bearer ${adminApiKey}"`,
)
const stop = () => {
  for (const child of children) child.kill("SIGTERM")
}
process.once("SIGINT", stop)
process.once("SIGTERM", stop)
await Promise.all(children.map((child) => new Promise((done) => child.once("exit", done))))
