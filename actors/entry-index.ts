/**
 * One shard's index of the entries its saved segments hold: for each entry key's 32-bit fingerprint,
 * the (segment, part) that holds a version of it. It is what lets a shard keep only a bounded recent
 * set of entries in memory and still know, without any I/O, that a new idempotency key has never
 * been used (no fingerprint: certainly new), or where to read the entry when it may have been.
 *
 * Memory is two 32-bit words per slot in typed arrays (off the JavaScript heap, no object per key),
 * grown by doubling up to `keysMax`, and bounded by the idempotency window: a segment's fingerprints
 * die when the segment expires and are dropped at the next compaction.
 *
 * Several keys may share a fingerprint and one key may have versions in several segments, so a
 * fingerprint maps to every location added for it; a lookup reads them newest first and the key
 * itself decides.
 */

/** Segment slots are 20 bits of a location, parts the other 12. */
const slotBits = 20
const partBits = 12
const slotsMax = 1 << slotBits
export const partsPerSegmentMax = 1 << partBits

const loadFactorMax = 0.75
const capacityInitial = 1024

export interface SegmentSlot {
  readonly segment: number
  readonly savedAtMs: number
  /** Fingerprints added with this slot, dead or alive: what compaction will drop when it dies. */
  keys: number
  dead: boolean
}

export interface EntryLocation {
  readonly segment: number
  readonly part: number
}

export class EntryIndex {
  private fingerprints = new Uint32Array(capacityInitial)
  private locations = new Uint32Array(capacityInitial)
  /** Occupied slots of the table, dead ones included until compaction. */
  private occupied = 0
  private deadKeys = 0
  private readonly slots: Array<SegmentSlot | undefined> = []
  private readonly slotOfSegment = new Map<number, number>()
  private readonly freeSlots: Array<number> = []

  constructor(private readonly keysMax: number) {}

  /** Live keys indexed (a key with versions in two segments counts twice). */
  get size(): number {
    return this.occupied - this.deadKeys
  }

  /** True when no more keys fit: the shard refuses commands that would add one until segments expire. */
  get full(): boolean {
    return this.size >= this.keysMax
  }

  /** Bytes of the table, for the memory gauges. */
  get bytes(): number {
    return this.fingerprints.byteLength + this.locations.byteLength
  }

  /** The slot of a segment, registered once before its fingerprints are added. */
  registerSegment(segment: number, savedAtMs: number): number {
    const existing = this.slotOfSegment.get(segment)
    if (existing !== undefined) return existing
    const slot = this.freeSlots.pop() ?? this.slots.length
    if (slot >= slotsMax) throw new Error(`entry index: more than ${slotsMax} segments in the window`)
    this.slots[slot] = { segment, savedAtMs, keys: 0, dead: false }
    this.slotOfSegment.set(segment, slot)
    return slot
  }

  /** Adds one fingerprint's location; false when the index is full. */
  add(fingerprint: number, slot: number, part: number): boolean {
    if (this.full) return false
    const entry = this.slots[slot]
    if (entry === undefined || entry.dead) throw new Error(`entry index: slot ${slot} is not a live segment`)
    if (part >= partsPerSegmentMax) throw new Error(`entry index: part ${part} beyond ${partsPerSegmentMax}`)
    if ((this.occupied + 1) / this.fingerprints.length > loadFactorMax) this.rebuild(this.fingerprints.length * 2)
    this.insert(fingerprint, (slot << partBits) | part)
    entry.keys++
    return true
  }

  /** Every live location of a fingerprint, newest segment first. */
  locate(fingerprint: number): Array<EntryLocation> {
    const found: Array<EntryLocation> = []
    const mask = this.fingerprints.length - 1
    for (let index = fingerprint & mask; this.fingerprints[index] !== 0; index = (index + 1) & mask) {
      if (this.fingerprints[index] !== fingerprint) continue
      const location = this.locations[index] as number
      const slot = this.slots[location >>> partBits]
      if (slot !== undefined && !slot.dead)
        found.push({ segment: slot.segment, part: location & (partsPerSegmentMax - 1) })
    }
    return found.sort((a, b) => b.segment - a.segment)
  }

  /** True when a fingerprint has at least one live location: the key may have been used. */
  mayContain(fingerprint: number): boolean {
    const mask = this.fingerprints.length - 1
    for (let index = fingerprint & mask; this.fingerprints[index] !== 0; index = (index + 1) & mask) {
      if (this.fingerprints[index] !== fingerprint) continue
      const slot = this.slots[(this.locations[index] as number) >>> partBits]
      if (slot !== undefined && !slot.dead) return true
    }
    return false
  }

  /** The segments registered, oldest first. */
  segments(): Array<SegmentSlot> {
    return this.slots
      .filter((slot): slot is SegmentSlot => slot !== undefined && !slot.dead)
      .sort((a, b) => a.segment - b.segment)
  }

  /** Forgets a segment's fingerprints (it expired or was deleted); compacts once a quarter of the table is dead. */
  dropSegment(segment: number): void {
    const slot = this.slotOfSegment.get(segment)
    if (slot === undefined) return
    const entry = this.slots[slot] as SegmentSlot
    if (entry.dead) return
    entry.dead = true
    this.deadKeys += entry.keys
    if (this.deadKeys * 4 >= this.occupied) this.rebuild(this.fingerprints.length)
  }

  private insert(fingerprint: number, location: number): void {
    const mask = this.fingerprints.length - 1
    let index = fingerprint & mask
    while (this.fingerprints[index] !== 0) index = (index + 1) & mask
    this.fingerprints[index] = fingerprint
    this.locations[index] = location
    this.occupied++
  }

  /** Rehashes the live keys into a table of `capacity` (shrunk while it stays under the load factor), freeing dead slots. */
  private rebuild(capacity: number): void {
    const oldFingerprints = this.fingerprints
    const oldLocations = this.locations
    let size = capacityInitial
    while (size < capacity || (this.size + 1) / size > loadFactorMax) size *= 2
    this.fingerprints = new Uint32Array(size)
    this.locations = new Uint32Array(size)
    this.occupied = 0
    for (let index = 0; index < oldFingerprints.length; index++) {
      const fingerprint = oldFingerprints[index] as number
      if (fingerprint === 0) continue
      const location = oldLocations[index] as number
      const slot = this.slots[location >>> partBits]
      if (slot === undefined || slot.dead) continue
      this.insert(fingerprint, location)
    }
    this.deadKeys = 0
    for (const [slotIndex, slot] of this.slots.entries()) {
      if (slot === undefined || !slot.dead) continue
      this.slots[slotIndex] = undefined
      this.slotOfSegment.delete(slot.segment)
      this.freeSlots.push(slotIndex)
    }
  }
}
