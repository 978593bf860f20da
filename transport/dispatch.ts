/**
 * Turns a decoded operation of an authenticated tenant into a processor call: builds the command
 * with its metadata (correlation id, timestamp) and hands the outcome to the caller's callback.
 * Shared by the WebSocket and HTTP edges so both mean exactly the same thing.
 */
import { randomUUID } from "node:crypto"
import type { OutcomeCallback, Processor } from "../actors/processor.ts"
import type { Command } from "../core/commands.ts"
import { holdSecondsDefault } from "../core/tenant-policy.ts"
import type { Principal } from "../tenancy/key-authenticator.ts"
import type { Scope } from "../tenancy/tenant-file.ts"
import type { Operation, OperationName } from "./wire-request.ts"

/** The scope a key needs for each operation. */
const scopeOfOperation: Readonly<Record<OperationName, Scope>> = {
  openAccount: "payments",
  deposit: "payments",
  transfer: "payments",
  getAccount: "read",
  getPayment: "read",
  authorize: "payments",
  capture: "payments",
  void: "payments",
  refund: "payments",
  reviewPayment: "ops",
}

/** The account whose shard serves an operation: the one it opens, funds or reads, or a payment's debtor. */
export const accountOfOperation = (operation: Operation): string => {
  switch (operation.op) {
    case "openAccount":
    case "deposit":
    case "getAccount":
    case "getPayment":
      return operation.accountId
    case "transfer":
    case "authorize":
    case "capture":
    case "void":
    case "refund":
    case "reviewPayment":
      return operation.from
  }
}

/** Undefined when the scopes allow the operation, else the FORBIDDEN message. */
export const forbiddenMessage = (scopes: ReadonlySet<Scope>, op: OperationName): string | undefined =>
  scopes.has(scopeOfOperation[op]) ? undefined : `the API key lacks the "${scopeOfOperation[op]}" scope ${op} needs`

/** A W3C traceparent when the request carried one (so the trace continues into the journal), else a fresh id. */
const correlationIdOf = (traceparent: string | undefined): string => traceparent ?? randomUUID()

export const dispatch = (
  processor: Processor,
  principal: Principal,
  operation: Operation,
  traceparent: string | undefined,
  callback: OutcomeCallback,
): void => {
  const { tenantId } = principal
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
          tenantPolicy: principal.settings.policy,
        },
        callback,
      )
      return
    case "authorize":
    case "capture":
    case "void":
    case "refund":
    case "reviewPayment":
      processor.submit(lifecycleCommand(principal, operation, correlationIdOf(traceparent)), callback)
      return
  }
}

const lifecycleCommand = (
  principal: Principal,
  operation: Extract<Operation, { readonly op: "authorize" | "capture" | "void" | "refund" | "reviewPayment" }>,
  correlationId: string,
): Command => {
  const meta = { tenantId: principal.tenantId, correlationId, timestampMs: Date.now() }
  switch (operation.op) {
    case "authorize":
      return {
        _tag: "Authorize",
        ...meta,
        paymentId: operation.paymentId,
        from: operation.from,
        to: operation.to,
        amountMinor: operation.amountMinor,
        currency: operation.currency,
        holdMs: operation.holdMs ?? principal.settings.defaultHoldMs ?? holdSecondsDefault * 1000,
        tenantPolicy: principal.settings.policy,
      }
    case "capture":
      return {
        _tag: "Capture",
        ...meta,
        paymentId: operation.paymentId,
        from: operation.from,
        captureId: operation.captureId,
        amount: operation.amount,
        creditorLocal: true,
        tenantPolicy: principal.settings.policy,
      }
    case "void":
      return { _tag: "Void", ...meta, paymentId: operation.paymentId, from: operation.from }
    case "refund":
      return {
        _tag: "Refund",
        ...meta,
        paymentId: operation.paymentId,
        from: operation.from,
        refundId: operation.refundId,
        amount: operation.amount,
        creditorLocal: true,
      }
    case "reviewPayment":
      return {
        _tag: "ReviewPayment",
        ...meta,
        paymentId: operation.paymentId,
        from: operation.from,
        decision: operation.decision,
        creditorLocal: true,
        tenantPolicy: principal.settings.policy,
      }
  }
}
