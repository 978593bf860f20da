/**
 * The invariants every entity version must satisfy, checked on both sides of a boundary: by
 * `evolve` on each version it produces, and by recovery on each version it decodes from a snapshot.
 * A violation is a bug or corruption, so it throws; nothing goes on from a state that breaks one.
 */
import type { Entity } from "./ledger.ts"

export const invariant: (condition: boolean, message: string) => asserts condition = (condition, message) => {
  if (!condition) throw new Error(`assertion: ${message}`)
}

export const checkEntity = (entity: Entity): void => {
  switch (entity.kind) {
    case "account": {
      const account = entity.value
      invariant(account.floorMinor <= 0n, `account ${account.accountId} has a positive floor`)
      invariant(account.heldMinor >= 0n, `account ${account.accountId} holds a negative amount`)
      // Holds count against the floor: what is held must stay spendable until captured or released.
      invariant(
        account.balanceMinor - account.heldMinor >= account.floorMinor,
        `account ${account.accountId} is below its floor`,
      )
      invariant(
        Number.isSafeInteger(account.sequence) && account.sequence >= 1,
        `account ${account.accountId} sequence`,
      )
      return
    }
    case "payment": {
      const payment = entity.value
      invariant(payment.amountMinor > 0n, "payment with a non-positive amount")
      invariant(Number.isFinite(payment.createdAtMs), "payment without a creation time")
      invariant(
        payment.capturedAmountMinor >= 0n && payment.capturedAmountMinor <= payment.amountMinor,
        `payment ${payment.paymentId} captured more than it authorized`,
      )
      invariant(
        payment.status !== "authorized" || payment.capturedAmountMinor === 0n,
        `authorization ${payment.paymentId} captured while still held`,
      )
      return
    }
    case "deposit":
    case "credit":
      invariant(entity.value.amountMinor > 0n, `${entity.kind} with a non-positive amount`)
      invariant(Number.isFinite(entity.value.createdAtMs), `${entity.kind} without a creation time`)
      return
  }
}
