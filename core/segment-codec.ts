/**
 * The bytes of snapshot segments: sections of entities as UTF-8 JSON lines (each line one
 * `encodeEntity`), and entry fingerprints as little-endian 32-bit words aligned with the entries
 * section, so a lookup finds the line of an entry without decoding the others. Decoding validates
 * every entity it reads (the codec's Schema), so a damaged segment is found when it is read.
 */
import { decodeEntity, encodeEntity } from "./entity-codec.ts"
import type { Entity } from "./ledger.ts"

const utf8 = new TextEncoder()
const fromUtf8 = new TextDecoder("utf-8", { fatal: true })

export const emptySection: Uint8Array = new Uint8Array(0)

/** The encoded lines of a section, to size parts before joining them. */
export const encodeLines = (entities: Iterable<Entity>): Array<string> => {
  const lines: Array<string> = []
  for (const entity of entities) lines.push(encodeEntity(entity))
  return lines
}

export const joinLines = (lines: ReadonlyArray<string>): Uint8Array =>
  lines.length === 0 ? emptySection : utf8.encode(lines.join("\n"))

export const sectionLines = (section: Uint8Array): Array<string> =>
  section.byteLength === 0 ? [] : fromUtf8.decode(section).split("\n")

export const decodeSection = (section: Uint8Array): Array<Entity> => sectionLines(section).map(decodeEntity)

/**
 * A 32-bit fingerprint of an entity key (FNV-1a over UTF-16 code units, then Murmur3's finalizer
 * to spread similar keys), never 0, which the index keeps for empty slots. Equal fingerprints say
 * "maybe the same key"; the key itself decides.
 */
export const fingerprintOf = (key: string): number => {
  let hash = 0x811c9dc5
  for (let index = 0; index < key.length; index++) {
    hash ^= key.charCodeAt(index)
    hash = Math.imul(hash, 0x01000193)
  }
  hash ^= hash >>> 16
  hash = Math.imul(hash, 0x85ebca6b)
  hash ^= hash >>> 13
  hash = Math.imul(hash, 0xc2b2ae35)
  hash ^= hash >>> 16
  return hash >>> 0 || 1
}

export const encodeFingerprints = (fingerprints: ReadonlyArray<number>): Uint8Array => {
  const bytes = new Uint8Array(fingerprints.length * 4)
  const view = new DataView(bytes.buffer)
  fingerprints.forEach((fingerprint, index) => {
    view.setUint32(index * 4, fingerprint, true)
  })
  return bytes
}

export const decodeFingerprints = (bytes: Uint8Array): Uint32Array => {
  if (bytes.byteLength % 4 !== 0) throw new Error(`fingerprint section of ${bytes.byteLength} bytes`)
  const words = new Uint32Array(bytes.byteLength / 4)
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  for (let index = 0; index < words.length; index++) words[index] = view.getUint32(index * 4, true)
  return words
}

/** The lines of an entries section whose fingerprint is `fingerprint`, decoded: the candidates for one key. */
export const entriesWithFingerprint = (
  entries: Uint8Array,
  fingerprints: Uint8Array,
  fingerprint: number,
): Array<Entity> => {
  const words = decodeFingerprints(fingerprints)
  const lines = sectionLines(entries)
  if (lines.length !== words.length) {
    throw new Error(`segment part holds ${lines.length} entries but ${words.length} fingerprints`)
  }
  const found: Array<Entity> = []
  for (let index = 0; index < words.length; index++) {
    if (words[index] === fingerprint) found.push(decodeEntity(lines[index] as string))
  }
  return found
}
