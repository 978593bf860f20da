/**
 * Turns a decoded operation of an authenticated tenant into a processor call: builds the command
 * with its metadata (correlation id, timestamp) and hands the outcome to the caller's callback.
 * Shared by the WebSocket and HTTP edges so both mean exactly the same thing.
 */
import { randomUUID } from "node:crypto"
import type { OutcomeCallback, Processor } from "../actors/processor.ts"
import type { TenantId } from "../core/ids.ts"
import type { Operation } from "./wire-request.ts"

/** A W3C traceparent when the request carried one (so the trace continues into the journal), else a fresh id. */
const correlationIdOf = (traceparent: string | undefined): string => traceparent ?? randomUUID()

export const dispatch = (
  processor: Processor,
  tenantId: TenantId,
  operation: Operation,
  traceparent: string | undefined,
  callback: OutcomeCallback,
): void => {
  switch (operation.op) {
    case "getAccount":
      processor.getAccount(tenantId, operation.accountId, callback)
      return
    case "getPayment":
      processor.getPayment(tenantId, operation.accountId, operation.paymentId, callback)
      return
    case "openAccount":
      processor.submit(
        {
          _tag: "OpenAccount",
          tenantId,
          correlationId: correlationIdOf(traceparent),
          timestampMs: Date.now(),
          accountId: operation.accountId,
          currency: operation.currency,
          floorMinor: operation.floorMinor,
        },
        callback,
      )
      return
    case "deposit":
      processor.submit(
        {
          _tag: "Deposit",
          tenantId,
          correlationId: correlationIdOf(traceparent),
          timestampMs: Date.now(),
          accountId: operation.accountId,
          depositId: operation.depositId,
          amountMinor: operation.amountMinor,
          currency: operation.currency,
        },
        callback,
      )
      return
    case "transfer":
      processor.submit(
        {
          _tag: "Transfer",
          tenantId,
          correlationId: correlationIdOf(traceparent),
          timestampMs: Date.now(),
          paymentId: operation.paymentId,
          from: operation.from,
          to: operation.to,
          amountMinor: operation.amountMinor,
          currency: operation.currency,
          // The node knows the shard layout and clears this when another node holds the creditor.
          creditorLocal: true,
        },
        callback,
      )
      return
  }
}
