/**
 * The tenant file in force, reloaded without a restart: when the file changes (a watch on its
 * folder, so an editor's write-then-rename is seen too) or the process gets SIGHUP. A new version
 * takes effect only once it validates whole; an invalid one is logged with the field it names and
 * the previous version stays in force. Every version taken is logged with its content digest.
 */
import fs from "node:fs"
import path from "node:path"
import { formatOfPath, parseTenantFile, type TenantDirectory, TenantFileInvalid } from "./tenant-file.ts"

export interface TenantFileSource {
  readonly current: () => TenantDirectory
  /** Reads the file again now (what SIGHUP and the watch do); resolves with the version in force. */
  readonly reload: () => TenantDirectory
  readonly close: () => void
}

export interface TenantFileLog {
  readonly taken: (directory: TenantDirectory) => void
  readonly refused: (message: string, kept: TenantDirectory) => void
}

/** Edits arrive as bursts of events (truncate, write, rename): read once they settle. */
const settleMs = 50

/** Reads and validates the file; throws `TenantFileInvalid` (or the read's error) at start. */
export const openTenantFile = (filePath: string, log: TenantFileLog): TenantFileSource => {
  const read = () => parseTenantFile(fs.readFileSync(filePath, "utf8"), formatOfPath(filePath))
  let directory = read()
  log.taken(directory)
  const reload = (): TenantDirectory => {
    try {
      const next = read()
      if (next.version !== directory.version) {
        directory = next
        log.taken(directory)
      }
    } catch (error) {
      const message = error instanceof TenantFileInvalid ? error.message : `unreadable: ${(error as Error).message}`
      log.refused(message, directory)
    }
    return directory
  }
  let timer: NodeJS.Timeout | undefined
  const scheduleReload = () => {
    if (timer !== undefined) clearTimeout(timer)
    timer = setTimeout(() => {
      timer = undefined
      reload()
    }, settleMs)
  }
  const watcher = fs.watch(path.dirname(filePath), (_event, name) => {
    if (name === null || name === path.basename(filePath)) scheduleReload()
  })
  process.on("SIGHUP", scheduleReload)
  return {
    current: () => directory,
    reload,
    close: () => {
      watcher.close()
      process.off("SIGHUP", scheduleReload)
      if (timer !== undefined) clearTimeout(timer)
    },
  }
}
