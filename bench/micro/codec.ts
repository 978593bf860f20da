/**
 * Micro-benchmark of the stored encodings on the append and snapshot paths: the hand-written
 * encoders against the Schema encoders they must match byte for byte (a property test holds them
 * together). Prints microseconds per call, best of five rounds, with the machine.
 * Run: `node --import tsx bench/micro/codec.ts`
 */
import { encodeEntity, encodeEntityBySchema } from "../../core/entity-codec.ts"
import { encodeJournalRecord, encodeJournalRecordBySchema, type JournalRecord } from "../../core/events.ts"
import type { AccountId, PaymentId, TenantId } from "../../core/ids.ts"
import type { Entity } from "../../core/ledger.ts"
import type { Currency } from "../../core/money.ts"
import { transferRecord } from "../support/journal-records.ts"
import { describeMachine } from "../support/machine.ts"

const count = 20_000
const rounds = 5

const records: ReadonlyArray<JournalRecord> = Array.from({ length: count }, (_, index) => transferRecord(index))
const entities: ReadonlyArray<Entity> = Array.from({ length: count }, (_, index) => ({
  kind: "payment",
  value: {
    tenantId: "tenant-bench-0001" as TenantId,
    paymentId: `pay-${index}` as PaymentId,
    from: `acct-${index % 1000}` as AccountId,
    to: `acct-${(index * 7) % 1000}` as AccountId,
    amountMinor: BigInt(index + 1),
    currency: "EUR" as Currency,
    status: "settled",
    reason: null,
    createdAtMs: 1_700_000_000_000 + index,
    capturedAmountMinor: BigInt(index + 1),
    holdExpiresAtMs: null,
    captureId: null,
    updatedAtMs: 1_700_000_000_000 + index,
    refundedAmountMinor: 0n,
    refunds: [],
  },
}))

const bestMicrosPerCall = <A>(inputs: ReadonlyArray<A>, encode: (input: A) => string): number => {
  let best = Number.POSITIVE_INFINITY
  for (let round = 0; round < rounds; round++) {
    const startedAt = performance.now()
    for (const input of inputs) encode(input)
    best = Math.min(best, ((performance.now() - startedAt) * 1000) / inputs.length)
  }
  return best
}

console.log(`machine: ${describeMachine()}`)
console.log(`${count} calls per round, best of ${rounds} rounds`)
const rows: ReadonlyArray<[string, number]> = [
  ["journal record, by hand", bestMicrosPerCall(records, encodeJournalRecord)],
  ["journal record, Schema", bestMicrosPerCall(records, encodeJournalRecordBySchema)],
  ["entity, by hand", bestMicrosPerCall(entities, encodeEntity)],
  ["entity, Schema", bestMicrosPerCall(entities, encodeEntityBySchema)],
]
for (const [label, micros] of rows) console.log(`${label.padEnd(26)} ${micros.toFixed(2)} us`)
