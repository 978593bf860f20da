/**
 * The pure part of a cluster benchmark (`npm run bench -- --nodes 3` or `--nodes-series 1,2,3`):
 * which cluster sizes a run measures, how many connections spread evenly over the nodes, the
 * samples of several node processes summed into one, the share of requests that cross a peer link
 * (computed from the agreed shard map and the workload's own picker, since the node counts no
 * forwards), and the comparison table. No I/O, so the unit tests check it without a cluster.
 */
import { type AccountId, shardOf } from "../../core/ids.ts"
import type { ClusterStatus } from "../../test/fault/support/cluster-nodes.ts"
import type { LoadResult, PaymentTraffic } from "../load/plan.ts"
import { accountIdOf, benchTenantId, seededRandom, transferPickerOf } from "../load/workload.ts"
import { fixed, type NodeBudget, type NodeSample } from "./node-budget.ts"

/** The most nodes a run starts on this machine: each is a process of its own beside the stack's. */
export const clusterNodesMax = 5

/** What the command line asked for; `nodes` and `nodesSeries` are the raw flag texts. */
export interface ClusterArguments {
  readonly nodes: string | undefined
  readonly nodesSeries: string | undefined
  readonly sweep: boolean
}

const nodeCountOf = (text: string, flag: string): number => {
  const count = Number(text.trim())
  if (!(Number.isInteger(count) && count >= 1 && count <= clusterNodesMax)) {
    throw new Error(`${flag} takes node counts from 1 to ${clusterNodesMax}, not "${text}"`)
  }
  return count
}

/**
 * The cluster sizes to measure, in order, or undefined for a run against one node outside a
 * cluster (neither flag: the runner behaves as it always has). `--nodes N --sweep` is the series
 * 1..N at one rate: with a cluster, the sweep is over the node count, not the rate.
 */
export const nodeCountsOf = (options: ClusterArguments): ReadonlyArray<number> | undefined => {
  if (options.nodesSeries !== undefined) {
    if (options.nodes !== undefined) throw new Error("give --nodes or --nodes-series, not both")
    if (options.sweep) throw new Error("--nodes-series already runs one rate per cluster size: drop --sweep")
    const counts = options.nodesSeries.split(",").map((item) => nodeCountOf(item, "--nodes-series"))
    if (new Set(counts).size !== counts.length) throw new Error(`--nodes-series repeats a size: ${options.nodesSeries}`)
    return counts
  }
  if (options.nodes === undefined) return undefined
  const count = nodeCountOf(options.nodes, "--nodes")
  return options.sweep ? Array.from({ length: count }, (_, index) => index + 1) : [count]
}

/**
 * The connections of a run against `nodeCount` nodes: the scenario's, rounded up so that every
 * worker holds a multiple of `nodeCount` of them. A worker sends on its connections in turn and
 * connection j goes to node j mod N, so every node then receives the same share of the requests.
 */
export const clusterConnectionsOf = (connections: number, workers: number, nodeCount: number): number => {
  for (const [name, value] of Object.entries({ connections, workers, nodeCount })) {
    if (!(Number.isInteger(value) && value > 0)) throw new Error(`assertion: ${name} ${value}`)
  }
  const perWorker = Math.ceil(connections / workers / nodeCount) * nodeCount
  return perWorker * workers
}

/** Gauges of several nodes added name by name; a name one node lacks counts as 0 there. */
export const sumGauges = (gaugesByNode: ReadonlyArray<Readonly<Record<string, number>>>): Record<string, number> => {
  const sums: Record<string, number> = {}
  for (const gauges of gaugesByNode) {
    for (const [name, value] of Object.entries(gauges)) sums[name] = (sums[name] ?? 0) + value
  }
  return sums
}

/**
 * One sample of a whole cluster: CPU, memory, counters and gauges summed over its node processes,
 * taken at the earliest of their times (they are read together, well within a millisecond).
 */
export const sumNodeSamples = (samples: ReadonlyArray<NodeSample>): NodeSample => {
  if (samples.length === 0) throw new Error("assertion: a cluster sample sums at least one node")
  const sum = (pick: (sample: NodeSample) => number) => samples.reduce((total, sample) => total + pick(sample), 0)
  return {
    atMs: Math.min(...samples.map((sample) => sample.atMs)),
    cpuSeconds: sum((sample) => sample.cpuSeconds),
    residentBytes: sum((sample) => sample.residentBytes),
    heapUsedBytes: sum((sample) => sample.heapUsedBytes),
    journalCommits: sum((sample) => sample.journalCommits),
    journalRecords: sum((sample) => sample.journalRecords),
    snapshotPartWrites: sum((sample) => sample.snapshotPartWrites),
    entriesInMemory: sum((sample) => sample.entriesInMemory),
    snapshotUnsavedEntities: sum((sample) => sample.snapshotUnsavedEntities),
  }
}

/** Of the payments a run sends, the shares that travel over a peer link. */
export interface RoutingShares {
  /** The node the request arrived at does not own the debtor's shard: it forwards the request to the owner. */
  readonly forwarded: number
  /** Debtor and creditor have different owners: the credit is a saga step over a peer link. */
  readonly crossNode: number
}

/** Payments drawn to estimate the shares: the estimate's standard error is under 0.2 points. */
export const routingSamplesDefault = 100_000

/**
 * The routing shares of a workload on a map, from the workload's own picker: payment k arrives at
 * `entryNodeIds[k mod N]` (the connections' spread, node by node in port order) and goes to the
 * owner of its debtor's shard, as the node routes it. With the load spread evenly the forwarded
 * share is (N - 1) / N whatever the map; the cross-node share depends on the map and the accounts.
 */
