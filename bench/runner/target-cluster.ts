/**
 * The system under test as a cluster: N aws-mode nodes on loopback in one owners' group on the
 * local stack, each started the way the fault tests start theirs (`startClusterNode`), under a
 * name unique to the run (journal topic, tables, key prefix, group, node ids), so runs never meet.
 * It is measured as one target: CPU, memory and counters summed over every node process, the
 * snapshot backlog waited for on every node. One node can be killed to time the takeover, and one
 * added to time the hand-off.
 */
import { randomBytes } from "node:crypto"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { agreedMap, type ClusterStatus, startClusterNode } from "../../test/fault/support/cluster-nodes.ts"
import { freePort, type NodeProcess } from "../../test/support/node-process.ts"
import { clusterNodesMax, sumGauges, sumNodeSamples } from "./cluster-figures.ts"
import {
  awsStorageEnvironmentOf,
  benchTenants,
  nodeSettingsFromEnvironment,
  type TargetNode,
  targetNodeOf,
} from "./target-node.ts"

export interface TargetCluster extends TargetNode {
  /** Prefix of the cluster's topic, tables, keys and node ids. */
  readonly name: string
  /** The nodes' ids and partner ports, node by node in the same order. */
  readonly nodeIds: ReadonlyArray<string>
  readonly ports: ReadonlyArray<number>
  /** The map every node agreed on once all had started, and how long that took from the first start. */
  readonly map: ClusterStatus
  readonly formedMs: number
  /** Waits until every live node reports one map of the live nodes with every shard serving. */
  readonly agreedMap: (timeoutMs: number) => Promise<ClusterStatus>
  /**
   * SIGKILLs node `index` and resolves with the milliseconds from the signal until the survivors
   * report one map without it, every shard serving (polled every 200 ms), or null when they have
   * not after `timeoutMs`. The cluster's samples cover every node, so none may be taken after a kill.
   */
  readonly killAndTimeTakeover: (index: number, timeoutMs: number) => Promise<number | null>
  /**
   * Starts one more node and waits for the map of every live node with every shard serving; then
   * reads each node's latest hand-off from its `/metrics`. Rejects when the map does not come in time.
   */
  readonly addNodeAndTimeHandOff: (timeoutMs: number) => Promise<ScaleOut>
}

export interface ScaleOut {
  readonly addedNodeId: string
  /** From the new node's spawn until every node agreed on the map with it, every shard serving. */
  readonly agreedMs: number
  readonly before: ClusterStatus
  readonly after: ClusterStatus
  /** Per node, in start order: its latest hand-off (NaN if it had none) and how many it made. */
  readonly handOffs: ReadonlyArray<{ readonly nodeId: string; readonly lastMs: number; readonly count: number }>
}

/** From the first node's start until every node agrees: the joins, one rebalance and the recoveries. */
const formingTimeoutMs = 120_000
/** A node drains in 2 s and leaves the group; one that takes longer than this is killed. */
const stopGraceMs = 30_000

interface Member {
  readonly nodeId: string
  readonly node: NodeProcess
  readonly view: TargetNode
  readonly dataDir: string
  alive: boolean
}

/** `count` distinct free loopback ports for the nodes' peer listeners. */
const distinctFreePorts = async (count: number): Promise<Array<number>> => {
  const ports = new Set<number>()
  // A free port can be offered twice in a row; a bounded number of asks covers that.
  for (let attempt = 0; ports.size < count && attempt < count * 10; attempt++) ports.add(await freePort())
  if (ports.size < count) throw new Error(`found ${ports.size} free ports, not ${count}`)
  return [...ports]
}

/** SIGTERM (the node drains and leaves the group), SIGKILL after the grace, then its data directory goes. */
const stopMember = async (member: Member): Promise<void> => {
  let timer: NodeJS.Timeout | undefined
  const graceOver = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, stopGraceMs)
  })
  await Promise.race([member.node.kill("SIGTERM"), graceOver])
  clearTimeout(timer)
  await member.node.kill("SIGKILL")
  member.alive = false
  rmSync(member.dataDir, { recursive: true, force: true })
}

/** Node `index` of the cluster `name` on the stack's storage; its data directory goes if it fails to start. */
const startMember = async (
  name: string,
  index: number,
  peerPort: number,
  shardCount: number,
  storage: Record<string, string>,
): Promise<Member> => {
  const localId = `node-${index + 1}`
  const dataDir = mkdtempSync(join(tmpdir(), "bench-cluster-node-"))
  const env = { ...storage, DATA_DIR: dataDir, ...nodeSettingsFromEnvironment() }
  const node = await startClusterNode(name, localId, peerPort, { shardCount, tenants: benchTenants, env }).catch(
    (error: unknown) => {
      rmSync(dataDir, { recursive: true, force: true })
      throw error
    },
  )
  return { nodeId: `${name}-${localId}`, node, view: targetNodeOf(node, dataDir), dataDir, alive: true }
}

