/**
 * Specs of exact decimal parsing and printing of money: exponents JPY 0, USD 2, BHD 3, every kind
 * of malformed amount the wire may carry, and round trips that never pass through a `number`.
 */
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import {
  type Currency,
  exponentOf,
  formatAmount,
  integerDigitsMax,
  isCurrency,
  parseAmount,
  parseDecimal,
} from "../../core/money.ts"

const jpy = "JPY" as Currency
const usd = "USD" as Currency
const bhd = "BHD" as Currency

describe("currencies", () => {
  it("given ISO 4217 codes, then JPY has exponent 0, USD 2 and BHD 3", () => {
    expect([exponentOf(jpy), exponentOf(usd), exponentOf(bhd)]).toEqual([0, 2, 3])
  })

  it.each(["usd", "XXX", "XAU", "", "US", "USDX", "toString", "__proto__"])(
    "given %j, then it is not a currency",
    (code) => {
      expect(isCurrency(code)).toBe(false)
    },
  )
})

describe("parseAmount", () => {
  it.each([
    ["1", jpy, 1n],
    ["1234", jpy, 1234n],
    ["12.34", usd, 1234n],
    ["12.3", usd, 1230n],
    ["12", usd, 1200n],
    ["0.01", usd, 1n],
    ["0.001", bhd, 1n],
    ["1.5", bhd, 1500n],
    ["999999999999999999", jpy, 999_999_999_999_999_999n],
    ["999999999999999999.99", usd, 99_999_999_999_999_999_999n],
    ["999999999999999999.999", bhd, 999_999_999_999_999_999_999n],
    ["9007199254740993", jpy, 9_007_199_254_740_993n],
  ])("given %j in %s, when parsed, then it is exactly %s minor units", (text, currency, minor) => {
    const parsed = parseAmount(text, currency)
    expect(typeof parsed).toBe("bigint")
    expect(parsed).toBe(minor)
  })

  it.each([
    ["1.0", jpy],
    ["12.345", usd],
    ["0.0001", bhd],
    ["1.000", usd],
  ])("given %j in %s, when parsed, then TOO_MANY_DECIMALS", (text, currency) => {
    expect(parseAmount(text, currency)).toBe("TOO_MANY_DECIMALS")
  })

  it.each([
    ["0", usd],
    ["0.00", usd],
    ["0.000", bhd],
    ["0", jpy],
  ])("given %j in %s, when parsed, then NOT_POSITIVE", (text, currency) => {
    expect(parseAmount(text, currency)).toBe("NOT_POSITIVE")
  })

  it("given 19 integer digits, when parsed, then TOO_LARGE; 18 digits are accepted", () => {
    expect(integerDigitsMax).toBe(18)
    expect(parseAmount("1000000000000000000", jpy)).toBe("TOO_LARGE")
    expect(parseAmount("1000000000000000000.5", usd)).toBe("TOO_LARGE")
    expect(parseAmount("100000000000000000", jpy)).toBe(100_000_000_000_000_000n)
  })

  it.each([
    ["-1", "a sign"],
    ["+1", "a plus sign"],
    ["-0.01", "a negative amount"],
    ["01", "a leading zero"],
    ["00.5", "leading zeros"],
    ["1.", "a point without decimals"],
    [".5", "decimals without an integer part"],
    ["1e3", "an exponent"],
    ["1E3", "an upper-case exponent"],
    ["0x10", "hexadecimal"],
    ["1_000", "digit separators"],
    ["1,00", "a decimal comma"],
    ["1 000", "inner whitespace"],
    [" 1", "leading whitespace"],
    ["1 ", "trailing whitespace"],
    ["1\n", "a trailing newline"],
    ["\t1", "a tab"],
    ["١٢", "Arabic-Indic digits"],
    ["１２", "full-width digits"],
    ["1.５", "a full-width decimal"],
    ["", "nothing"],
    [".", "a lone point"],
    ["1..2", "two points"],
    ["1.2.3", "two decimal parts"],
    ["Infinity", "Infinity"],
    ["NaN", "NaN"],
  ])("given %j (%s), when parsed, then MALFORMED", (text) => {
    expect(parseAmount(text, usd)).toBe("MALFORMED")
  })
})

