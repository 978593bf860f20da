/** What a benchmark ran on, printed with every result so numbers are never read without it. */
import { cpus, totalmem } from "node:os"

export const describeMachine = (): string => {
  const cores = cpus()
  const model = cores[0]?.model ?? "unknown cpu"
  const memoryGiB = (totalmem() / 1024 ** 3).toFixed(1)
  return `${cores.length} cores (${model}), ${memoryGiB} GiB, Node ${process.version}, ${process.platform}/${process.arch}`
}
