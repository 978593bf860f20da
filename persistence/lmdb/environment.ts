/**
 * The embedded mode's LMDB environment: one memory-mapped store under `${dataDir}/ledger` holding
 * the named databases of the journal, the snapshot store (checkpoints and the catalog of segment
 * files, whose bodies live under `${dataDir}/segments`, see `segment-files.ts`) and the shard
 * leases, opened as a scoped resource, plus the exclusive process lock on the data directory that
 * keeps a second node off it.
 *
 * Durability: a write resolves only once LMDB's commit has fdatasync'd the data pages and written
 * the meta page through its O_DSYNC descriptor, so an acknowledged write survives power loss, not
 * only a process crash. The options below are passed explicitly because lmdb-js defaults would
 * resolve writes before they reach the disk (see `durableWriteOptions`).
 */
import fs from "node:fs"
import path from "node:path"
import { Data, Effect, type Scope } from "effect"
import { type Database, open, type RootDatabase } from "lmdb"
import { SegmentLookupFiles } from "./segment-files.ts"

/** The environment could not be opened (lock held, bad path, disk error): the node cannot start. */
export class LmdbUnavailable extends Data.TaggedError("LmdbUnavailable")<{
  readonly dataDir: string
  readonly message: string
}> {}

export interface LmdbConfig {
  readonly dataDir: string
  /** Initial map size; lmdb-js grows the map when it fills, so this bounds nothing but the first mapping. */
  readonly mapSizeBytes?: number
}

/** Journal key: the flush number, from 0; flushes sort in log order. */
export type FlushKey = number
/** Catalog key: [shard, segment] sorts a shard's segments in order. */
export type CatalogKey = [shard: number, segment: number]

export interface StoredCheckpoint {
  /** The newest epoch that claimed the shard: saves from any other epoch are fenced. */
  readonly claimEpoch: number
  /** The journal writer id the claiming ownership registered (absent in checkpoints written before writers were). */
  readonly writer?: string
  /** The last saved checkpoint, absent until the first save. */
  readonly saved: {
    readonly epoch: number
    readonly nextOffset: number
    readonly segment: number
    readonly base: number
  } | null
}

export interface LedgerEnvironment {
  readonly dataDir: string
  readonly root: RootDatabase
  /** flush number -> one node flush: every shard's records of one append (see flush-codec.ts). */
  readonly journalFlushes: Database<Uint8Array, FlushKey>
  /** shard -> next offset of its log (contiguous from 0); -1 -> next flush number. */
  readonly journalEnds: Database<number, number>
  /** shard -> epoch of the shard's live journal writer. */
  readonly writerEpochs: Database<number, number>
  /** Where the snapshot segments' files are (see `segment-files.ts`). */
  readonly segmentsDir: string
  /** Segment files held open for lookups of evicted entries. */
  readonly segmentLookups: SegmentLookupFiles
  /** [shard, segment] -> epoch that wrote the segment's file: the segments a checkpoint may use. */
  readonly segmentCatalog: Database<number, CatalogKey>
  /** shard -> claim epoch and last saved checkpoint. */
  readonly checkpoints: Database<StoredCheckpoint, number>
  /** shard -> last lease epoch handed out. */
  readonly leaseEpochs: Database<number, number>
}

const defaultMapSizeBytes = 1024 * 1024 * 1024

/** Lookups touch the newest segments most; a shard has a few dozen segments in a retention window. */
const segmentFilesOpenMax = 64

/**
 * `overlappingSync` is off: with it on (the lmdb-js default on Linux) the promise of `put` and
 * `transaction` resolves when the commit is visible, before it is flushed, and durability would
 * hang on a second promise (`flushed`) that is easy to forget. With it off, the commit itself
 * syncs, and writes queued meanwhile gather into the next transaction, which is the group commit.
 * `noSync` and `noMetaSync` are off for the same reason. `commitDelay` 0 starts a commit at once
 * (no timer). `eventTurnBatching` is off because lmdb-js 3.5.6 leaves an internal promise of the
 * event-turn batch unhandled when a commit fails (a full disk would crash the process instead of
 * failing the appends); every append is an explicit transaction callback anyway, and callbacks
 * queued while a commit syncs still share the next commit. `cache` is off so that nothing is
 * served that is not committed.
 */
const durableWriteOptions = {
  overlappingSync: false,
  noSync: false,
  noMetaSync: false,
  useWritemap: false,
  commitDelay: 0,
  eventTurnBatching: false,
  cache: false,
  compression: false,
} as const

/** Lock paths this process holds: a second environment on the same directory must fail here too. */
const locksHeld = new Set<string>()

const processIsAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    // EPERM: the process exists but belongs to another user.
    return (error as NodeJS.ErrnoException).code === "EPERM"
  }
}

const readLockOwner = (lockPath: string): number | undefined => {
  try {
    const pid = Number.parseInt(fs.readFileSync(lockPath, "utf8").trim(), 10)
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined
    throw error
  }
}

/**
 * Creates the lock file holding our pid with `link`, which fails if the file exists, so the file
 * is never seen half written. Returns false when another lock file is in the way.
 */
