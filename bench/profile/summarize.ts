/**
 * Where the time goes, from a V8 `.cpuprofile` (what `node --cpu-prof` writes): the functions with
 * the most self time, in milliseconds and as a share of the profile's whole time (idle, GC and
 * "(program)" included, so a mostly idle server reads as such). Frames of the same function, file
 * and line are merged, because V8 gives a function one node per distinct call path.
 * CLI: `node --import tsx bench/profile/summarize.ts <file.cpuprofile or directory> [top]` (a directory:
 * its newest profile).
 */
import { readdirSync, readFileSync, statSync } from "node:fs"
import { join, relative } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"

interface CallFrame {
  readonly functionName: string
  readonly url: string
  /** 0-based, -1 when unknown. */
  readonly lineNumber: number
}

interface ProfileNode {
  readonly id: number
  readonly callFrame: CallFrame
  readonly hitCount?: number
}

interface CpuProfile {
  readonly nodes: ReadonlyArray<ProfileNode>
  readonly startTime: number
  readonly endTime: number
  readonly samples?: ReadonlyArray<number>
  /** Microseconds between consecutive samples; the first is from startTime. */
  readonly timeDeltas?: ReadonlyArray<number>
}

export interface FrameSummary {
  readonly name: string
  readonly url: string
  /** 1-based; 0 when V8 did not know it (native and synthetic frames). */
  readonly line: number
  readonly selfPercent: number
  readonly selfMs: number
}

/**
 * Microseconds of self time per node id. With samples and time deltas (what node writes), a sample
 * lasts until the next one, the last until the profile's end; older profiles only count hits, so
 * each hit gets an equal share of the profile's span.
 */
const selfMicrosByNode = (profile: CpuProfile): Map<number, number> => {
  const byNode = new Map<number, number>()
  const { samples, timeDeltas } = profile
  if (samples !== undefined && timeDeltas !== undefined && samples.length === timeDeltas.length && samples.length > 0) {
    let timestamp = profile.startTime
    for (let index = 0; index < samples.length; index++) {
      timestamp += timeDeltas[index] ?? 0
      const next = index + 1 < samples.length ? timestamp + (timeDeltas[index + 1] ?? 0) : profile.endTime
      const node = samples[index] as number
      byNode.set(node, (byNode.get(node) ?? 0) + Math.max(0, next - timestamp))
    }
    return byNode
  }
  const hits = profile.nodes.reduce((sum, node) => sum + (node.hitCount ?? 0), 0)
  const microsPerHit = hits > 0 ? (profile.endTime - profile.startTime) / hits : 0
  for (const node of profile.nodes) byNode.set(node.id, (node.hitCount ?? 0) * microsPerHit)
  return byNode
}

const isCpuProfile = (value: unknown): value is CpuProfile =>
  typeof value === "object" &&
  value !== null &&
  Array.isArray((value as { nodes?: unknown }).nodes) &&
  typeof (value as { startTime?: unknown }).startTime === "number" &&
  typeof (value as { endTime?: unknown }).endTime === "number"

/** The top `top` frames by self time of a parsed profile. */
export const summarizeProfile = (profile: CpuProfile, top = 15): Array<FrameSummary> => {
  const selfMicros = selfMicrosByNode(profile)
  const merged = new Map<string, { name: string; url: string; line: number; micros: number }>()
  let totalMicros = 0
  for (const node of profile.nodes) {
    const micros = selfMicros.get(node.id) ?? 0
    totalMicros += micros
    const name = node.callFrame.functionName === "" ? "(anonymous)" : node.callFrame.functionName
    const line = node.callFrame.lineNumber + 1
    const key = `${name}\u0000${node.callFrame.url}\u0000${line}`
    const entry = merged.get(key)
    if (entry === undefined) merged.set(key, { name, url: node.callFrame.url, line, micros })
    else entry.micros += micros
  }
  return [...merged.values()]
    .filter((entry) => entry.micros > 0)
    .sort((left, right) => right.micros - left.micros)
    .slice(0, top)
    .map((entry) => ({
      name: entry.name,
      url: entry.url,
      line: entry.line,
      selfPercent: totalMicros > 0 ? (entry.micros / totalMicros) * 100 : 0,
      selfMs: entry.micros / 1000,
    }))
}

/** The top `top` frames by self time of the `.cpuprofile` at `path`. */
export const summarizeCpuProfile = (path: string, top = 15): Array<FrameSummary> => {
  const parsed: unknown = JSON.parse(readFileSync(path, "utf8"))
  if (!isCpuProfile(parsed)) throw new Error(`${path} is not a V8 .cpuprofile (nodes, startTime, endTime)`)
  return summarizeProfile(parsed, top)
}

/** Node names profiles `CPU.<date>.<time>.<pid>.<thread>.<sequence>.cpuprofile`; thread 0 is the main one. */
const profileNamePattern = /\.(\d+)\.(\d+)\.\d+\.cpuprofile$/

/**
 * The newest main-thread `.cpuprofile` in `directory` (what `--cpu-prof-dir` receives), or
 * undefined when there is none. Worker threads (tsx's module loader is one) get files of their
 * own, which say nothing about the server's work. A process writes its profiles only when it exits
 * by itself (process.exit included), not when killed by a signal it does not handle.
 */
export const latestCpuProfile = (directory: string): string | undefined => {
  const profiles = readdirSync(directory)
    .filter((name) => name.endsWith(".cpuprofile"))
    .map((name) => ({
      path: join(directory, name),
      mainThread: profileNamePattern.exec(name)?.[2] === "0",
      modifiedMs: statSync(join(directory, name)).mtimeMs,
    }))
    .sort((left, right) => Number(right.mainThread) - Number(left.mainThread) || right.modifiedMs - left.modifiedMs)
  return profiles[0]?.path
}

/** A frame's place, relative to the working directory when it is a local file. */
export const describeLocation = (frame: FrameSummary): string => {
  if (frame.url === "") return ""
  const path = frame.url.startsWith("file://") ? relative(process.cwd(), fileURLToPath(frame.url)) : frame.url
  return frame.line > 0 ? `${path}:${frame.line}` : path
}

export const formatFrames = (frames: ReadonlyArray<FrameSummary>): string =>
  [
    "  self %   self ms  function (where)",
    ...frames.map(
      (frame) =>
        `${frame.selfPercent.toFixed(1).padStart(8)} ${frame.selfMs.toFixed(1).padStart(9)}  ${frame.name}` +
        (frame.url === "" ? "" : `  (${describeLocation(frame)})`),
    ),
  ].join("\n")

const main = () => {
  const path = process.argv[2]
  if (path === undefined) {
    console.error("usage: node --import tsx bench/profile/summarize.ts <file.cpuprofile | directory> [top]")
    process.exit(2)
  }
  const top = Number(process.argv[3] ?? "15")
  const file = statSync(path).isDirectory() ? latestCpuProfile(path) : path
  if (file === undefined) throw new Error(`no .cpuprofile in ${path}`)
  console.log(`${file}:`)
  console.log(formatFrames(summarizeCpuProfile(file, Number.isInteger(top) && top > 0 ? top : 15)))
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) main()
