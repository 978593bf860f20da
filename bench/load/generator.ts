/**
 * The open-loop engine of one generator worker: sends each of its requests when due (a timer loop,
 * never a busy spin), on a connection with a free slot or else into a bounded backlog, and records
 * each answer's latency from the request's due time. Warm-up requests are sent but not recorded.
 * An authorize-capture workload sends authorizations on this schedule and hands their answers to
 * its flow, which queues each capture for its own due time; the same timer loop sends them.
 */
import { AuthorizeCaptureFlow, captureRequestIdBase } from "./authorize-capture.ts"
import type { Channel } from "./channels.ts"
import { encodeHistogram, newLatencyHistogram, recordLatencyMs } from "./histograms.ts"
import type { DoneReport, SecondReport, WorkerShare } from "./messages.ts"
import type { LoadPlan, PaymentTraffic } from "./plan.ts"
import { dueTimeMs, requestCountOf, type Schedule } from "./schedule.ts"
import {
  paymentIdOf,
  seededRandom,
  type TransferPicker,
  trafficOf,
  transferFields,
  transferPickerOf,
} from "./workload.ts"

/** A bounded FIFO of request indexes waiting for a free connection slot. */
export class IndexQueue {
  private readonly slots: Float64Array
  private head = 0
  size = 0

  constructor(readonly capacity: number) {
    this.slots = new Float64Array(capacity)
  }

  /** False when full: the caller drops the request and counts it. */
  push(index: number): boolean {
    if (this.size === this.capacity) return false
    this.slots[(this.head + this.size) % this.capacity] = index
    this.size++
    return true
  }

  shift(): number | undefined {
    if (this.size === 0) return undefined
    const index = this.slots[this.head]
    this.head = (this.head + 1) % this.capacity
    this.size--
    return index
  }
}

/** Polling period while only answers are awaited: sending is over, nothing is due any more. */
const drainPollMs = 10

/** The counts of the second in progress; answers count in the second they arrive. */
class SecondCounts {
  index = 0
  due = 0
  sent = 0
  completed = 0
  errors = 0
  readonly histogram = newLatencyHistogram()

  isEmpty(): boolean {
    return this.due + this.sent + this.completed + this.errors === 0
  }

  reportAndReset(workerIndex: number): SecondReport {
    const { index, due, sent, completed, errors, histogram } = this
    const report: SecondReport = {
      type: "second",
      workerIndex,
      second: index,
      due,
      sent,
      completed,
      errors,
      histogramBase64: histogram.totalCount === 0 ? "" : encodeHistogram(histogram),
    }
    this.due = 0
    this.sent = 0
    this.completed = 0
    this.errors = 0
    histogram.reset()
    return report
  }
}

export class OpenLoopGenerator {
  private readonly plan: LoadPlan
  private readonly schedule: Schedule
  private readonly requestCount: number
  private readonly traffic: PaymentTraffic
  private readonly picker: TransferPicker
  /** Only for an authorize-capture workload. */
  private readonly flow: AuthorizeCaptureFlow | undefined
  private readonly backlog: IndexQueue
  private readonly overall = newLatencyHistogram()
  private readonly sendLag = newLatencyHistogram()
  private readonly errorsByCode = new Map<string, number>()
  private readonly totals = { due: 0, sent: 0, completed: 0, lastDueMs: 0, lastAnswerMs: 0 }
  private readonly second = new SecondCounts()
  private channels: ReadonlyArray<Channel> = []
  private nextIndex: number
  private roundRobin = 0
  private startPerfMs = 0
  private drainDeadlineMs = Number.POSITIVE_INFINITY
  /** When the pending tick is set to run (run time); +Infinity when none is pending. */
  private wakeAtMs = Number.POSITIVE_INFINITY
  private wakeTimer: NodeJS.Timeout | undefined
  private wakeImmediate: NodeJS.Immediate | undefined
  private finished: ((report: DoneReport) => void) | undefined
  private cpuAtStart = process.cpuUsage()

  constructor(
    private readonly share: WorkerShare,
    private readonly emitSecond: (report: SecondReport) => void,
  ) {
    this.plan = share.plan
    this.schedule = { ratePerSecond: share.plan.ratePerSecond, burst: share.plan.burst }
    this.requestCount = requestCountOf(this.schedule, share.plan.durationMs, share.plan.requestsMax)
    this.traffic = trafficOf(share.plan.workload)
    this.picker = transferPickerOf(this.traffic, seededRandom(0x9e3779b9 ^ (share.workerIndex + 1)))
    this.backlog = new IndexQueue(share.backlogMax)
    this.nextIndex = share.workerIndex
    this.flow = this.flowOf(share)
  }

