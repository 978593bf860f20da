/**
 * Snapshot segments of the embedded mode as files, one per (shard, segment, epoch), under
 * `${dataDir}/segments/<shard>/`. Segment bodies are large, written once, read seldom (a claim,
 * a lookup of an evicted entry) and deleted when their window ends. Kept inside LMDB's memory map
 * they became resident memory: every page the map touches stays mapped, and the kernel maps up to
 * 64 KiB around each page LMDB reads, so reading the tree's pages pulled in a quarter of the
 * segment data. Read with `pread` and written with `write`, they stay in the page cache, which the
 * kernel reclaims, and a deleted segment gives its disk back.
 *
 * File layout: a header (magic, index length), the index (JSON: where each part's sections lie),
 * then the sections. The file name carries the writer's epoch, so a stale owner finishing a write
 * can never overwrite a file of a newer owner.
 */
import fs from "node:fs"
import path from "node:path"
import type { SegmentPart } from "../snapshot-store.ts"

const magic = 0x31475350 // "PSG1" little-endian
const headerBytes = 8

export type SectionName = "accounts" | "entries" | "live" | "fingerprints"
const sectionNames: ReadonlyArray<SectionName> = ["accounts", "entries", "live", "fingerprints"]

/** Offset (from the end of the index) and length of one section. */
type SectionSpan = readonly [offset: number, length: number]

export interface PartSpans {
  readonly tenantId: string
  readonly part: number
  readonly sections: Readonly<Record<SectionName, SectionSpan>>
}

export interface SegmentFileIndex {
  readonly savedAtMs: number
  readonly parts: ReadonlyArray<PartSpans>
}

export const shardDirectory = (segmentsDir: string, shard: number): string => path.join(segmentsDir, String(shard))

export const segmentFileName = (segment: number, epoch: number): string => `${segment}-${epoch}.seg`

/** Segment and epoch of a file name, or undefined for a file that is not a segment. */
export const parseSegmentFileName = (name: string): { segment: number; epoch: number } | undefined => {
  const match = /^(\d+)-(\d+)\.seg$/.exec(name)
  if (match === null) return undefined
  return { segment: Number(match[1]), epoch: Number(match[2]) }
}

