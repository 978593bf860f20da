/**
 * The runtime's only sources of time and of "later": the wall clock for command timestamps and
 * expiries, `defer` for gathering one event-loop turn's commands into a flush, and `after` for
 * timers. The system clock is the default; a simulated one lets tests (and a deterministic
 * simulation of shards, crashes and message faults) drive the runtime step by step.
 */
export interface RuntimeClock {
  readonly nowMs: () => number
  /** Runs `task` after the current I/O phase, so every frame read in this turn has been handled. */
  readonly defer: (task: () => void) => void
  /** Runs `task` after `delayMs`; the returned function cancels it. Timers never keep a process alive. */
  readonly after: (delayMs: number, task: () => void) => () => void
}

export const systemClock: RuntimeClock = {
  nowMs: () => Date.now(),
  defer: (task) => {
    setImmediate(task)
  },
  after: (delayMs, task) => {
    const timer = setTimeout(task, delayMs)
    timer.unref()
    return () => clearTimeout(timer)
  },
}

interface SimulatedTimer {
  readonly atMs: number
  readonly order: number
  readonly task: () => void
  cancelled: boolean
}

/** A clock that moves only when told: deferred tasks run on `runDeferred`, timers as `advance` passes them. */
export class SimulatedClock implements RuntimeClock {
  private now: number
  private deferred: Array<() => void> = []
  private timers: Array<SimulatedTimer> = []
  private order = 0

  constructor(startMs = 1_700_000_000_000) {
    this.now = startMs
  }

  readonly nowMs = (): number => this.now

  readonly defer = (task: () => void): void => {
    this.deferred.push(task)
  }

  readonly after = (delayMs: number, task: () => void): (() => void) => {
    const timer: SimulatedTimer = { atMs: this.now + Math.max(0, delayMs), order: this.order++, task, cancelled: false }
    this.timers.push(timer)
    return () => {
      timer.cancelled = true
    }
  }

  /** Runs deferred tasks (and those they defer) until none is left; bounded so a livelock fails loudly. */
  runDeferred(stepsMax = 1_000_000): void {
    for (let steps = 0; this.deferred.length > 0; steps++) {
      if (steps >= stepsMax) throw new Error("simulated clock: deferred tasks never settle")
      const batch = this.deferred
      this.deferred = []
      for (const task of batch) task()
    }
  }

  /** Moves time forward by `ms`, firing due timers in time order and settling deferred work after each. */
  advance(ms: number): void {
    const until = this.now + ms
    this.runDeferred()
    for (;;) {
      this.timers = this.timers.filter((timer) => !timer.cancelled)
      const next = this.timers.reduce<SimulatedTimer | undefined>(
        (earliest, timer) =>
          timer.atMs <= until &&
          (earliest === undefined ||
            timer.atMs < earliest.atMs ||
            (timer.atMs === earliest.atMs && timer.order < earliest.order))
            ? timer
            : earliest,
        undefined,
      )
      if (next === undefined) break
      this.timers = this.timers.filter((timer) => timer !== next)
      this.now = Math.max(this.now, next.atMs)
      next.task()
      this.runDeferred()
    }
    this.now = until
  }

  get pendingTimers(): number {
    return this.timers.filter((timer) => !timer.cancelled).length
  }
}