  private flowOf(share: WorkerShare): AuthorizeCaptureFlow | undefined {
    const workload = share.plan.workload
    if (workload.kind !== "authorize-capture") return undefined
    if (this.requestCount >= captureRequestIdBase) {
      throw new Error(`${this.requestCount} requests: capture request ids start at ${captureRequestIdBase}`)
    }
    return new AuthorizeCaptureFlow(workload, {
      runId: share.runId,
      dueTimeMs: (index) => dueTimeMs(this.schedule, index),
      isRecorded: (dueMs) => this.isRecorded(dueMs),
      recordSendLag: (lagMs) => recordLatencyMs(this.sendLag, lagMs),
      paymentCompleted: (index, nowMs, excludedMs) => this.recordCompleted(index, nowMs, excludedMs),
      paymentFailed: (index, code) => this.fail(index, code),
    })
  }

  /** Sends from `startPerfMs` (performance.now() time) on; resolves with the worker's figures once drained. */
  run(channels: ReadonlyArray<Channel>, startPerfMs: number): Promise<DoneReport> {
    return new Promise((resolve) => {
      this.channels = channels
      this.startPerfMs = startPerfMs
      this.finished = resolve
      this.cpuAtStart = process.cpuUsage()
      this.flow?.attach(channels, this.share.backlogMax)
      this.wakeAtMs = 0
      this.wakeTimer = setTimeout(this.tick, Math.max(0, startPerfMs - performance.now()))
    })
  }

  /**
   * Every channel calls this once per request it sent: `errorCode` undefined for an ok answer,
   * `answerText` the answer as it arrived when there was one.
   */
  readonly onAnswer = (
    channel: Channel,
    index: number,
    errorCode: string | undefined,
    answerText?: string | undefined,
  ): void => {
    if (this.finished === undefined) return
    const nowMs = this.nowMs()
    this.advanceSecond(nowMs)
    this.settle(channel, index, errorCode, answerText, nowMs)
    // A freed slot goes to a capture that is due before an authorization waiting in the backlog.
    this.flow?.sendDueCaptures(channel, nowMs)
    while (this.backlog.size > 0 && channel.outstanding.size < channel.inFlightMax && channel.isOpen()) {
      this.sendOn(channel, this.backlog.shift() as number, nowMs)
    }
    // A capture queued by this answer may be due before the tick that is set.
    if (this.flow !== undefined) this.wakeAt(this.flow.nextCaptureDueMs(nowMs))
  }

  private settle(
    channel: Channel,
    requestId: number,
    errorCode: string | undefined,
    answerText: string | undefined,
    nowMs: number,
  ): void {
    if (this.flow !== undefined) this.flow.settle(channel, requestId, errorCode, answerText, nowMs)
    else if (errorCode === undefined) this.recordCompleted(requestId, nowMs, 0)
    else this.fail(requestId, errorCode)
  }

  private readonly tick = (): void => {
    this.wakeAtMs = Number.POSITIVE_INFINITY
    if (this.finished === undefined) return
    const nowMs = this.nowMs()
    this.advanceSecond(nowMs)
    this.dispatchDue(nowMs)
    if (!this.anyOpen()) this.failWaiting("SOCKET_CLOSED", false)
    const captureDueMs = this.flow?.nextCaptureDueMs(nowMs) ?? Number.POSITIVE_INFINITY
    if (this.nextIndex < this.requestCount) {
      this.wakeAt(Math.min(dueTimeMs(this.schedule, this.nextIndex), captureDueMs))
      return
    }
    if (this.drainDeadlineMs === Number.POSITIVE_INFINITY) this.drainDeadlineMs = nowMs + this.share.drainTimeoutMs
    const waitingCaptures = this.flow?.waitingCaptures() ?? 0
    const drained = this.backlog.size === 0 && this.inFlight() === 0 && waitingCaptures === 0
    if (!drained && nowMs < this.drainDeadlineMs) {
      this.wakeAt(Math.min(nowMs + drainPollMs, captureDueMs))
      return
    }
    if (!drained) this.failWaiting("TIMEOUT", true)
    this.finish(nowMs)
  }

  /** Sets the tick for `atMs` (run time), unless one is already set for then or earlier. */
  private wakeAt(atMs: number): void {
    if (atMs >= this.wakeAtMs) return
    clearTimeout(this.wakeTimer)
    clearImmediate(this.wakeImmediate)
    this.wakeTimer = undefined
    this.wakeImmediate = undefined
    this.wakeAtMs = atMs
    const waitMs = atMs - this.nowMs()
    // Timers have millisecond resolution: a request may leave up to about 1 ms late, which its
    // latency (counted from the due time) includes; the send-lag histogram reports how much.
    if (waitMs <= 0) this.wakeImmediate = setImmediate(this.tick)
    else this.wakeTimer = setTimeout(this.tick, Math.max(1, Math.floor(waitMs)))
  }

