/**
 * The authorize-capture flow of one generator worker. The generator owns the schedule, the timers,
 * the connections and the payment's figures; this flow owns what happens between the two steps:
 * the authorizations in flight (and who pays), the captures waiting for their time on each
 * connection, the captures in flight (and when each was meant to leave), and each step's figures.
 *
 * A capture is due `captureDelayMs` after its authorization's answer arrived and leaves on the
 * connection that carried the authorization; its latency counts from that due time, so a capture
 * held back by a full connection or a late timer shows it. Every structure has a bound: the
 * in-flight maps hold only requests a connection has outstanding (at most its in-flight bound, which
 * is asserted), and each connection's waiting captures at most `captureQueueCapacityOf`, beyond
 * which a capture is dropped and counted as GENERATOR_CAPTURE_QUEUE.
 */
import type { Channel } from "./channels.ts"
import { encodeHistogram, newLatencyHistogram, recordLatencyMs } from "./histograms.ts"
import type { OperationReport } from "./messages.ts"
import type { AuthorizeCaptureWorkload } from "./plan.ts"
import { authorizeFields, captureFields, paymentIdOf, paymentStatusOf, unexpectedStatusCodeOf } from "./workload.ts"

/** Request ids of captures: the payment's schedule index plus this, far above any schedule's length. */
export const captureRequestIdBase = 2 ** 40

export const captureRequestIdOf = (index: number): number => index + captureRequestIdBase

export const isCaptureRequestId = (requestId: number): boolean => requestId >= captureRequestIdBase

/** The generator-side drop of a capture that found its connection's queue full. */
export const captureQueueFullCode = "GENERATOR_CAPTURE_QUEUE"

/** The statuses a capture may answer with: settled, or pending while another node applies the credit. */
const capturedStatuses: ReadonlySet<string> = new Set(["settled", "pending"])

/**
 * Waiting captures one connection may hold: the worker's backlog bound shared among its
 * connections, so a worker holds no more waiting captures than it may hold waiting authorizations.
 */
export const captureQueueCapacityOf = (backlogMax: number, connections: number): number =>
  Math.max(1, Math.floor(backlogMax / connections))

/**
 * A bounded FIFO of the captures one connection has waiting. Due times never decrease along it:
 * answers arrive in time order on one event loop and the delay is the same for all.
 */
export class CaptureQueue {
  private readonly indexes: Float64Array
  private readonly debtors: Float64Array
  private readonly dueTimesMs: Float64Array
  private head = 0
  size = 0

  constructor(readonly capacity: number) {
    this.indexes = new Float64Array(capacity)
    this.debtors = new Float64Array(capacity)
    this.dueTimesMs = new Float64Array(capacity)
  }

  /** False when full: the caller drops the capture and counts it. */
  push(index: number, from: number, dueMs: number): boolean {
    if (this.size === this.capacity) return false
    const slot = (this.head + this.size) % this.capacity
    const lastDueMs = this.dueTimesMs[(slot + this.capacity - 1) % this.capacity] as number
    if (this.size > 0 && dueMs < lastDueMs) throw new Error("assertion: capture due times go back")
    this.indexes[slot] = index
    this.debtors[slot] = from
    this.dueTimesMs[slot] = dueMs
    this.size++
    return true
  }

  /** When the first waiting capture is due; +Infinity when none waits. */
  headDueMs(): number {
    return this.size === 0 ? Number.POSITIVE_INFINITY : (this.dueTimesMs[this.head] as number)
  }

  shift(): { readonly index: number; readonly from: number; readonly dueMs: number } | undefined {
    if (this.size === 0) return undefined
    const slot = this.head
    this.head = (this.head + 1) % this.capacity
    this.size--
    return {
      index: this.indexes[slot] as number,
      from: this.debtors[slot] as number,
      dueMs: this.dueTimesMs[slot] as number,
    }
  }
}

/** One operation's figures over the payments due after warm-up. */
class OperationTally {
  due = 0
  sent = 0
  completed = 0
  private readonly errorsByCode = new Map<string, number>()
  private readonly histogram = newLatencyHistogram()

  constructor(private readonly operation: OperationReport["operation"]) {}

