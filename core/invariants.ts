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
      invariant(account.balanceMinor >= account.floorMinor, `account ${account.accountId} is below its floor`)
      invariant(
        Number.isSafeInteger(account.sequence) && account.sequence >= 1,
        `account ${account.accountId} sequence`,
      )
      return
    }
    case "payment":
    case "deposit":
    case "credit":
      invariant(entity.value.amountMinor > 0n, `${entity.kind} with a non-positive amount`)
      invariant(Number.isFinite(entity.value.createdAtMs), `${entity.kind} without a creation time`)
      return
  }
}
