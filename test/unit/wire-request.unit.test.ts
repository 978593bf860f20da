/**
 * The wire decoder: every operation, and every kind of bad input the contract lists, with the
 * message that names what is wrong.
 */
import { describe, expect, it } from "vitest"
import {
  decodeFrame,
  decodeOperation,
  type FrameRequest,
  type InvalidRequest,
  readTraceparent,
} from "../../transport/wire-request.ts"

const frame = (fields: Record<string, unknown>): string => JSON.stringify({ reqId: "r1", ...fields })

const decoded = (fields: Record<string, unknown>): FrameRequest => {
  const result = decodeFrame(frame(fields))
  if (result._tag !== "FrameRequest") throw new Error(`expected a request, got ${result.message}`)
  return result
}

const rejected = (text: string): InvalidRequest => {
  const result = decodeFrame(text)
  if (result._tag !== "InvalidRequest")
    throw new Error(
      `expected a rejection, got ${JSON.stringify(result.operation, (_k, v) => (typeof v === "bigint" ? `${v}n` : v))}`,
    )
  return result
}

const messageFor = (fields: Record<string, unknown>): string => rejected(frame(fields)).message

const transferFields = { op: "transfer", paymentId: "p1", from: "a", to: "b", amount: "12.34", currency: "USD" }
const depositFields = { op: "deposit", accountId: "a", depositId: "d1", amount: "5", currency: "JPY" }

describe("decodeFrame: operations", () => {
  it("decodes openAccount with a default floor of zero and with a negative floor", () => {
    expect(decoded({ op: "openAccount", accountId: "a", currency: "USD" }).operation).toEqual({
      op: "openAccount",
      accountId: "a",
      currency: "USD",
      floorMinor: 0n,
    })
    expect(decoded({ op: "openAccount", accountId: "a", currency: "BHD", floor: "-1.5" }).operation).toEqual({
      op: "openAccount",
      accountId: "a",
      currency: "BHD",
      floorMinor: -1500n,
    })
  })

  it("decodes deposit, transfer, getAccount and getPayment", () => {
    expect(decoded(depositFields).operation).toEqual({
      op: "deposit",
      accountId: "a",
      depositId: "d1",
      amountMinor: 5n,
      currency: "JPY",
    })
    expect(decoded(transferFields).operation).toEqual({
      op: "transfer",
      paymentId: "p1",
      from: "a",
      to: "b",
      amountMinor: 1234n,
      currency: "USD",
    })
    expect(decoded({ op: "getAccount", accountId: "a" }).operation).toEqual({ op: "getAccount", accountId: "a" })
    expect(decoded({ op: "getPayment", accountId: "a", paymentId: "p1" }).operation).toEqual({
      op: "getPayment",
      accountId: "a",
      paymentId: "p1",
    })
  })

  it("keeps a numeric or string reqId as given and ignores unknown fields", () => {
    const numeric = decodeFrame(JSON.stringify({ ...transferFields, reqId: 42, note: { any: "thing" } }))
    expect(numeric._tag === "FrameRequest" && numeric.reqId).toBe(42)
    expect(decoded({ ...transferFields, extra: [1, 2] }).reqId).toBe("r1")
  })

  it("accepts amounts at the edges: 18 integer digits and exactly the currency's decimals", () => {
    const largest = decoded({ ...transferFields, amount: "999999999999999999.99" })
    expect(largest.operation.op === "transfer" && largest.operation.amountMinor).toBe(99999999999999999999n)
    const smallest = decoded({ ...transferFields, amount: "0.01" })
    expect(smallest.operation.op === "transfer" && smallest.operation.amountMinor).toBe(1n)
  })

  it("accepts ids of 1 and 128 characters", () => {
    expect(decoded({ op: "getAccount", accountId: "x" }).operation).toEqual({ op: "getAccount", accountId: "x" })
    const longest = "y".repeat(128)
    expect(decoded({ op: "getAccount", accountId: longest }).operation).toEqual({
      op: "getAccount",
      accountId: longest,
    })
  })

  it("carries a valid traceparent and ignores an invalid one", () => {
    const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    expect(decoded({ ...transferFields, traceparent }).traceparent).toBe(traceparent)
    expect(decoded({ ...transferFields, traceparent: "not-a-trace" }).traceparent).toBeUndefined()
    expect(readTraceparent("00-00000000000000000000000000000000-00f067aa0ba902b7-01")).toBeUndefined()
    expect(readTraceparent(undefined)).toBeUndefined()
  })
})

