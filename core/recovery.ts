/**
 * Recovery rule: which journal events a snapshot already includes. A snapshot save writes an
 * account together with (or after) the entries its events produced, so an account whose saved
 * sequence has reached an event's sequence already reflects that event; replaying it again would
 * apply it twice. Events of accounts the snapshot is behind on are applied as usual.
 */
import type { Event } from "./events.ts"
import type { LedgerView } from "./ledger.ts"

export const snapshotIncludes = (view: LedgerView, event: Event): boolean => {
  const account = view.account(event.tenantId, event.accountId)
  return account !== undefined && event.sequence <= account.sequence
}