  complete(latencyMs: number): void {
    this.completed++
    recordLatencyMs(this.histogram, latencyMs)
  }

  fail(code: string): void {
    this.errorsByCode.set(code, (this.errorsByCode.get(code) ?? 0) + 1)
  }

  report(): OperationReport {
    return {
      operation: this.operation,
      due: this.due,
      sent: this.sent,
      completed: this.completed,
      errorsByCode: Object.fromEntries(this.errorsByCode),
      histogramBase64: encodeHistogram(this.histogram),
    }
  }
}

/** What the flow needs from its generator: the schedule, and where a payment's outcome goes. */
export interface FlowHost {
  readonly runId: string
  readonly dueTimeMs: (index: number) => number
  readonly isRecorded: (dueMs: number) => boolean
  /** The generator's send-lag histogram: a capture leaving late is the generator's share of latency too. */
  readonly recordSendLag: (lagMs: number) => void
  /** The payment is done: `excludedMs` is the deliberate wait that is not latency. */
  readonly paymentCompleted: (index: number, nowMs: number, excludedMs: number) => void
  readonly paymentFailed: (index: number, code: string) => void
}

export class AuthorizeCaptureFlow {
  /** Schedule index of each authorization in flight -> its debtor's account index. */
  private readonly authorizationsInFlight = new Map<number, number>()
  /** Schedule index of each capture in flight -> when it was due. */
  private readonly capturesInFlight = new Map<number, number>()
  private readonly queues = new Map<Channel, CaptureQueue>()
  private readonly authorize = new OperationTally("authorize")
  private readonly capture = new OperationTally("capture")
  private inFlightMax = 0

  constructor(
    private readonly workload: AuthorizeCaptureWorkload,
    private readonly host: FlowHost,
  ) {}

  /** Gives each connection its queue of waiting captures; the in-flight maps are bounded by the connections' bounds. */
  attach(channels: ReadonlyArray<Channel>, backlogMax: number): void {
    const capacity = captureQueueCapacityOf(backlogMax, channels.length)
    for (const channel of channels) this.queues.set(channel, new CaptureQueue(capacity))
    this.inFlightMax = channels.reduce((sum, channel) => sum + channel.inFlightMax, 0)
  }

  /** The generator calls this where it would send a transfer: same schedule, same pick. */
  sendAuthorization(channel: Channel, index: number, from: number, to: number): void {
    this.authorizationsInFlight.set(index, from)
    this.assertBounded(this.authorizationsInFlight)
    channel.send(index, authorizeFields(this.workload, paymentIdOf(this.host.runId, index), from, to), "authorize")
    if (this.host.isRecorded(this.host.dueTimeMs(index))) this.authorize.sent++
  }

  /** Routes an answer (or a failure the generator declares for a request) by its request id. */
  settle(
    channel: Channel,
    requestId: number,
    errorCode: string | undefined,
    text: string | undefined,
    nowMs: number,
  ): void {
    if (isCaptureRequestId(requestId)) this.captureSettled(requestId - captureRequestIdBase, errorCode, text, nowMs)
    else this.authorizationSettled(channel, requestId, errorCode, text, nowMs)
  }

  /** Sends the captures due on `channel` while it has free slots; a closed connection fails its captures. */
  sendDueCaptures(channel: Channel, nowMs: number): void {
    const queue = this.queues.get(channel)
    if (queue === undefined) throw new Error("assertion: a channel the flow was not attached to")
    while (queue.headDueMs() <= nowMs) {
      if (!channel.isOpen()) {
        this.failQueued(queue, "SOCKET_CLOSED")
        return
      }
      if (channel.outstanding.size >= channel.inFlightMax) return
      const waiting = queue.shift() as NonNullable<ReturnType<CaptureQueue["shift"]>>
      this.capturesInFlight.set(waiting.index, waiting.dueMs)
      this.assertBounded(this.capturesInFlight)
      const paymentId = paymentIdOf(this.host.runId, waiting.index)
      channel.send(captureRequestIdOf(waiting.index), captureFields(paymentId, waiting.from), "capture")
      if (this.host.isRecorded(this.host.dueTimeMs(waiting.index))) {
        this.capture.sent++
        this.host.recordSendLag(nowMs - waiting.dueMs)
      }
    }
  }