describe("parseDecimal with a sign (account floors)", () => {
  it("given a negative floor, when parsed with allowNegative, then it is the negative minor amount", () => {
    expect(parseDecimal("-12.5", usd, true)).toBe(-1250n)
    expect(parseDecimal("-1000000", jpy, true)).toBe(-1_000_000n)
  })

  it("given zero or a positive floor, when parsed with allowNegative, then it is accepted as is", () => {
    expect(parseDecimal("0", usd, true)).toBe(0n)
    expect(parseDecimal("-0", usd, true)).toBe(0n)
    expect(parseDecimal("5", bhd, true)).toBe(5000n)
  })

  it.each(["--1", "-", "-+1", "+-1", "- 1", "-.5", "-01", "−1"])(
    "given %j, when parsed with allowNegative, then MALFORMED",
    (text) => {
      expect(parseDecimal(text, usd, true)).toBe("MALFORMED")
    },
  )

  it("given a negative floor, when parsed without allowNegative, then MALFORMED", () => {
    expect(parseDecimal("-1", usd, false)).toBe("MALFORMED")
  })

  it("given a negative floor with 19 integer digits or too many decimals, then the same errors as amounts", () => {
    expect(parseDecimal("-1000000000000000000", jpy, true)).toBe("TOO_LARGE")
    expect(parseDecimal("-1.234", usd, true)).toBe("TOO_MANY_DECIMALS")
  })
})

describe("formatAmount", () => {
  it.each([
    [1n, jpy, "1"],
    [1n, usd, "0.01"],
    [1n, bhd, "0.001"],
    [1234n, usd, "12.34"],
    [1200n, usd, "12.00"],
    [0n, usd, "0.00"],
    [0n, jpy, "0"],
    [-5n, usd, "-0.05"],
    [-1500n, bhd, "-1.500"],
    [-7n, jpy, "-7"],
    [999_999_999_999_999_999_999n, bhd, "999999999999999999.999"],
    [9_007_199_254_740_993n, usd, "90071992547409.93"],
  ])("given %s minor units of %s, when formatted, then %j", (minor, currency, text) => {
    expect(formatAmount(minor, currency)).toBe(text)
  })
})

const currencyArbitrary = fc.constantFrom(jpy, usd, bhd)

/** A canonical amount: 1 to 18 integer digits without leading zero, exactly the exponent in decimals, not zero. */
const canonicalAmount = currencyArbitrary.chain((currency) => {
  const exponent = exponentOf(currency)
  const integerPart = fc.oneof(
    fc.constant("0"),
    fc
      .tuple(fc.integer({ min: 1, max: 9 }), fc.string({ unit: fc.constantFrom(..."0123456789"), maxLength: 17 }))
      .map(([first, rest]) => `${first}${rest}`),
  )
  const fractionPart = fc.string({ unit: fc.constantFrom(..."0123456789"), minLength: exponent, maxLength: exponent })
  return fc
    .tuple(integerPart, fractionPart)
    .map(([integer, fraction]) => (exponent === 0 ? integer : `${integer}.${fraction}`))
    .filter((text) => /[1-9]/.test(text))
    .map((text) => ({ text, currency }))
})

/** Any signed minor amount whose integer part fits the wire's 18 digits, biased to the edges. */
const signedMinor = currencyArbitrary.chain((currency) => {
  const limit = 10n ** BigInt(integerDigitsMax + exponentOf(currency))
  const minor = fc.oneof(
    fc.bigInt(-limit + 1n, limit - 1n),
    fc.bigInt(-1000n, 1000n),
    fc.constantFrom(limit - 1n, -limit + 1n, 2n ** 53n + 1n),
  )
  return minor.map((value) => ({ currency, minor: value }))
})

describe("round trips", () => {
  it("given a canonical amount, when parsed and formatted, then the same text comes back", () => {
    fc.assert(
      fc.property(canonicalAmount, ({ text, currency }) => {
        const minor = parseAmount(text, currency)
        expect(typeof minor).toBe("bigint")
        expect(formatAmount(minor as bigint, currency)).toBe(text)
      }),
      { numRuns: 1000 },
    )
  })

  it("given any minor amount a floor or balance may hold, when formatted and parsed, then the same bigint comes back", () => {
    fc.assert(
      fc.property(signedMinor, ({ currency, minor }) => {
        const parsed = parseDecimal(formatAmount(minor, currency), currency, true)
        expect(typeof parsed).toBe("bigint")
        expect(parsed).toBe(minor)
      }),
      { numRuns: 1000 },
    )
  })

  it("given any string, when parsed, then the result is a bigint or an error code, never a number", () => {
    const text = fc.oneof(fc.string(), fc.string({ unit: fc.constantFrom(..."0123456789.-+e ") }))
    fc.assert(
      fc.property(text, currencyArbitrary, fc.boolean(), (input, currency, allowNegative) => {
        const parsed = parseDecimal(input, currency, allowNegative)
        const kind = typeof parsed === "bigint" ? "bigint" : parsed
        expect(["bigint", "MALFORMED", "TOO_MANY_DECIMALS", "TOO_LARGE"]).toContain(kind)
        if (typeof parsed === "bigint" && !allowNegative) expect(parsed >= 0n).toBe(true)
      }),
      { numRuns: 1000 },
    )
  })

  it("given an amount with fewer decimals than the exponent, when parsed, then it equals the padded canonical form", () => {
    expect(parseAmount("1.5", bhd)).toBe(parseAmount("1.500", bhd))
    expect(parseAmount("7", usd)).toBe(parseAmount("7.00", usd))
  })
})
