/**
 * Builders of validated commands and a promise wrapper around the Processor's callbacks, for
 * tests that drive the runtime directly.
 */
import type { Outcome, Processor } from "../../actors/processor.ts"
import type { Command } from "../../core/commands.ts"
import { type AccountId, type DepositId, type PaymentId, shardOf, type TenantId } from "../../core/ids.ts"
import type { Currency } from "../../core/money.ts"

export const tenant = "test-tenant" as TenantId
const meta = () => ({ tenantId: tenant, correlationId: "test", timestampMs: Date.now() })

export const open = (accountId: string, currency = "USD", floorMinor = 0n): Command => ({
  _tag: "OpenAccount",
  ...meta(),
  accountId: accountId as AccountId,
  currency: currency as Currency,
  floorMinor,
})

export const deposit = (accountId: string, depositId: string, amountMinor: bigint, currency = "USD"): Command => ({
  _tag: "Deposit",
  ...meta(),
  accountId: accountId as AccountId,
  depositId: depositId as DepositId,
  amountMinor,
  currency: currency as Currency,
})

export const transfer = (
  paymentId: string,
  from: string,
  to: string,
  amountMinor: bigint,
  currency = "USD",
): Command => ({
  _tag: "Transfer",
  ...meta(),
  paymentId: paymentId as PaymentId,
  from: from as AccountId,
  to: to as AccountId,
  amountMinor,
  currency: currency as Currency,
  creditorLocal: false,
})

export const submit = (processor: Processor, command: Command): Promise<Outcome> =>
  new Promise((resolve) => processor.submit(command, resolve))

export const getAccount = (processor: Processor, accountId: string): Promise<Outcome> =>
  new Promise((resolve) => processor.getAccount(tenant, accountId as AccountId, resolve))

export const getPayment = (processor: Processor, from: string, paymentId: string): Promise<Outcome> =>
  new Promise((resolve) => processor.getPayment(tenant, from as AccountId, paymentId as PaymentId, resolve))

/** Account ids that fall in the given shards, found by search: deterministic for a shard count. */
export const accountInShard = (shard: number, shardCount: number, prefix = "acc"): string => {
  for (let index = 0; ; index++) {
    const candidate = `${prefix}-${index}`
    if (shardOf(tenant, candidate as AccountId, shardCount) === shard) return candidate
  }
}

/** Polls a condition until it holds, failing after `timeoutMs`. */
export const eventually = async (condition: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error("condition not met in time")
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}
