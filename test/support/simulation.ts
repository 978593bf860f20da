/**
 * A deterministic simulation of several nodes sharing one deployment on the memory adapters: each
 * node owns some shards, deliveries between nodes cross a simulated network that drops, repeats and
 * delays (so reorders) them by a seeded random source, and nodes can crash (their unflushed work is
 * lost, as in a killed process) and restart from the shared stores. Time moves only when told
 * (`SimulatedClock`), so a seed replays the same run.
 */
import { Effect, Exit, Scope } from "effect"
import { SimulatedClock } from "../../actors/clock.ts"
import type { RuntimeLimits } from "../../actors/limits.ts"
import type { PaymentNodeHandle } from "../../actors/node.ts"
import type { Outcome } from "../../actors/processor.ts"
import type { Command } from "../../core/commands.ts"
import { commandAccount } from "../../core/commands.ts"
import { shardOf } from "../../core/ids.ts"
import type { MemoryJournalControl } from "../../persistence/memory/journal-memory.ts"
import type { MemorySnapshotControl } from "../../persistence/memory/snapshot-store-memory.ts"
import { type MemoryStores, newMemoryStores, startMemoryNode } from "./memory-node.ts"

export interface NetworkFaults {
  readonly dropRate: number
  readonly duplicateRate: number
  /** Each delivery waits a random delay up to this, so deliveries overtake one another. */
  readonly delayMsMax: number
}

export const reliableNetwork: NetworkFaults = { dropRate: 0, duplicateRate: 0, delayMsMax: 1 }

/** A small seeded generator (mulberry32): the simulation's only source of chance. */
export const seededRandom = (seed: number): (() => number) => {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let value = state
    value = Math.imul(value ^ (value >>> 15), value | 1)
    value ^= value + Math.imul(value ^ (value >>> 7), value | 61)
    return ((value ^ (value >>> 14)) >>> 0) / 4294967296
  }
}

interface SimulatedNode {
  handle: PaymentNodeHandle | undefined
  scope: Scope.Closeable | undefined
  readonly ownedShards: ReadonlyArray<number>
}

export class Simulation {
  readonly clock = new SimulatedClock()
  private readonly stores: MemoryStores = newMemoryStores()
  readonly journal: MemoryJournalControl = this.stores.journal
  readonly snapshots: MemorySnapshotControl = this.stores.snapshots
  private readonly nodes: Array<SimulatedNode>
  private readonly random: () => number
  faults: NetworkFaults
  /** Deliveries that crossed the network, dropped ones included. */
  deliveriesSent = 0

  constructor(
    private readonly limits: RuntimeLimits,
    shardsOfNodes: ReadonlyArray<ReadonlyArray<number>>,
    seed: number,
    faults: NetworkFaults,
  ) {
    this.random = seededRandom(seed)
    this.faults = faults
    this.nodes = shardsOfNodes.map((ownedShards) => ({ handle: undefined, scope: undefined, ownedShards }))
  }

  /** The node that owns the shard of a command's account. */
  private ownerOf(command: Command): number {
    const shard = shardOf(command.tenantId, commandAccount(command), this.limits.shardCount)
    return this.nodes.findIndex((node) => node.ownedShards.includes(shard))
  }

  private send(command: Command): void {
    this.deliveriesSent++
    if (this.random() < this.faults.dropRate) return
    const copies = this.random() < this.faults.duplicateRate ? 2 : 1
    for (let copy = 0; copy < copies; copy++) {
      const delayMs = Math.floor(this.random() * this.faults.delayMsMax)
      this.clock.after(delayMs, () => this.nodes[this.ownerOf(command)]?.handle?.deliver(command))
    }
  }

  async start(index: number): Promise<void> {
    const node = this.nodes[index]
    if (node === undefined || node.handle !== undefined) return
    const started = await startMemoryNode(this.stores, this.limits, {
      clock: this.clock,
      ownedShards: node.ownedShards,
      forward: (command) => this.send(command),
    })
    node.handle = started.processor
    node.scope = started.scope
  }

  /** Stops a node as a kill would: whatever it had not flushed is gone; the stores keep what was appended. */
  async crash(index: number): Promise<void> {
    const node = this.nodes[index]
    if (node?.scope === undefined) return
    const scope = node.scope
    node.handle = undefined
    node.scope = undefined
    await Effect.runPromise(Scope.close(scope, Exit.void))
  }

  isUp(index: number): boolean {
    return this.nodes[index]?.handle !== undefined
  }

  handle(index: number): PaymentNodeHandle {
    const handle = this.nodes[index]?.handle
    if (handle === undefined) throw new Error(`node ${index} is down`)
    return handle
  }

  /** Submits on the node owning the command's account and settles the deferred work; undefined if that node is down or crashed first. */
  submit(command: Command): Outcome | undefined {
    const node = this.nodes[this.ownerOf(command)]
    if (node?.handle === undefined) return undefined
    let outcome: Outcome | undefined
    node.handle.submit(command, (answer) => {
      outcome = answer
    })
    this.clock.runDeferred()
    return outcome
  }

  advance(ms: number): void {
    this.clock.advance(ms)
  }

  async stopAll(): Promise<void> {
    for (let index = 0; index < this.nodes.length; index++) await this.crash(index)
  }
}