  private dispatchDue(nowMs: number): void {
    for (const channel of this.channels) channel.cork()
    // Captures first: each was due before the authorizations that fall due now.
    if (this.flow !== undefined) for (const channel of this.channels) this.flow.sendDueCaptures(channel, nowMs)
    while (this.nextIndex < this.requestCount) {
      const dueMs = dueTimeMs(this.schedule, this.nextIndex)
      if (dueMs > nowMs) break
      const index = this.nextIndex
      this.nextIndex += this.share.workers
      this.second.due++
      if (this.isRecorded(dueMs)) {
        this.totals.due++
        this.totals.lastDueMs = dueMs
      }
      // Behind a non-empty backlog a request waits its turn, even if a slot is free right now.
      const channel = this.backlog.size === 0 ? this.freeChannel() : undefined
      if (channel !== undefined) this.sendOn(channel, index, nowMs)
      else if (!this.anyOpen()) this.fail(index, "SOCKET_CLOSED")
      else if (!this.backlog.push(index)) this.fail(index, "GENERATOR_BACKLOG")
    }
    for (const channel of this.channels) channel.uncork()
  }

  private sendOn(channel: Channel, index: number, nowMs: number): void {
    const { from, to } = this.picker.next()
    if (this.flow !== undefined) this.flow.sendAuthorization(channel, index, from, to)
    else channel.send(index, transferFields(this.traffic, paymentIdOf(this.share.runId, index), from, to), "transfer")
    this.second.sent++
    const dueMs = dueTimeMs(this.schedule, index)
    if (!this.isRecorded(dueMs)) return
    this.totals.sent++
    recordLatencyMs(this.sendLag, nowMs - dueMs)
  }

  /** `excludedMs` is time the workload waits on purpose (a capture's delay), which is not latency. */
  private recordCompleted(index: number, nowMs: number, excludedMs: number): void {
    const dueMs = dueTimeMs(this.schedule, index)
    const latencyMs = nowMs - dueMs - excludedMs
    this.second.completed++
    recordLatencyMs(this.second.histogram, latencyMs)
    if (!this.isRecorded(dueMs)) return
    this.totals.completed++
    // The achieved rate's window ends at the last answer, less the wait on purpose, as latency does.
    this.totals.lastAnswerMs = nowMs - excludedMs
    recordLatencyMs(this.overall, latencyMs)
  }

  private fail(index: number, code: string): void {
    this.second.errors++
    if (this.isRecorded(dueTimeMs(this.schedule, index))) {
      this.errorsByCode.set(code, (this.errorsByCode.get(code) ?? 0) + 1)
    }
  }

  /** Every request still waiting (and, at the drain deadline, unanswered) fails with `code`. */
  private failWaiting(code: string, includeOutstanding: boolean): void {
    for (let index = this.backlog.shift(); index !== undefined; index = this.backlog.shift()) this.fail(index, code)
    this.flow?.failWaiting(code)
    if (!includeOutstanding) return
    const nowMs = this.nowMs()
    for (const channel of this.channels) {
      for (const requestId of channel.outstanding) this.settle(channel, requestId, code, undefined, nowMs)
      channel.outstanding.clear()
    }
  }

  private freeChannel(): Channel | undefined {
    const channels = this.channels
    for (let step = 0; step < channels.length; step++) {
      const channel = channels[(this.roundRobin + step) % channels.length] as Channel
      if (channel.outstanding.size < channel.inFlightMax && channel.isOpen()) {
        this.roundRobin = (this.roundRobin + step + 1) % channels.length
        return channel
      }
    }
    return undefined
  }

  /** Closes the seconds that ended before `nowMs`, empty ones included, so the parent can aggregate each. */
  private advanceSecond(nowMs: number): void {
    const current = Math.floor(nowMs / 1000)
    while (this.second.index < current) {
      this.emitSecond(this.second.reportAndReset(this.share.workerIndex))
      this.second.index++
    }
  }

  private finish(nowMs: number): void {
    clearTimeout(this.wakeTimer)
    clearImmediate(this.wakeImmediate)
    this.advanceSecond(nowMs)
    // The last, partial second; an empty one would read as a drop to zero in the throughput plot.
    if (!this.second.isEmpty()) this.emitSecond(this.second.reportAndReset(this.share.workerIndex))
    const cpu = process.cpuUsage(this.cpuAtStart)
    this.finished?.({
      type: "done",
      workerIndex: this.share.workerIndex,
      ...this.totals,
      errorsByCode: Object.fromEntries(this.errorsByCode),
      histogramBase64: encodeHistogram(this.overall),
      sendLagBase64: encodeHistogram(this.sendLag),
      cpuMicros: cpu.user + cpu.system,
      ...(this.flow === undefined ? {} : { operations: this.flow.reports(this.totals.due) }),
    })
    this.finished = undefined
  }

  private isRecorded(dueMs: number): boolean {
    return dueMs >= this.plan.warmupMs
  }

  private nowMs(): number {
    return performance.now() - this.startPerfMs
  }

  private anyOpen(): boolean {
    return this.channels.some((channel) => channel.isOpen())
  }

  private inFlight(): number {
    return this.channels.reduce((sum, channel) => sum + channel.outstanding.size, 0)
  }
}
