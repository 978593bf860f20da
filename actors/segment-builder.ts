/**
 * Builds the parts of one snapshot segment: the entities grouped by tenant (each tenant's data
 * stays in that tenant's store), encoded, and cut into parts of at most the store's part size.
 * Within a tenant, entries come first so the parts that hold entries have the low part numbers the
 * entry index can address; live entries and accounts follow.
 */

import { encodeEntity } from "../core/entity-codec.ts"
import { type Account, type Entry, entityKey } from "../core/ledger.ts"
import { encodeFingerprints, fingerprintOf, joinLines } from "../core/segment-codec.ts"
import type { SegmentPart } from "../persistence/snapshot-store.ts"
import { partsPerSegmentMax } from "./entry-index.ts"

export interface SegmentContents {
  readonly accounts: Iterable<Account>
  /** Entries whose latest version changed since the previous segment (final ones; live ones go in `live`). */
  readonly entries: Iterable<Entry>
  /** Every live entry of the shard. */
  readonly live: Iterable<Entry>
}

interface TenantLines {
  readonly entries: Array<string>
  readonly fingerprints: Array<number>
  readonly live: Array<string>
  readonly accounts: Array<string>
}

/** A built part and the fingerprints of its entries, for the index once the save succeeded. */
export interface BuiltPart {
  readonly part: SegmentPart
  readonly fingerprints: ReadonlyArray<number>
}

export interface BuiltSegment {
  readonly parts: ReadonlyArray<BuiltPart>
  readonly accountBytes: number
}

const linesOf = (groups: Map<string, TenantLines>, tenantId: string): TenantLines => {
  let lines = groups.get(tenantId)
  if (lines === undefined) {
    lines = { entries: [], fingerprints: [], live: [], accounts: [] }
    groups.set(tenantId, lines)
  }
  return lines
}

const group = (contents: SegmentContents): Map<string, TenantLines> => {
  const groups = new Map<string, TenantLines>()
  for (const entry of contents.entries) {
    const lines = linesOf(groups, entry.value.tenantId)
    lines.entries.push(encodeEntity(entry))
    lines.fingerprints.push(fingerprintOf(entityKey(entry)))
  }
  for (const entry of contents.live) linesOf(groups, entry.value.tenantId).live.push(encodeEntity(entry))
  for (const account of contents.accounts) {
    linesOf(groups, account.tenantId).accounts.push(encodeEntity({ kind: "account", value: account }))
  }
  return groups
}

type Section = "entries" | "live" | "accounts"

class PartCutter {
  readonly parts: Array<BuiltPart> = []
  private current = {
    entries: [] as Array<string>,
    fingerprints: [] as Array<number>,
    live: [] as Array<string>,
    accounts: [] as Array<string>,
  }
  private bytes = 0

  constructor(
    private readonly tenantId: string,
    private readonly partBytesMax: number,
  ) {}

  add(section: Section, line: string, fingerprint?: number): void {
    // A newline joins lines; a line alone larger than a part still gets a part of its own.
    const size = Buffer.byteLength(line, "utf8") + 1
    if (this.bytes > 0 && this.bytes + size > this.partBytesMax) this.cut()
    this.current[section].push(line)
    if (fingerprint !== undefined) this.current.fingerprints.push(fingerprint)
    this.bytes += size
  }

  cut(): void {
    if (this.bytes === 0) return
    const part = this.parts.length
    if (part >= partsPerSegmentMax && this.current.entries.length > 0) {
      throw new Error(`segment: tenant ${this.tenantId} needs more than ${partsPerSegmentMax} parts of entries`)
    }
    this.parts.push({
      part: {
        tenantId: this.tenantId,
        part,
        entries: joinLines(this.current.entries),
        live: joinLines(this.current.live),
        accounts: joinLines(this.current.accounts),
        fingerprints: encodeFingerprints(this.current.fingerprints),
      },
      fingerprints: this.current.fingerprints,
    })
    this.current = { entries: [], fingerprints: [], live: [], accounts: [] }
    this.bytes = 0
  }
}

/** Encodes a segment's contents into parts of at most `partBytesMax` bytes (sections summed). */
export const buildSegment = (contents: SegmentContents, partBytesMax: number): BuiltSegment => {
  const parts: Array<BuiltPart> = []
  let accountBytes = 0
  for (const [tenantId, lines] of group(contents)) {
    const cutter = new PartCutter(tenantId, partBytesMax)
    lines.entries.forEach((line, index) => {
      cutter.add("entries", line, lines.fingerprints[index])
    })
    for (const line of lines.live) cutter.add("live", line)
    for (const line of lines.accounts) {
      cutter.add("accounts", line)
      accountBytes += line.length + 1
    }
    cutter.cut()
    parts.push(...cutter.parts)
  }
  return { parts, accountBytes }
}