describe("decodeFrame: bad input", () => {
  it("rejects malformed JSON and non-object frames without a reqId", () => {
    for (const text of ["{", "", "not json", "[]", "[1,2]", "null", "42", '"text"', "true"]) {
      const result = rejected(text)
      expect(result.reqId).toBeUndefined()
      expect(result.message).toMatch(/not valid JSON|must be a JSON object/)
    }
  })

  it("rejects a missing or malformed reqId", () => {
    expect(rejected(JSON.stringify({ op: "getAccount", accountId: "a" })).message).toBe("reqId is required")
    for (const reqId of [null, true, { id: 1 }, [1], "", "r".repeat(129)]) {
      const result = rejected(JSON.stringify({ op: "getAccount", accountId: "a", reqId }))
      expect(result.reqId).toBeUndefined()
      expect(result.message).toMatch(/reqId must be/)
    }
  })

  it("rejects unknown or missing ops and keeps the reqId it could read", () => {
    const unknown = rejected(frame({ op: "withdrawEverything" }))
    expect(unknown.reqId).toBe("r1")
    expect(unknown.message).toMatch(/op "withdrawEverything" is not one of/)
    expect(messageFor({ op: 7 })).toMatch(/op a number is not one of/)
    expect(messageFor({ accountId: "a" })).toBe("op is required")
  })

  it("rejects missing fields, naming the field", () => {
    expect(messageFor({ op: "openAccount", currency: "USD" })).toBe("accountId is required")
    expect(messageFor({ op: "openAccount", accountId: "a" })).toBe("currency is required")
    expect(messageFor({ ...depositFields, depositId: undefined })).toBe("depositId is required")
    expect(messageFor({ ...depositFields, amount: undefined })).toBe("amount is required")
    expect(messageFor({ ...transferFields, paymentId: undefined })).toBe("paymentId is required")
    expect(messageFor({ ...transferFields, from: undefined })).toBe("from is required")
    expect(messageFor({ ...transferFields, to: undefined })).toBe("to is required")
    expect(messageFor({ op: "getPayment", accountId: "a" })).toBe("paymentId is required")
    expect(messageFor({ op: "getAccount" })).toBe("accountId is required")
  })

  it("rejects fields of the wrong type", () => {
    expect(messageFor({ op: "getAccount", accountId: 12 })).toBe("accountId must be a string")
    expect(messageFor({ ...transferFields, to: null })).toBe("to must be a string")
    expect(messageFor({ ...transferFields, currency: 840 })).toBe("currency must be a string")
    expect(messageFor({ ...transferFields, amount: 12.34 })).toMatch(/amount must be a decimal string .* not a number/)
    expect(messageFor({ op: "openAccount", accountId: "a", currency: "USD", floor: -5 })).toMatch(
      /floor must be a decimal string/,
    )
  })

  it("rejects ids that are empty or longer than 128 characters", () => {
    expect(messageFor({ op: "getAccount", accountId: "" })).toBe("accountId must be 1 to 128 characters")
    expect(messageFor({ ...transferFields, paymentId: "p".repeat(129) })).toBe("paymentId must be 1 to 128 characters")
  })

  it("rejects unknown currencies", () => {
    for (const currency of ["XXX", "usd", "US", "EURO", ""]) {
      expect(messageFor({ ...transferFields, currency })).toMatch(/is not a known ISO 4217 code/)
    }
  })

  it("rejects amounts with too many decimals for their currency", () => {
    expect(messageFor({ ...transferFields, amount: "1.234" })).toBe("amount has more decimals than USD allows")
    expect(messageFor({ ...depositFields, amount: "5.0" })).toBe("amount has more decimals than JPY allows")
    expect(messageFor({ op: "openAccount", accountId: "a", currency: "USD", floor: "-0.001" })).toBe(
      "floor has more decimals than USD allows",
    )
  })

  it("rejects zero and negative amounts", () => {
    for (const amount of ["0", "0.00", "-1", "-0.01"]) {
      expect(messageFor({ ...transferFields, amount })).toMatch(/amount must be greater than zero|decimal string/)
    }
    expect(messageFor({ ...transferFields, amount: "0.00" })).toBe("amount must be greater than zero")
    expect(messageFor({ ...depositFields, amount: "0" })).toBe("amount must be greater than zero")
  })

  it("rejects amounts over 18 integer digits", () => {
    expect(messageFor({ ...transferFields, amount: "1000000000000000000" })).toBe(
      "amount has more than 18 integer digits",
    )
    expect(messageFor({ op: "openAccount", accountId: "a", currency: "USD", floor: "-1000000000000000000" })).toBe(
      "floor has more than 18 integer digits",
    )
  })

  it("rejects malformed amounts", () => {
    for (const amount of ["", "1e3", "1,00", " 1", "1.", ".5", "01", "+1", "0x10", "NaN", "1.2.3"]) {
      expect(messageFor({ ...transferFields, amount })).toMatch(/amount must be a decimal string in major units/)
    }
  })
})

describe("decodeOperation", () => {
  it("decodes the fields of the operation a route names, the same way as a frame", () => {
    expect(decodeOperation("getAccount", { accountId: "a" })).toEqual({ op: "getAccount", accountId: "a" })
    const result = decodeOperation("deposit", { accountId: "a", depositId: "d", amount: "1.1", currency: "USD" })
    expect(result).toEqual({ op: "deposit", accountId: "a", depositId: "d", amountMinor: 110n, currency: "USD" })
    const invalid = decodeOperation("transfer", { paymentId: "p", from: "a", to: "b", currency: "USD" })
    expect(invalid).toEqual({ _tag: "InvalidRequest", reqId: undefined, message: "amount is required" })
  })
})