const linkLockFile = (lockPath: string): boolean => {
  const temporaryPath = `${lockPath}.${process.pid}.tmp`
  fs.writeFileSync(temporaryPath, `${process.pid}\n`)
  try {
    fs.linkSync(temporaryPath, lockPath)
    return true
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return false
    throw error
  } finally {
    fs.rmSync(temporaryPath, { force: true })
  }
}

/**
 * Takes `${dataDir}/node.lock`. A lock whose pid is dead is stale and taken over; so is one that
 * carries our own pid without this process holding it (a container restarts with the same pid).
 * Two processes taking over the same stale lock at the same instant could both succeed; even
 * then the writer epochs in LMDB (whose transactions are serialized across processes) fence the
 * older journal writer and the snapshot claims fence the older owner, so state stays consistent.
 */
const takeDirectoryLock = (dataDir: string): string => {
  const lockPath = path.resolve(dataDir, "node.lock")
  if (locksHeld.has(lockPath)) {
    throw new Error(`data directory ${dataDir} is already open in this process (${lockPath})`)
  }
  if (!linkLockFile(lockPath)) {
    const owner = readLockOwner(lockPath)
    if (owner !== undefined && owner !== process.pid && processIsAlive(owner)) {
      throw new Error(
        `data directory ${dataDir} is in use by another node (pid ${owner}, lock ${lockPath}); ` +
          "stop that node or point DATA_DIR elsewhere",
      )
    }
    fs.rmSync(lockPath, { force: true })
    if (!linkLockFile(lockPath)) throw new Error(`data directory ${dataDir} was locked by another node meanwhile`)
  }
  locksHeld.add(lockPath)
  return lockPath
}

const releaseDirectoryLock = (lockPath: string): void => {
  locksHeld.delete(lockPath)
  // Only remove the file if it is still ours: never delete a lock another node took over.
  if (readLockOwner(lockPath) === process.pid) fs.rmSync(lockPath, { force: true })
}

const openDatabases = (config: LmdbConfig): LedgerEnvironment => {
  const ledgerDir = path.join(config.dataDir, "ledger")
  const segmentsDir = path.join(config.dataDir, "segments")
  fs.mkdirSync(ledgerDir, { recursive: true })
  fs.mkdirSync(segmentsDir, { recursive: true })
  const root = open({
    path: ledgerDir,
    noSubdir: false,
    maxDbs: 8,
    mapSize: config.mapSizeBytes ?? defaultMapSizeBytes,
    ...durableWriteOptions,
  })
  return {
    dataDir: config.dataDir,
    root,
    journalFlushes: root.openDB<Uint8Array, FlushKey>({ name: "journal-flushes", encoding: "binary", cache: false }),
    journalEnds: root.openDB<number, number>({ name: "journal-ends", encoding: "msgpack", cache: false }),
    writerEpochs: root.openDB<number, number>({ name: "writer-epochs", encoding: "msgpack", cache: false }),
    segmentsDir,
    segmentLookups: new SegmentLookupFiles(segmentsDir, segmentFilesOpenMax),
    segmentCatalog: root.openDB<number, CatalogKey>({ name: "segment-catalog", encoding: "msgpack", cache: false }),
    checkpoints: root.openDB<StoredCheckpoint, number>({ name: "checkpoints", encoding: "msgpack", cache: false }),
    leaseEpochs: root.openDB<number, number>({ name: "lease-epochs", encoding: "msgpack", cache: false }),
  }
}

/**
 * The message of a failed LMDB operation. A failed commit's error carries the cause as a second
 * promise (`commitError`) that lmdb-js rejects and nobody else awaits: handle it here so it cannot
 * surface as an unhandled rejection, which would stop the process.
 */
export const lmdbErrorMessage = (error: unknown): string => {
  const commitError = (error as { commitError?: Promise<unknown> } | null)?.commitError
  if (commitError !== undefined && typeof commitError.catch === "function") commitError.catch(() => {})
  return error instanceof Error ? error.message : String(error)
}

/** Locks the data directory and opens the environment; both are released when the scope closes. */
export const acquireLedgerEnvironment = (
  config: LmdbConfig,
): Effect.Effect<LedgerEnvironment, LmdbUnavailable, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.try({
      try: () => {
        fs.mkdirSync(config.dataDir, { recursive: true })
        const lockPath = takeDirectoryLock(config.dataDir)
        try {
          return { lockPath, environment: openDatabases(config) }
        } catch (error) {
          releaseDirectoryLock(lockPath)
          throw error
        }
      },
      catch: (error) => new LmdbUnavailable({ dataDir: config.dataDir, message: lmdbErrorMessage(error) }),
    }),
    ({ lockPath, environment }) =>
      Effect.promise(async () => {
        environment.segmentLookups.closeAll()
        await environment.root.close()
      }).pipe(
        Effect.catchCause((cause) => Effect.logWarning("closing the LMDB environment failed", cause)),
        Effect.ensuring(Effect.sync(() => releaseDirectoryLock(lockPath))),
      ),
  ).pipe(Effect.map(({ environment }) => environment))
