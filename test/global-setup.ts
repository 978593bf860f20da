/**
 * vitest global setup: makes the local stack answer before any test file runs, and afterwards stops
 * only what this run started, so a stack a developer (or another helper) already runs stays up.
 */
import { stackDown, stackUp } from "../scripts/local-stack/stack.ts"

export default async function setup(): Promise<() => Promise<void>> {
  const result = await stackUp({ log: (line) => console.log(`[local-stack] ${line}`) })
  return async () => {
    if (result.started.length > 0) await stackDown({ only: result.started })
  }
}
