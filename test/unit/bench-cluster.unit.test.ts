/**
 * The cluster benchmark's pure part: which sizes a command line asks for, connections spread evenly
 * over the nodes (every node gets the same number from every worker), samples of several node
 * processes summed, the routing shares computed from a shard map, the comparison table, and the
 * scale-out's moved shards and line.
 */
import { describe, expect, it } from "vitest"
import { connectionTargetOf } from "../../bench/load/channels.ts"
import type { Target, TransferWorkload } from "../../bench/load/plan.ts"
import { splitEvenly } from "../../bench/load/run-load.ts"
import { echoTransfers } from "../../bench/load/workload.ts"
import {
  type ClusterComparisonRow,
  clusterConnectionsOf,
  formatComparison,
  formatScaleOut,
  movedShards,
  nodeCountsOf,
  routingSharesOf,
  sumGauges,
  sumNodeSamples,
} from "../../bench/runner/cluster-figures.ts"
import { budgetBetween, type NodeSample } from "../../bench/runner/node-budget.ts"

const workload: TransferWorkload = { ...echoTransfers, accounts: 2_000, shardCount: 8 }

/** A map of `shardCount` shards, shard s owned by owners[s mod owners.length], every shard serving. */
const mapOf = (shardCount: number, owners: ReadonlyArray<string>) => ({
  shards: Array.from({ length: shardCount }, (_, shard) => ({
    shard,
    owner: owners[shard % owners.length] as string,
    status: "serving",
  })),
})

const sampleOf = (overrides: Partial<NodeSample>): NodeSample => ({
  atMs: 0,
  cpuSeconds: 0,
  residentBytes: 0,
  heapUsedBytes: 0,
  journalCommits: 0,
  journalRecords: 0,
  snapshotPartWrites: 0,
  entriesInMemory: 0,
  snapshotUnsavedEntities: 0,
  ...overrides,
})

describe("the cluster sizes a command line asks for", () => {
  it("is none without --nodes or --nodes-series: the one-node run of before", () => {
    expect(nodeCountsOf({ nodes: undefined, nodesSeries: undefined, sweep: false })).toBeUndefined()
    expect(nodeCountsOf({ nodes: undefined, nodesSeries: undefined, sweep: true })).toBeUndefined()
  })

  it("is one size for --nodes, and 1..N for --nodes with --sweep", () => {
    expect(nodeCountsOf({ nodes: "3", nodesSeries: undefined, sweep: false })).toEqual([3])
    expect(nodeCountsOf({ nodes: "3", nodesSeries: undefined, sweep: true })).toEqual([1, 2, 3])
  })

  it("is the listed sizes for --nodes-series, in order", () => {
    expect(nodeCountsOf({ nodes: undefined, nodesSeries: "1,2,3", sweep: false })).toEqual([1, 2, 3])
    expect(nodeCountsOf({ nodes: undefined, nodesSeries: " 3, 1 ", sweep: false })).toEqual([3, 1])
  })

  it("refuses sizes outside 1..5, repeats and ambiguous combinations", () => {
    for (const nodes of ["0", "6", "2.5", "two", ""]) {
      expect(() => nodeCountsOf({ nodes, nodesSeries: undefined, sweep: false })).toThrow(/--nodes/)
    }
    expect(() => nodeCountsOf({ nodes: undefined, nodesSeries: "1,2,2", sweep: false })).toThrow(/repeats/)
    expect(() => nodeCountsOf({ nodes: undefined, nodesSeries: "1,,2", sweep: false })).toThrow(/--nodes-series/)
    expect(() => nodeCountsOf({ nodes: "2", nodesSeries: "1,2", sweep: false })).toThrow(/not both/)
    expect(() => nodeCountsOf({ nodes: undefined, nodesSeries: "1,2", sweep: true })).toThrow(/--sweep/)
  })
})

describe("connections over a cluster's nodes", () => {
  it("rounds the connections up to a multiple of the node count per worker", () => {
    expect(clusterConnectionsOf(8, 2, 1)).toBe(8)
    expect(clusterConnectionsOf(8, 2, 2)).toBe(8)
    expect(clusterConnectionsOf(8, 2, 3)).toBe(12)
    expect(clusterConnectionsOf(8, 2, 5)).toBe(10)
    expect(clusterConnectionsOf(1, 1, 4)).toBe(4)
  })

  it("gives every node the same number of connections from every worker", () => {
    const ports = [9001, 9002, 9003]
    const target: Target = { host: "127.0.0.1", port: 9001, apiKey: "k", protocol: "ws", ports }
    for (const [connections, workers] of [
      [8, 2],
      [5, 3],
      [16, 4],
    ] as const) {
      const shares = splitEvenly(clusterConnectionsOf(connections, workers, ports.length), workers)
      for (const share of shares) {
        const perPort = new Map<number, number>()
        for (let index = 0; index < share; index++) {
          const port = connectionTargetOf(target, index).port
          perPort.set(port, (perPort.get(port) ?? 0) + 1)
        }
        expect([...perPort.keys()].sort()).toEqual(ports)
        expect(new Set(perPort.values()).size).toBe(1)
      }
    }
  })

  it("leaves a target without ports on its one port", () => {
    const target: Target = { host: "127.0.0.1", port: 9001, apiKey: "k", protocol: "ws" }
    expect(connectionTargetOf(target, 7)).toBe(target)
  })
})