/** Fsyncs a directory so that the entries created or removed in it survive a power loss. */
const syncDirectory = async (directory: string): Promise<void> => {
  const handle = await fs.promises.open(directory, "r")
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

const ensureShardDirectory = async (segmentsDir: string, shard: number): Promise<string> => {
  const directory = shardDirectory(segmentsDir, shard)
  if (!fs.existsSync(directory)) {
    await fs.promises.mkdir(directory, { recursive: true })
    await syncDirectory(segmentsDir)
  }
  return directory
}

const layoutOf = (
  savedAtMs: number,
  parts: ReadonlyArray<SegmentPart>,
): { index: Uint8Array; bodies: Uint8Array[] } => {
  let offset = 0
  const bodies: Array<Uint8Array> = []
  const spans: Array<PartSpans> = parts.map((part) => {
    const sections = {} as Record<SectionName, SectionSpan>
    for (const name of sectionNames) {
      const bytes = part[name]
      sections[name] = [offset, bytes.byteLength]
      offset += bytes.byteLength
      bodies.push(bytes)
    }
    return { tenantId: part.tenantId, part: part.part, sections }
  })
  const index: SegmentFileIndex = { savedAtMs, parts: spans }
  return { index: new TextEncoder().encode(JSON.stringify(index)), bodies }
}

/**
 * Writes the segment's file and syncs it and its directory: when this resolves the file is
 * durable and may be named by the catalog. A file of the same name (a failed earlier attempt of
 * the same epoch) is replaced.
 */
export const writeSegmentFile = async (
  segmentsDir: string,
  shard: number,
  segment: number,
  epoch: number,
  savedAtMs: number,
  parts: ReadonlyArray<SegmentPart>,
): Promise<void> => {
  const directory = await ensureShardDirectory(segmentsDir, shard)
  const { index, bodies } = layoutOf(savedAtMs, parts)
  const header = new Uint8Array(headerBytes)
  const view = new DataView(header.buffer)
  view.setUint32(0, magic, true)
  view.setUint32(4, index.byteLength, true)
  const handle = await fs.promises.open(path.join(directory, segmentFileName(segment, epoch)), "w")
  try {
    await handle.writev([header, index, ...bodies])
    await handle.datasync()
  } finally {
    await handle.close()
  }
  await syncDirectory(directory)
}

const readExactly = async (handle: fs.promises.FileHandle, position: number, length: number): Promise<Uint8Array> => {
  const bytes = new Uint8Array(length)
  let filled = 0
  while (filled < length) {
    const { bytesRead } = await handle.read(bytes, filled, length - filled, position + filled)
    if (bytesRead === 0) throw new Error(`segment file ends at ${position + filled}, ${length - filled} bytes short`)
    filled += bytesRead
  }
  return bytes
}

/** The index's length, from a file's header; throws on a file that is not a segment file. */
const indexLengthOf = (header: Uint8Array, shard: number, segment: number): number => {
  const view = new DataView(header.buffer, header.byteOffset, header.byteLength)
  if (view.getUint32(0, true) !== magic) throw new Error(`segment ${segment} of shard ${shard}: not a segment file`)
  return view.getUint32(4, true)
}

const parseIndex = (bytes: Uint8Array): SegmentFileIndex => JSON.parse(new TextDecoder().decode(bytes))

/** An open segment file: its index, and its sections read on demand. */
export interface SegmentFileReader {
  readonly index: SegmentFileIndex
  readonly section: (part: PartSpans, name: SectionName) => Promise<Uint8Array>
}

/**
 * Opens a segment file, reads its index, runs `use` and closes the file. Undefined when the file
 * does not exist (a segment deleted meanwhile).
 */
export const withSegmentFile = async <A>(
  segmentsDir: string,
  shard: number,
  segment: number,
  epoch: number,
  use: (reader: SegmentFileReader) => Promise<A>,
): Promise<A | undefined> => {
  let handle: fs.promises.FileHandle
  try {
    handle = await fs.promises.open(path.join(shardDirectory(segmentsDir, shard), segmentFileName(segment, epoch)), "r")
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined
    throw error
  }
  try {
    const indexBytes = indexLengthOf(await readExactly(handle, 0, headerBytes), shard, segment)
    const index = parseIndex(await readExactly(handle, headerBytes, indexBytes))
    const dataStart = headerBytes + indexBytes
    return await use({
      index,
      section: (part, name) => readExactly(handle, dataStart + part.sections[name][0], part.sections[name][1]),
    })
  } finally {
    await handle.close()
  }
}

const readExactlySync = (fd: number, position: number, length: number): Uint8Array => {
  const bytes = new Uint8Array(length)
  let filled = 0
  while (filled < length) {
    const bytesRead = fs.readSync(fd, bytes, filled, length - filled, position + filled)
    if (bytesRead === 0) throw new Error(`segment file ends at ${position + filled}, ${length - filled} bytes short`)
    filled += bytesRead
  }
  return bytes
}

interface OpenSegmentFile {
  readonly fd: number
  readonly index: SegmentFileIndex
  readonly dataStart: number
}

/**
 * Segment files held open for lookups of evicted entries. A lookup is a synchronous `pread` of a
 * page that is almost always in the page cache (the segment was written recently, or read by the
 * lookup before): a copy of microseconds, where an asynchronous read costs a thread-pool round
 * trip per call, and lookups of one account run one after another, so a burst of reads of old
 * payments would queue behind those round trips. At most `openMax` files stay open, the least
 * recently used closed first; a deleted segment's file is closed so its disk space is given back.
 */
export class SegmentLookupFiles {
  private readonly open = new Map<string, OpenSegmentFile>()

  constructor(
    private readonly segmentsDir: string,
    private readonly openMax: number,
  ) {}

  /** The entries and fingerprints of one part; undefined when the file or the part does not exist. */
  readPart(
    shard: number,
    segment: number,
    epoch: number,
    tenantId: string,
    part: number,
  ): { entries: Uint8Array; fingerprints: Uint8Array } | undefined {
    const file = this.fileOf(shard, segment, epoch)
    if (file === undefined) return undefined
    const spans = file.index.parts.find((candidate) => candidate.tenantId === tenantId && candidate.part === part)
    if (spans === undefined) return undefined
    const read = (name: SectionName) =>
      readExactlySync(file.fd, file.dataStart + spans.sections[name][0], spans.sections[name][1])
    return { entries: read("entries"), fingerprints: read("fingerprints") }
  }

  /** Closes the files of segments about to be removed. */
  forget(shard: number, files: ReadonlyArray<{ readonly segment: number; readonly epoch: number }>): void {
    for (const { segment, epoch } of files) this.close(`${shard}/${segmentFileName(segment, epoch)}`)
  }

  closeAll(): void {
    for (const key of [...this.open.keys()]) this.close(key)
  }

  private close(key: string): void {
    const file = this.open.get(key)
    if (file === undefined) return
    this.open.delete(key)
    fs.closeSync(file.fd)
  }

  private fileOf(shard: number, segment: number, epoch: number): OpenSegmentFile | undefined {
    const key = `${shard}/${segmentFileName(segment, epoch)}`
    const cached = this.open.get(key)
    if (cached !== undefined) {
      // Most recently used last: the map's insertion order is the eviction order.
      this.open.delete(key)
      this.open.set(key, cached)
      return cached
    }
    let fd: number
    try {
      fd = fs.openSync(path.join(this.segmentsDir, key), "r")
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined
      throw error
    }
    try {
      const indexBytes = indexLengthOf(readExactlySync(fd, 0, headerBytes), shard, segment)
      const file = {
        fd,
        index: parseIndex(readExactlySync(fd, headerBytes, indexBytes)),
        dataStart: headerBytes + indexBytes,
      }
      if (this.open.size >= this.openMax) this.close(this.open.keys().next().value as string)
      this.open.set(key, file)
      return file
    } catch (error) {
      fs.closeSync(fd)
      throw error
    }
  }
}

/** Removes segment files; one already gone is fine. Syncs the directory once at the end. */
export const removeSegmentFiles = async (
  segmentsDir: string,
  shard: number,
  files: ReadonlyArray<{ readonly segment: number; readonly epoch: number }>,
): Promise<void> => {
  if (files.length === 0) return
  const directory = shardDirectory(segmentsDir, shard)
  for (const { segment, epoch } of files) {
    await fs.promises.rm(path.join(directory, segmentFileName(segment, epoch)), { force: true })
  }
  if (fs.existsSync(directory)) await syncDirectory(directory)
}

/** Every segment file of the shard on disk. */
export const listSegmentFiles = async (
  segmentsDir: string,
  shard: number,
): Promise<Array<{ segment: number; epoch: number }>> => {
  let names: Array<string>
  try {
    names = await fs.promises.readdir(shardDirectory(segmentsDir, shard))
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return []
    throw error
  }
  return names.flatMap((name) => {
    const parsed = parseSegmentFileName(name)
    return parsed === undefined ? [] : [parsed]
  })
}
