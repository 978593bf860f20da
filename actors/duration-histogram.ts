/**
 * A fixed-bucket histogram of durations for the metrics endpoint: counts per upper bound in
 * milliseconds, cumulative as Prometheus expects, with their sum. Constant memory, one increment
 * per observation.
 */
export const durationBucketsMs: ReadonlyArray<number> = [
  0.5, 1, 2, 3, 5, 7.5, 10, 15, 25, 50, 100, 250, 500, 1000, 5000,
]

export class DurationHistogram {
  private readonly counts = new Float64Array(durationBucketsMs.length + 1)
  private sumMs = 0

  record(durationMs: number): void {
    let index = 0
    while (index < durationBucketsMs.length && durationMs > (durationBucketsMs[index] as number)) index++
    this.counts[index] = (this.counts[index] ?? 0) + 1
    this.sumMs += durationMs
  }

  /** Cumulative counts per bucket (the last is +Inf), and the sum in milliseconds. */
  snapshot(): { readonly cumulative: ReadonlyArray<number>; readonly sumMs: number; readonly count: number } {
    const cumulative: Array<number> = []
    let running = 0
    for (const count of this.counts) {
      running += count
      cumulative.push(running)
    }
    return { cumulative, sumMs: this.sumMs, count: running }
  }

  /** Adds another histogram's counts (a retired incarnation's) to this one. */
  addAll(other: DurationHistogram): void {
    other.counts.forEach((count, index) => {
      this.counts[index] = (this.counts[index] ?? 0) + count
    })
    this.sumMs += other.sumMs
  }
}
