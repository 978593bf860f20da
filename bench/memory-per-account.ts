/**
 * Heap per idle account: opens N funded accounts in a real node (the runtime on the embedded LMDB
 * persistence, in this process so the heap can be read after a full collection), waits until the
 * snapshots have saved them (nothing left dirty), and reports the heap growth per account. The
 * resident-memory view of the same thing is the `large-population` scenario of `npm run bench`.
 *
 *   node --expose-gc --import tsx bench/memory-per-account.ts [--accounts 1000000] [--funded]
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { parseArgs } from "node:util"
import { Effect, Exit, Layer, Scope } from "effect"
import { defaultRuntimeLimits } from "../actors/limits.ts"
import { makePaymentNode } from "../actors/node.ts"
import type { Processor } from "../actors/processor.ts"
import { layerLmdb } from "../persistence/lmdb/layer-lmdb.ts"
import { deposit, open, submit } from "../test/support/commands.ts"
import { describeMachine } from "./support/machine.ts"

const { values } = parseArgs({
  options: { accounts: { type: "string", default: "1000000" }, funded: { type: "boolean", default: false } },
})
const accountCount = Number(values.accounts)
/** Commands in flight while filling the node: below every shard queue bound. */
const windowMax = 2_048

const collectGarbage = (globalThis as { gc?: () => void }).gc
if (collectGarbage === undefined) throw new Error("run with node --expose-gc")

const heapUsedAfterCollection = async (): Promise<number> => {
  for (let pass = 0; pass < 3; pass++) {
    collectGarbage()
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return process.memoryUsage().heapUsed
}

const fill = async (processor: Processor) => {
  let next = 0
  const lane = async () => {
    while (next < accountCount) {
      const index = next++
      const accountId = `acct-${index}`
      const opened = await submit(processor, open(accountId))
      if (opened._tag !== "Account") throw new Error(`open ${accountId}: ${JSON.stringify(opened)}`)
      if (values.funded) await submit(processor, deposit(accountId, `seed-${index}`, 100_000n))
    }
  }
  await Promise.all(Array.from({ length: windowMax }, lane))
}

const main = async () => {
  const dataDir = mkdtempSync(join(tmpdir(), "bench-memory-"))
  const scope = await Effect.runPromise(Scope.make())
  try {
    const limits = { ...defaultRuntimeLimits, snapshotIntervalMs: 200 }
    // The stores live in the outer scope, as in the node's own composition; providing the layer to
    // makePaymentNode alone would close them as soon as the node had started.
    const stores = await Effect.runPromise(Layer.build(layerLmdb({ dataDir })).pipe(Scope.provide(scope)))
    const processor = await Effect.runPromise(
      makePaymentNode(limits).pipe(Effect.provideContext(stores), Scope.provide(scope)),
    )
    const before = await heapUsedAfterCollection()
    const startedMs = performance.now()
    await fill(processor)
    const fillSeconds = (performance.now() - startedMs) / 1000
    // Let the snapshot writers save everything, so no dirty copies are counted.
    await new Promise((resolve) => setTimeout(resolve, limits.snapshotIntervalMs * 10))
    const after = await heapUsedAfterCollection()
    console.log(`machine: ${describeMachine()}`)
    console.log(
      `${accountCount} idle accounts${values.funded ? " (each funded, so with a deposit entry)" : ""}: heap grew ${((after - before) / 1024 ** 2).toFixed(1)} MiB, ` +
        `${Math.round((after - before) / accountCount)} bytes per account; filled in ${fillSeconds.toFixed(1)} s`,
    )
  } finally {
    await Effect.runPromise(Scope.close(scope, Exit.void))
    rmSync(dataDir, { recursive: true, force: true })
  }
}

await main()
