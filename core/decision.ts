/**
 * What `decide` returns: a rejection that changes nothing, or the events the command causes with
 * the side effects to carry out once they are durable. An accepted decision with no events is an
 * idempotent repeat (or a saga step with nothing left to do); the caller answers from the state
 * the original left behind.
 */
import type { Command } from "./commands.ts"
import type { Rejection } from "./errors.ts"
import { type Event, eventSchemaVersion } from "./events.ts"
import type { AccountId, TenantId } from "./ids.ts"
import { noEffects, type SideEffect } from "./side-effects.ts"

export interface Accepted {
  readonly _tag: "Accepted"
  readonly events: ReadonlyArray<Event>
  readonly effects: ReadonlyArray<SideEffect>
}

export type Decision = Rejection | Accepted

const noEvents: ReadonlyArray<Event> = []

export const accept = (events: ReadonlyArray<Event>, effects: ReadonlyArray<SideEffect> = noEffects): Accepted => ({
  _tag: "Accepted",
  events,
  effects,
})

/** Accepted, with nothing to record or do. */
export const unchanged: Accepted = accept(noEvents)

export interface Envelope {
  readonly schemaVersion: number
  readonly tenantId: TenantId
  readonly accountId: AccountId
  readonly paymentId: string | null
  readonly correlationId: string
  readonly sequence: number
  readonly timestampMs: number
}

/** The envelope every event carries, from the command that caused it. */
export const envelope = (
  command: Command,
  accountId: AccountId,
  paymentId: string | null,
  sequence: number,
): Envelope => ({
  schemaVersion: eventSchemaVersion,
  tenantId: command.tenantId,
  accountId,
  paymentId,
  correlationId: command.correlationId,
  sequence,
  timestampMs: command.timestampMs,
})
