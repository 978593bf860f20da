/** What a benchmark ran on, printed with every result so numbers are never read without it. */
import { cpus, loadavg, totalmem } from "node:os"

export const machineFacts = () => {
  const cores = cpus()
  return {
    cores: cores.length,
    cpuModel: cores[0]?.model ?? "unknown cpu",
    memoryBytes: totalmem(),
    node: process.version,
    platform: `${process.platform}/${process.arch}`,
    // The machine is shared: the load when the run started says how noisy its numbers may be.
    loadAverage1m: Number((loadavg()[0] ?? 0).toFixed(2)),
  }
}

export const describeMachine = (): string => {
  const facts = machineFacts()
  const memoryGiB = (facts.memoryBytes / 1024 ** 3).toFixed(1)
  return `${facts.cores} cores (${facts.cpuModel}), ${memoryGiB} GiB, Node ${facts.node}, ${facts.platform}, load ${facts.loadAverage1m}`
}
