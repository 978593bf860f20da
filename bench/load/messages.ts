/** The IPC messages between `runLoad` and its generator worker processes. */
import type { LoadPlan } from "./plan.ts"

/** One worker's share: global request indexes workerIndex, workerIndex + workers, ... */
export interface WorkerShare {
  readonly plan: LoadPlan
  readonly workerIndex: number
  readonly workers: number
  readonly connections: number
  /** Prefix of every paymentId, so runs against the same node never collide on idempotency keys. */
  readonly runId: string
  readonly drainTimeoutMs: number
  readonly backlogMax: number
}

export type ToWorker =
  | { readonly type: "init"; readonly share: WorkerShare }
  /** The common start in wall-clock ms, slightly in the future so every worker starts together. */
  | { readonly type: "start"; readonly startAtEpochMs: number }

/** Counts of one second of the run (answers by arrival second), for progress and perSecond. */
export interface SecondReport {
  readonly type: "second"
  readonly workerIndex: number
  readonly second: number
  readonly due: number
  readonly sent: number
  readonly completed: number
  readonly errors: number
  readonly histogramBase64: string
}

/** One operation's figures in one worker (authorize-capture), over the payments due after warm-up. */
export interface OperationReport {
  readonly operation: "authorize" | "capture"
  readonly due: number
  readonly sent: number
  readonly completed: number
  readonly errorsByCode: Readonly<Record<string, number>>
  readonly histogramBase64: string
}

export interface DoneReport {
  readonly type: "done"
  readonly workerIndex: number
  /**
   * Requests due after warm-up, sent after warm-up, answered ok after warm-up; for authorize-capture,
   * payments: authorizations due and sent, captures answered.
   */
  readonly due: number
  readonly sent: number
  readonly completed: number
  readonly errorsByCode: Readonly<Record<string, number>>
  readonly histogramBase64: string
  /** How late requests left compared with their due time: the generator's own share of latency. */
  readonly sendLagBase64: string
  readonly lastDueMs: number
  readonly lastAnswerMs: number
  /** CPU the worker used over the run, to check it stays small beside the server's. */
  readonly cpuMicros: number
  /** Only for a workload of more than one operation (authorize-capture). */
  readonly operations?: ReadonlyArray<OperationReport>
}

export type FromWorker =
  | { readonly type: "ready" }
  | { readonly type: "failed"; readonly message: string }
  | SecondReport
  | DoneReport
