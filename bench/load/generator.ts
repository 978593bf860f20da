/**
 * The open-loop engine of one generator worker: sends each of its requests when due (a timer loop,
 * never a busy spin), on a connection with a free slot or else into a bounded backlog, and records
 * each answer's latency from the request's due time. Warm-up requests are sent but not recorded.
 */
import type { Channel } from "./channels.ts"
import { encodeHistogram, newLatencyHistogram, recordLatencyMs } from "./histograms.ts"
import type { DoneReport, SecondReport, WorkerShare } from "./messages.ts"
import { dueTimeMs, requestCountOf, type Schedule } from "./schedule.ts"
import { seededRandom, transferFields, transferPickerOf, transfersOf } from "./workload.ts"

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

export interface Generator {
  readonly onAnswer: (channel: Channel, index: number, errorCode: string | undefined) => void
  readonly run: (channels: ReadonlyArray<Channel>, startPerfMs: number) => Promise<DoneReport>
}

export const makeGenerator = (share: WorkerShare, emitSecond: (report: SecondReport) => void): Generator => {
  const { plan, workerIndex, workers, runId } = share
  const schedule: Schedule = { ratePerSecond: plan.ratePerSecond, burst: plan.burst }
  const requestCount = requestCountOf(schedule, plan.durationMs, plan.requestsMax)
  const workload = transfersOf(plan.workload)
  const picker = transferPickerOf(workload, seededRandom(0x9e3779b9 ^ (workerIndex + 1)))
  const backlog = new IndexQueue(share.backlogMax)
  const overall = newLatencyHistogram()
  const sendLag = newLatencyHistogram()
  const errorsByCode = new Map<string, number>()
  const totals = { due: 0, sent: 0, completed: 0, lastDueMs: 0, lastAnswerMs: 0 }
  const second = { index: 0, due: 0, sent: 0, completed: 0, errors: 0, histogram: newLatencyHistogram() }
  let channels: ReadonlyArray<Channel> = []
  let nextIndex = workerIndex
  let roundRobin = 0
  let startPerfMs = 0
  let drainDeadlineMs = Number.POSITIVE_INFINITY
  let finished: ((report: DoneReport) => void) | undefined
  let cpuAtStart = process.cpuUsage()

  const isRecorded = (dueMs: number) => dueMs >= plan.warmupMs
  const nowMsOf = () => performance.now() - startPerfMs

  const emit = () => {
    const { index, due, sent, completed, errors, histogram } = second
    emitSecond({
      type: "second",
      workerIndex,
      second: index,
      due,
      sent,
      completed,
      errors,
      histogramBase64: histogram.totalCount === 0 ? "" : encodeHistogram(histogram),
    })
    Object.assign(second, { due: 0, sent: 0, completed: 0, errors: 0 })
    histogram.reset()
  }

  /** Closes the seconds that ended before `nowMs`, empty ones included, so the parent can aggregate each. */
  const advanceSecond = (nowMs: number) => {
    const current = Math.floor(nowMs / 1000)
    while (second.index < current) {
      emit()
      second.index++
    }
  }

  const freeChannel = (): Channel | undefined => {
    for (let step = 0; step < channels.length; step++) {
      const channel = channels[(roundRobin + step) % channels.length] as Channel
      if (channel.outstanding.size < channel.inFlightMax && channel.isOpen()) {
        roundRobin = (roundRobin + step + 1) % channels.length
        return channel
      }
    }
    return undefined
  }

  const anyOpen = () => channels.some((channel) => channel.isOpen())

  const fail = (index: number, code: string) => {
    second.errors++
    if (isRecorded(dueTimeMs(schedule, index))) errorsByCode.set(code, (errorsByCode.get(code) ?? 0) + 1)
  }

  const sendOn = (channel: Channel, index: number, nowMs: number) => {
    const { from, to } = picker.next()
    channel.send(index, transferFields(workload, `${runId}-${index}`, from, to))
    second.sent++
    const dueMs = dueTimeMs(schedule, index)
    if (!isRecorded(dueMs)) return
    totals.sent++
    recordLatencyMs(sendLag, nowMs - dueMs)
  }

  const dispatchDue = (nowMs: number) => {
    for (const channel of channels) channel.cork()
    while (nextIndex < requestCount) {
      const dueMs = dueTimeMs(schedule, nextIndex)
      if (dueMs > nowMs) break
      const index = nextIndex
      nextIndex += workers
      second.due++
      if (isRecorded(dueMs)) {
        totals.due++
        totals.lastDueMs = dueMs
      }
      const channel = backlog.size === 0 ? freeChannel() : undefined
      if (channel !== undefined) sendOn(channel, index, nowMs)
      else if (!anyOpen()) fail(index, "SOCKET_CLOSED")
      else if (!backlog.push(index)) fail(index, "GENERATOR_BACKLOG")
    }
    for (const channel of channels) channel.uncork()
  }

  /** Every request still waiting or unanswered gets `code`; used at the drain deadline and when all sockets closed. */
  const failWaiting = (code: string, includeOutstanding: boolean) => {
    for (let index = backlog.shift(); index !== undefined; index = backlog.shift()) fail(index, code)
    if (!includeOutstanding) return
    for (const channel of channels) {
      for (const index of channel.outstanding) fail(index, code)
      channel.outstanding.clear()
    }
  }

  const inFlight = () => channels.reduce((sum, channel) => sum + channel.outstanding.size, 0)

  const finish = (nowMs: number) => {
    advanceSecond(nowMs)
    emit()
    const cpu = process.cpuUsage(cpuAtStart)
    finished?.({
      type: "done",
      workerIndex,
      due: totals.due,
      sent: totals.sent,
      completed: totals.completed,
      errorsByCode: Object.fromEntries(errorsByCode),
      histogramBase64: encodeHistogram(overall),
      sendLagBase64: encodeHistogram(sendLag),
      lastDueMs: totals.lastDueMs,
      lastAnswerMs: totals.lastAnswerMs,
      cpuMicros: cpu.user + cpu.system,
    })
    finished = undefined
  }

  const tick = () => {
    if (finished === undefined) return
    const nowMs = nowMsOf()
    advanceSecond(nowMs)
    dispatchDue(nowMs)
    if (!anyOpen()) failWaiting("SOCKET_CLOSED", false)
    if (nextIndex >= requestCount) {
      if (drainDeadlineMs === Number.POSITIVE_INFINITY) drainDeadlineMs = nowMs + share.drainTimeoutMs
      if (backlog.size === 0 && inFlight() === 0) return finish(nowMs)
      if (nowMs >= drainDeadlineMs) {
        failWaiting("TIMEOUT", true)
        return finish(nowMs)
      }
      setTimeout(tick, drainPollMs)
      return
    }
    const waitMs = dueTimeMs(schedule, nextIndex) - nowMsOf()
    // Timers have millisecond resolution: a request may leave up to about 1 ms late, which its
    // latency (counted from the due time) includes; the send-lag histogram reports how much.
    if (waitMs <= 0) setImmediate(tick)
    else setTimeout(tick, Math.max(1, Math.floor(waitMs)))
  }

  const onAnswer = (channel: Channel, index: number, errorCode: string | undefined) => {
    if (finished === undefined) return
    const nowMs = nowMsOf()
    advanceSecond(nowMs)
    if (errorCode === undefined) {
      const dueMs = dueTimeMs(schedule, index)
      second.completed++
      recordLatencyMs(second.histogram, nowMs - dueMs)
      if (isRecorded(dueMs)) {
        totals.completed++
        totals.lastAnswerMs = nowMs
        recordLatencyMs(overall, nowMs - dueMs)
      }
    } else {
      fail(index, errorCode)
    }
    while (backlog.size > 0 && channel.outstanding.size < channel.inFlightMax && channel.isOpen()) {
      sendOn(channel, backlog.shift() as number, nowMs)
    }
  }

  const run = (attached: ReadonlyArray<Channel>, startAt: number): Promise<DoneReport> =>
    new Promise((resolve) => {
      channels = attached
      startPerfMs = startAt
      finished = resolve
      cpuAtStart = process.cpuUsage()
      setTimeout(tick, Math.max(0, startAt - performance.now()))
    })

  return { onAnswer, run }
}