describe("a cluster's samples", () => {
  it("sums gauges by name, a name one node lacks counting as 0 there", () => {
    expect(sumGauges([{ a: 1, b: 2 }, { a: 3 }, {}])).toEqual({ a: 4, b: 2 })
  })

  it("sums CPU, memory and counters, at the earliest time, so a budget covers every node", () => {
    const before = sumNodeSamples([
      sampleOf({ atMs: 100, cpuSeconds: 1, journalRecords: 10 }),
      sampleOf({ atMs: 99, cpuSeconds: 2, journalRecords: 20 }),
    ])
    const after = sumNodeSamples([
      sampleOf({ atMs: 1100, cpuSeconds: 1.5, journalRecords: 110, residentBytes: 5 }),
      sampleOf({ atMs: 1099, cpuSeconds: 2.5, journalRecords: 120, residentBytes: 7 }),
    ])
    expect(before.atMs).toBe(99)
    expect(after.residentBytes).toBe(12)
    const budget = budgetBetween(before, after, 1_000)
    expect(budget.cpuMicrosPerTransfer).toBeCloseTo(1_000)
    expect(budget.cpuCores).toBeCloseTo(1)
    expect(budget.journalRecordsPerTransfer).toBeCloseTo(0.2)
  })

  it("refuses to sum no sample at all", () => {
    expect(() => sumNodeSamples([])).toThrow(/assertion/)
  })
})

describe("the routing shares of a workload on a map", () => {
  it("are none on one node", () => {
    expect(routingSharesOf(mapOf(8, ["a"]), ["a"], workload, 10_000)).toEqual({ forwarded: 0, crossNode: 0 })
  })

  it("forward the requests that arrive at the node that owns nothing", () => {
    const shares = routingSharesOf(mapOf(8, ["a"]), ["a", "b"], workload, 10_000)
    expect(shares.forwarded).toBe(0.5)
    expect(shares.crossNode).toBe(0)
  })

  it("are about (N - 1)/N on a balanced map with the load spread evenly", () => {
    const owners = ["a", "b", "c"]
    const shares = routingSharesOf(mapOf(workload.shardCount, owners), owners, workload, 30_000)
    expect(shares.forwarded).toBeGreaterThan(0.64)
    expect(shares.forwarded).toBeLessThan(0.69)
    // Accounts fall unevenly on 8 shards split 3-3-2, so the cross-node share is near, not at, 2/3.
    expect(shares.crossNode).toBeGreaterThan(0.6)
    expect(shares.crossNode).toBeLessThan(0.7)
  })

  it("refuses a map of another shard count than the workload's", () => {
    expect(() => routingSharesOf(mapOf(4, ["a"]), ["a"], workload, 10)).toThrow(/assertion/)
  })
})

describe("the comparison table", () => {
  it("prints one row per size under aligned headers", () => {
    const row = (nodeCount: number, cpuMicrosPerTransfer: number): ClusterComparisonRow => ({
      nodeCount,
      connections: 8,
      result: {
        offeredRate: 1000,
        achievedRate: 999.6,
        latencyMs: { p50: 1.234, p90: 2, p99: 5.678, p999: 9.9, max: 20, mean: 1.5 },
        errorsByCode: { UNAVAILABLE: 2, OVERLOADED: 1 },
      },
      budget: {
        ...budgetBetween(sampleOf({}), sampleOf({ atMs: 1000, cpuSeconds: cpuMicrosPerTransfer / 1000 }), 1000),
      },
      routing: { forwarded: (nodeCount - 1) / nodeCount, crossNode: 0.25 },
    })
    const lines = formatComparison([row(1, 80), row(3, 120.04)]).split("\n")
    expect(lines).toHaveLength(3)
    expect(lines[0]).toMatch(/nodes.*offered\/s.*p99 ms.*CPU µs\/transfer.*forwarded.*cross-node/)
    expect(lines[2]).toMatch(/^\s+3\s+8\s+1000\s+1000\s+1\.23\s+5\.68\s+9\.90\s+3\s+120\.0\s+0\.12\s+66\.7%\s+25\.0%$/)
    expect(new Set(lines.map((line) => line.length)).size).toBe(1)
  })
})

describe("a scale-out's figures", () => {
  const mapOf = (owners: ReadonlyArray<string | null>) => ({
    shards: owners.map((owner, shard) => ({ shard, owner, status: "serving" })),
  })

  it("counts as moved exactly the shards whose owner changed, an unassigned one included", () => {
    expect(movedShards(mapOf(["a", "b", "a", null]), mapOf(["a", "c", "c", "b"]))).toEqual([1, 2, 3])
    expect(movedShards(mapOf(["a", "b"]), mapOf(["a", "b"]))).toEqual([])
  })

  it("names what moved against its bound and each node's pause, a node without a hand-off as none", () => {
    const line = formatScaleOut({
      nodeCountBefore: 3,
      addedNodeId: "n-4",
      agreedMs: 2_345,
      moved: [1, 5],
      movedMax: 3,
      handOffs: [
        { nodeId: "n-1", lastMs: 412.4, count: 1 },
        { nodeId: "n-4", lastMs: Number.NaN, count: 0 },
      ],
      result: undefined as never,
    })
    expect(line).toContain("3 -> 4 (n-4): 2 shards moved (bound 3: 1, 5)")
    expect(line).toContain("map agreed 2.3 s after the spawn")
    expect(line).toContain("n-1 412 ms, n-4 none")
  })
})