/** Starts every node at once (so they form the group in one rebalance); a failed start stops the others. */
const startMembers = async (
  name: string,
  nodeCount: number,
  shardCount: number,
  storage: Record<string, string>,
): Promise<Array<Member>> => {
  const peerPorts = await distinctFreePorts(nodeCount)
  const starts = await Promise.allSettled(
    peerPorts.map((peerPort, index) => startMember(name, index, peerPort, shardCount, storage)),
  )
  const members = starts.flatMap((start) => (start.status === "fulfilled" ? [start.value] : []))
  const failed = starts.find((start) => start.status === "rejected")
  if (failed === undefined) return members
  await Promise.all(members.map(stopMember))
  throw failed.reason
}

export const startTargetCluster = async (options: {
  readonly nodeCount: number
  readonly shardCount: number
}): Promise<TargetCluster> => {
  const { nodeCount, shardCount } = options
  if (!(Number.isInteger(nodeCount) && nodeCount >= 1 && nodeCount <= clusterNodesMax)) {
    throw new Error(`a cluster has 1 to ${clusterNodesMax} nodes, not ${nodeCount}`)
  }
  const name = `bench${Date.now().toString(36)}${randomBytes(2).toString("hex")}`
  const startedAtMs = performance.now()
  const storage = await awsStorageEnvironmentOf(name)
  const members = await startMembers(name, nodeCount, shardCount, storage)
  const live = () => members.filter((member) => member.alive)
  const agreed = (timeoutMs: number) =>
    agreedMap(
      live().map((member) => member.node),
      live().length,
      timeoutMs,
    )
  let map: ClusterStatus
  try {
    map = await agreed(formingTimeoutMs)
  } catch (error) {
    await Promise.all(members.map(stopMember))
    throw error
  }
  const formedMs = performance.now() - startedAtMs
  const first = members[0] as Member
  return {
    name,
    nodeIds: members.map((member) => member.nodeId),
    ports: members.map((member) => member.node.port),
    map,
    formedMs,
    port: first.view.port,
    apiKey: first.view.apiKey,
    metrics: async () => sumGauges(await Promise.all(live().map((member) => member.view.metrics()))),
    snapshotsCaughtUp: async (timeoutMs) =>
      (await Promise.all(live().map((member) => member.view.snapshotsCaughtUp(timeoutMs)))).every(Boolean),
    residentBytes: () => live().reduce((total, member) => total + member.view.residentBytes(), 0),
    sample: async () => {
      // Summed over every node: after a kill the sums would fall back and no budget would hold.
      if (live().length !== members.length)
        throw new Error("assertion: a cluster is sampled only while all its nodes run")
      return sumNodeSamples(await Promise.all(members.map((member) => member.view.sample())))
    },
    agreedMap: agreed,
    killAndTimeTakeover: async (index, timeoutMs) => {
      const member = members[index]
      if (member === undefined || !member.alive) throw new Error(`assertion: node ${index} is not running`)
      if (live().length < 2) throw new Error("assertion: a takeover needs a survivor")
      const killedAtMs = performance.now()
      await member.node.kill("SIGKILL")
      member.alive = false
      // The poll swallows a node's failed answers, so only the deadline makes it reject.
      return agreed(timeoutMs).then(
        () => performance.now() - killedAtMs,
        () => null,
      )
    },
    addNodeAndTimeHandOff: async (timeoutMs) => {
      if (members.length >= clusterNodesMax) throw new Error(`a cluster has at most ${clusterNodesMax} nodes`)
      const before = await agreed(timeoutMs)
      const used = new Set(members.map((member) => member.node.port))
      const [peerPort] = (await distinctFreePorts(used.size + 1)).filter((port) => !used.has(port))
      if (peerPort === undefined) throw new Error("no free port for the added node")
      const spawnedAtMs = performance.now()
      const added = await startMember(name, members.length, peerPort, shardCount, storage)
      members.push(added)
      const after = await agreed(timeoutMs)
      const agreedMs = performance.now() - spawnedAtMs
      const handOffs = await Promise.all(
        live().map(async (member) => {
          const gauges = await member.view.metrics()
          return {
            nodeId: member.nodeId,
            lastMs: (gauges.payments_handoff_last_seconds ?? Number.NaN) * 1000,
            count: gauges.payments_handoff_duration_seconds_count ?? 0,
          }
        }),
      )
      return { addedNodeId: added.nodeId, agreedMs, before, after, handOffs }
    },
    stop: async () => {
      await Promise.all(members.map(stopMember))
    },
  }
}
