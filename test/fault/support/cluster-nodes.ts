/**
 * Nodes of a test cluster on the real local stack: each test names its own cluster (journal topic,
 * tables, lease keys, owners' group), nodes get their peer port from their index, and clients
 * retry as the contract says (same idempotency key, on any node) until a deposit is acknowledged.
 */
import { expect } from "vitest"
import { type NodeProcess, startNodeProcess } from "../../support/node-process.ts"
import { WsClient } from "../../support/ws-client.ts"

export const clusterAdminKey = "cluster-admin-key-0123"
export const clusterSecret = "cluster-peer-secret-0123"

export interface ClusterStatus {
  readonly nodes: ReadonlyArray<{ readonly nodeId: string; readonly shards: ReadonlyArray<number> }>
  readonly shards: ReadonlyArray<{ readonly shard: number; readonly owner: string | null; readonly status: string }>
}

export const startClusterNode = (
  cluster: string,
  nodeId: string,
  peerPort: number,
  options: { readonly shardCount: number; readonly tenants: string; readonly env?: Record<string, string> },
) =>
  startNodeProcess({
    MODE: "aws",
    HOST: "127.0.0.1",
    TENANTS: options.tenants,
    NODE_ID: `${cluster}-${nodeId}`,
    CLUSTER_PORT: String(peerPort),
    CLUSTER_ADVERTISE: `127.0.0.1:${peerPort}`,
    CLUSTER_SECRET: clusterSecret,
    ADMIN_API_KEY: clusterAdminKey,
    KAFKA_TOPIC: `${cluster}-journal`,
    DYNAMODB_TABLE_PREFIX: cluster,
    REDIS_KEY_PREFIX: cluster,
    SHARD_COUNT: String(options.shardCount),
    ...options.env,
  })

export const clusterStatusOf = async (node: NodeProcess): Promise<ClusterStatus> => {
  const response = await fetch(`http://127.0.0.1:${node.port}/v1/cluster`, {
    headers: { authorization: `Bearer ${clusterAdminKey}` },
  })
  return (await response.json()) as ClusterStatus
}

/** Polls `probe` until it gives a value; a probe that throws counts as not yet. */
export const eventually = async <A>(
  probe: () => Promise<A | undefined>,
  what: string,
  timeoutMs = 30_000,
): Promise<A> => {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await probe().catch(() => undefined)
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
}

/** Waits until every node reports the same map of `nodeCount` nodes with every shard serving. */
export const agreedMap = (nodes: ReadonlyArray<NodeProcess>, nodeCount: number, timeoutMs = 30_000) =>
  eventually(
    async () => {
      const statuses = await Promise.all(nodes.map(clusterStatusOf))
      const first = statuses[0] as ClusterStatus
      const serving = first.shards.every((shard) => shard.status === "serving")
      const same = statuses.every((status) => JSON.stringify(status) === JSON.stringify(first))
      return first.nodes.length === nodeCount && serving && same ? first : undefined
    },
    `the nodes to agree on a ${nodeCount}-node map`,
    timeoutMs,
  )

/**
 * A deposit of 1.00 sent until it is answered with a balance, on the nodes in turn: retried by its
 * key after UNAVAILABLE, OVERLOADED or a socket that went away; any other error fails the test.
 */
export const depositUntilAcknowledged = async (
  ports: () => ReadonlyArray<number>,
  apiKey: string,
  accountId: string,
  depositId: string,
): Promise<void> => {
  // An outage (a broker restart, a takeover) may last tens of seconds on a loaded machine: retried
  // for up to two minutes, as a partner with a patient retry policy would.
  const deadline = Date.now() + 120_000
  for (let attempt = 0; Date.now() < deadline; attempt++) {
    const port = ports()[attempt % ports().length] as number
    let code: string | undefined
    try {
      const client = await WsClient.connect(port, apiKey)
      try {
        const answer = await client.request("deposit", { accountId, depositId, amount: "1.00", currency: "EUR" })
        if (answer.ok) return
        code = answer.error?.code
      } finally {
        client.close()
      }
    } catch {
      // The node went away under the request: retried on another.
    }
    if (code !== undefined && code !== "UNAVAILABLE" && code !== "OVERLOADED")
      throw new Error(`deposit ${depositId} of ${accountId} was refused ${code}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`deposit ${depositId} of ${accountId} was never acknowledged`)
}

/**
 * Deposits 1.00 to every account, round after round, each acknowledged before the next round (see
 * `depositUntilAcknowledged`), until `stop`, which resolves with the rounds sent: every account
 * must then hold exactly that many units.
 */
export const streamDeposits = (ports: () => ReadonlyArray<number>, apiKey: string, accounts: ReadonlyArray<string>) => {
  let rounds = 0
  let streaming = true
  const stream = (async () => {
    while (streaming) {
      await Promise.all(accounts.map((accountId) => depositUntilAcknowledged(ports, apiKey, accountId, `d-${rounds}`)))
      rounds++
    }
  })()
  return {
    /** Rounds completed so far: every account's deposit acknowledged. */
    rounds: (): number => rounds,
    stop: async (): Promise<number> => {
      streaming = false
      await stream
      return rounds
    },
  }
}

/** Opens each account in EUR through the node on `port`. */
export const openAccounts = async (port: number, apiKey: string, accounts: ReadonlyArray<string>): Promise<void> => {
  const client = await WsClient.connect(port, apiKey)
  for (const accountId of accounts)
    expect((await client.request("openAccount", { accountId, currency: "EUR" })).ok).toBe(true)
  client.close()
}

/** Every account holds exactly `rounds` acknowledged one-euro deposits, read through the node on `port`. */
export const expectDepositRounds = async (
  port: number,
  apiKey: string,
  accounts: ReadonlyArray<string>,
  rounds: number,
): Promise<void> => {
  const reader = await WsClient.connect(port, apiKey)
  for (const accountId of accounts)
    expect((await reader.request("getAccount", { accountId })).account?.balance).toBe(`${rounds}.00`)
  reader.close()
}
