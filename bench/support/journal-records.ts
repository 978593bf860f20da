/** Production-shaped journal records for the journal benchmarks and micro-benchmarks. */
import { execFileSync } from "node:child_process"
import { randomUUID } from "node:crypto"
import type { Event, JournalRecord } from "../../core/events.ts"
import type { AccountId, TenantId } from "../../core/ids.ts"
import type { Currency } from "../../core/money.ts"

/** A transfer debit with production-shaped ids: about 340 bytes once encoded. */
export const transferRecord = (index: number): JournalRecord => {
  const event: Event = {
    _tag: "TransferDebited",
    schemaVersion: 1,
    tenantId: "tenant-bench-0001" as TenantId,
    accountId: `acct-${String(index % 10_000).padStart(8, "0")}` as AccountId,
    paymentId: `pay-${randomUUID()}`,
    correlationId: randomUUID(),
    sequence: index + 1,
    timestampMs: 1_700_000_000_000 + index,
    to: `acct-${String((index * 7) % 10_000).padStart(8, "0")}` as AccountId,
    amountMinor: BigInt(1_000 + index),
    currency: "EUR" as Currency,
    settled: index % 2 === 0,
  }
  return { events: [event] }
}

/** The filesystem a directory is on, as `df -T -h` prints it: fsync costs depend on it. */
export const describeDisk = (directory: string): string => {
  try {
    return execFileSync("df", ["-T", "-h", directory], { encoding: "utf8" }).trim().split("\n").at(-1) ?? "unknown"
  } catch {
    return "unknown"
  }
}