export const routingSharesOf = (
  map: Pick<ClusterStatus, "shards">,
  entryNodeIds: ReadonlyArray<string>,
  traffic: PaymentTraffic,
  samples: number = routingSamplesDefault,
): RoutingShares => {
  if (map.shards.length !== traffic.shardCount) {
    throw new Error(`assertion: the map has ${map.shards.length} shards, the workload ${traffic.shardCount}`)
  }
  if (entryNodeIds.length === 0) throw new Error("assertion: requests arrive at one node at least")
  if (!(Number.isInteger(samples) && samples > 0)) throw new Error(`assertion: samples ${samples}`)
  const ownerByShard = new Map(map.shards.map((shard) => [shard.shard, shard.owner]))
  const ownerOf = (account: number) =>
    ownerByShard.get(shardOf(benchTenantId, accountIdOf(account) as AccountId, traffic.shardCount)) ?? null
  const picker = transferPickerOf(traffic, seededRandom(0x0c1a5e))
  let forwarded = 0
  let crossNode = 0
  for (let index = 0; index < samples; index++) {
    const { from, to } = picker.next()
    const debtorOwner = ownerOf(from)
    if (debtorOwner !== entryNodeIds[index % entryNodeIds.length]) forwarded++
    if (debtorOwner !== ownerOf(to)) crossNode++
  }
  return { forwarded: forwarded / samples, crossNode: crossNode / samples }
}

/** One cluster size's run in the comparison. */
export interface ClusterComparisonRow {
  readonly nodeCount: number
  readonly connections: number
  readonly result: Pick<LoadResult, "offeredRate" | "achievedRate" | "latencyMs" | "errorsByCode">
  /** Summed over every node process. */
  readonly budget: NodeBudget
  readonly routing: RoutingShares
}

const percent = (share: number): string => `${(share * 100).toFixed(1)}%`

const errorCount = (errorsByCode: Readonly<Record<string, number>>): number =>
  Object.values(errorsByCode).reduce((total, count) => total + count, 0)

export const comparisonHeaders = [
  "nodes",
  "conns",
  "offered/s",
  "achieved/s",
  "p50 ms",
  "p99 ms",
  "p99.9 ms",
  "errors",
  "CPU µs/transfer",
  "CPU cores",
  "forwarded",
  "cross-node",
]

/** The cells of one row, in the order of `comparisonHeaders`. */
export const comparisonCells = (row: ClusterComparisonRow): ReadonlyArray<string> => [
  String(row.nodeCount),
  String(row.connections),
  String(Math.round(row.result.offeredRate)),
  String(Math.round(row.result.achievedRate)),
  row.result.latencyMs.p50.toFixed(2),
  row.result.latencyMs.p99.toFixed(2),
  row.result.latencyMs.p999.toFixed(2),
  String(errorCount(row.result.errorsByCode)),
  fixed(row.budget.cpuMicrosPerTransfer, 1),
  fixed(row.budget.cpuCores, 2),
  percent(row.routing.forwarded),
  percent(row.routing.crossNode),
]

/** The comparison as a plain-text table, columns right-aligned to their widest cell. */
export const formatComparison = (rows: ReadonlyArray<ClusterComparisonRow>): string => {
  const lines = [comparisonHeaders, ...rows.map(comparisonCells)]
  const widths = comparisonHeaders.map((_, column) => Math.max(...lines.map((cells) => (cells[column] ?? "").length)))
  return lines.map((cells) => cells.map((text, column) => text.padStart(widths[column] ?? 0)).join("  ")).join("\n")
}

/** A takeover under load: one node SIGKILLed, the survivors timed until they serve every shard. */
export interface TakeoverFigures {
  readonly nodeCount: number
  readonly killedNodeId: string
  /** From the signal to the survivors' agreed map with every shard serving; null when it did not come in time. */
  readonly takeoverMs: number | null
  /** The load from the kill on, at the run's rate, over every node's connections (the killed one's close). */
  readonly result: LoadResult
}

/** A node added under load: what moved, how long the map took, each node's hand-off pause. */
export interface ScaleOutFigures {
  readonly nodeCountBefore: number
  readonly addedNodeId: string
  readonly agreedMs: number
  /** Shards whose owner changed, and the bound the assignor promises: ceil(S/N)+1, N after the add. */
  readonly moved: ReadonlyArray<number>
  readonly movedMax: number
  readonly handOffs: ReadonlyArray<{ readonly nodeId: string; readonly lastMs: number; readonly count: number }>
  /** The load from the add on, at the run's rate. */
  readonly result: LoadResult
}

/** The shards whose owner differs between two maps, in shard order. */
export const movedShards = (
  before: { readonly shards: ReadonlyArray<{ readonly shard: number; readonly owner: string | null }> },
  after: { readonly shards: ReadonlyArray<{ readonly shard: number; readonly owner: string | null }> },
): Array<number> => {
  const owners = new Map(before.shards.map((entry) => [entry.shard, entry.owner]))
  return after.shards.filter((entry) => owners.get(entry.shard) !== entry.owner).map((entry) => entry.shard)
}

export const formatScaleOut = (figures: ScaleOutFigures): string => {
  const pauses = figures.handOffs
    .map((node) =>
      node.count === 0 || Number.isNaN(node.lastMs)
        ? `${node.nodeId} none`
        : `${node.nodeId} ${Math.round(node.lastMs)} ms`,
    )
    .join(", ")
  return (
    `scale-out ${figures.nodeCountBefore} -> ${figures.nodeCountBefore + 1} (${figures.addedNodeId}): ` +
    `${figures.moved.length} shards moved (bound ${figures.movedMax}: ${figures.moved.join(", ")}), ` +
    `map agreed ${(figures.agreedMs / 1000).toFixed(1)} s after the spawn; ` +
    `latest hand-off pause per node (new assignment until its shards serve): ${pauses}`
  )
}
