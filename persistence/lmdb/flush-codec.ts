/**
 * The bytes of one node flush in the LMDB journal: a header naming, for each shard with records in
 * the flush, the offset of its first record and how many it has, and the end (next offset) of every
 * shard known to the journal as of this flush; then each shard's records as UTF-8 JSON lines
 * (`encodeJournalRecord`, which never contains a raw newline). The ends let a replay find, by
 * binary search over flushes, where a shard's offset lies without reading the flushes before it.
 *
 * Layout, little-endian: u32 format (1), u32 sections, per section (u32 shard, f64 first offset,
 * u32 records, u32 bytes), u32 ends, per end (u32 shard, f64 next offset), then the section bodies
 * in header order.
 */

const formatVersion = 1
const fromUtf8 = new TextDecoder("utf-8", { fatal: true })

export interface FlushSection {
  readonly shard: number
  readonly firstOffset: number
  /** The records' encoded texts, in order. */
  readonly texts: ReadonlyArray<string>
}

export interface FlushHeader {
  readonly sections: ReadonlyArray<{
    readonly shard: number
    readonly firstOffset: number
    readonly records: number
    readonly bodyStart: number
    readonly bodyBytes: number
  }>
  /** Next offset of every shard as of the end of this flush. */
  readonly ends: ReadonlyMap<number, number>
}

/** UTF-8 bytes of a section's body: its texts and the newlines between them. */
const bodyBytesOf = (texts: ReadonlyArray<string>): number =>
  texts.reduce((sum, text) => sum + Buffer.byteLength(text, "utf8"), Math.max(0, texts.length - 1))

/** Encodes into one buffer, each text written in place (no joined string, no second copy). */
export const encodeFlush = (sections: ReadonlyArray<FlushSection>, ends: ReadonlyMap<number, number>): Uint8Array => {
  const bodyBytes = sections.map((section) => bodyBytesOf(section.texts))
  const headerBytes = 8 + sections.length * 20 + 4 + ends.size * 12
  const bytes = Buffer.allocUnsafe(headerBytes + bodyBytes.reduce((sum, size) => sum + size, 0))
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  let position = 0
  const u32 = (value: number) => {
    view.setUint32(position, value, true)
    position += 4
  }
  const f64 = (value: number) => {
    view.setFloat64(position, value, true)
    position += 8
  }
  u32(formatVersion)
  u32(sections.length)
  sections.forEach((section, index) => {
    u32(section.shard)
    f64(section.firstOffset)
    u32(section.texts.length)
    u32(bodyBytes[index] as number)
  })
  u32(ends.size)
  for (const [shard, nextOffset] of ends) {
    u32(shard)
    f64(nextOffset)
  }
  for (const section of sections) {
    section.texts.forEach((text, index) => {
      if (index > 0) bytes[position++] = 0x0a
      position += bytes.write(text, position, "utf8")
    })
  }
  return bytes
}

/** Reads the header; a flush that does not parse is damage or a bug, so it throws. */
export const decodeFlushHeader = (bytes: Uint8Array): FlushHeader => {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  let position = 0
  const u32 = () => {
    const value = view.getUint32(position, true)
    position += 4
    return value
  }
  const f64 = () => {
    const value = view.getFloat64(position, true)
    position += 8
    return value
  }
  if (u32() !== formatVersion) throw new Error("journal flush of an unknown format")
  const count = u32()
  const raw = Array.from({ length: count }, () => ({
    shard: u32(),
    firstOffset: f64(),
    records: u32(),
    bodyBytes: u32(),
  }))
  const endsCount = u32()
  const ends = new Map<number, number>()
  for (let index = 0; index < endsCount; index++) ends.set(u32(), f64())
  const sections = raw.map((section) => {
    const placed = { ...section, bodyStart: position }
    position += section.bodyBytes
    return placed
  })
  if (position !== bytes.byteLength)
    throw new Error(`journal flush of ${bytes.byteLength} bytes, header says ${position}`)
  return { sections, ends }
}

/** The encoded records of one shard's section. */
export const sectionTexts = (bytes: Uint8Array, section: FlushHeader["sections"][number]): Array<string> => {
  const text = fromUtf8.decode(bytes.subarray(section.bodyStart, section.bodyStart + section.bodyBytes))
  const texts = section.records === 0 ? [] : text.split("\n")
  if (texts.length !== section.records) {
    throw new Error(
      `journal flush section of shard ${section.shard} holds ${texts.length} records, not ${section.records}`,
    )
  }
  return texts
}