  /**
   * When the next capture falls due after `nowMs`, on any connection; +Infinity when none will.
   * A capture already due is still waiting only because its connection is full (`sendDueCaptures`
   * has run), so the connection's next answer sends it; a tick for it would only spin.
   */
  nextCaptureDueMs(nowMs: number): number {
    let earliest = Number.POSITIVE_INFINITY
    for (const queue of this.queues.values()) {
      const dueMs = queue.headDueMs()
      if (dueMs > nowMs && dueMs < earliest) earliest = dueMs
    }
    return earliest
  }

  waitingCaptures(): number {
    let waiting = 0
    for (const queue of this.queues.values()) waiting += queue.size
    return waiting
  }

  /** Every waiting capture fails with `code` (no connection left, or the drain's deadline). */
  failWaiting(code: string): void {
    for (const queue of this.queues.values()) this.failQueued(queue, code)
  }

  /** Each step's figures; authorizations are due on the generator's schedule, which counts them. */
  reports(authorizationsDue: number): ReadonlyArray<OperationReport> {
    this.authorize.due = authorizationsDue
    return [this.authorize.report(), this.capture.report()]
  }

  private authorizationSettled(
    channel: Channel,
    index: number,
    errorCode: string | undefined,
    text: string | undefined,
    nowMs: number,
  ): void {
    const from = this.authorizationsInFlight.get(index)
    if (from === undefined) throw new Error(`assertion: authorization ${index} answered but not in flight`)
    this.authorizationsInFlight.delete(index)
    const dueMs = this.host.dueTimeMs(index)
    const recorded = this.host.isRecorded(dueMs)
    const status = errorCode === undefined && text !== undefined ? paymentStatusOf(text) : undefined
    const code = errorCode ?? (status === "authorized" ? undefined : unexpectedStatusCodeOf(status, text))
    if (code !== undefined) {
      if (recorded) this.authorize.fail(code)
      this.host.paymentFailed(index, code)
      return
    }
    if (recorded) {
      this.authorize.complete(nowMs - dueMs)
      this.capture.due++
    }
    const queued = (this.queues.get(channel) as CaptureQueue).push(index, from, nowMs + this.workload.captureDelayMs)
    if (queued) return
    if (recorded) this.capture.fail(captureQueueFullCode)
    this.host.paymentFailed(index, captureQueueFullCode)
  }

  private captureSettled(index: number, errorCode: string | undefined, text: string | undefined, nowMs: number): void {
    const dueMs = this.capturesInFlight.get(index)
    if (dueMs === undefined) throw new Error(`assertion: capture ${index} answered but not in flight`)
    this.capturesInFlight.delete(index)
    const recorded = this.host.isRecorded(this.host.dueTimeMs(index))
    const status = errorCode === undefined && text !== undefined ? paymentStatusOf(text) : undefined
    const captured = status !== undefined && capturedStatuses.has(status)
    const code = errorCode ?? (captured ? undefined : unexpectedStatusCodeOf(status, text))
    if (code !== undefined) {
      if (recorded) this.capture.fail(code)
      this.host.paymentFailed(index, code)
      return
    }
    if (recorded) this.capture.complete(nowMs - dueMs)
    this.host.paymentCompleted(index, nowMs, this.workload.captureDelayMs)
  }

  private failQueued(queue: CaptureQueue, code: string): void {
    for (let waiting = queue.shift(); waiting !== undefined; waiting = queue.shift()) {
      if (this.host.isRecorded(this.host.dueTimeMs(waiting.index))) this.capture.fail(code)
      this.host.paymentFailed(waiting.index, code)
    }
  }

  /** Each entry is also outstanding on a connection, which never holds more than its in-flight bound. */
  private assertBounded(inFlight: ReadonlyMap<number, number>): void {
    if (inFlight.size > this.inFlightMax) {
      throw new Error(`assertion: ${inFlight.size} requests in flight, above the connections' ${this.inFlightMax}`)
    }
  }
}
