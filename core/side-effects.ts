/**
 * Side effects as data: what a decision asks the runtime to do once the journal has confirmed the
 * batch holding its events. `decide` returns them beside the events; the runtime carries them out
 * after the commit, at least once, and recomputes the ones still pending from journaled state
 * after a recovery (`pendingEffects`). Domain code reads no clock and sets no timer: a scheduled
 * command carries the time it fires at, and that time is the command's timestamp.
 */
import type { Command } from "./commands.ts"

export type SideEffect =
  /** Run the command on the shard that owns its account (here or on another node), as soon as possible. */
  | { readonly _tag: "Deliver"; readonly command: Command }
  /** Run the command at `atMs` on the shard that owns its account; the command's timestamp is then `atMs`. */
  | { readonly _tag: "Schedule"; readonly atMs: number; readonly command: Command }

export const noEffects: ReadonlyArray<SideEffect> = []
