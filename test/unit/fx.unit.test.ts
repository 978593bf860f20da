/**
 * Specs of foreign exchange: parsing configured rates at every edge, building and querying a rate
 * table (inverse pairs served exactly, direct entries winning), half-to-even conversion into
 * exponents 0, 2 and 3, amounts beyond 2^53, and the record a payment carries onto the wire.
 */
import { describe, expect, it } from "vitest"
import {
  convert,
  convertAt,
  encodeConversion,
  type FxQuote,
  type FxRate,
  type FxRateConfig,
  type FxRateTable,
  invertRate,
  lookupRate,
  makeRateTable,
  parseRate,
} from "../../core/fx.ts"
import type { Currency } from "../../core/money.ts"

const jpy = "JPY" as Currency
const usd = "USD" as Currency
const eur = "EUR" as Currency
const bhd = "BHD" as Currency
const kwd = "KWD" as Currency
const tryLira = "TRY" as Currency

const rate = (text: string): FxRate => {
  const parsed = parseRate(text)
  if (typeof parsed === "string") throw new Error(`test rate ${text}: ${parsed}`)
  return parsed
}

const table = (configs: ReadonlyArray<FxRateConfig>): FxRateTable => {
  const built = makeRateTable(configs)
  if ("reason" in built) throw new Error(`test table: ${built.reason}`)
  return built
}

const quote = (rates: FxRateTable, from: Currency, to: Currency): FxQuote => {
  const found = lookupRate(rates, from, to)
  if (typeof found === "string") throw new Error(`test quote ${from}/${to}: ${found}`)
  return found
}

const config = (base: string, quote: string, rateText: string): FxRateConfig => ({
  base,
  quote,
  rate: rateText,
  source: "ecb",
  asOfMs: 1_700_000_000_000,
})

describe("parseRate", () => {
  it.each([
    ["1.0842", 10842n, 10_000n],
    ["0.000067", 67n, 1_000_000n],
    ["157.23", 15723n, 100n],
    ["3", 3n, 1n],
    ["1.50", 150n, 100n],
    ["0.000000000001", 1n, 10n ** 12n],
    ["999999999999", 999999999999n, 1n],
    ["999999999999.999999999999", 10n ** 24n - 1n, 10n ** 12n],
  ])("given %j, when parsed, then it is exactly %s / %s and keeps its text", (text, numerator, denominator) => {
    expect(parseRate(text)).toEqual({ numerator, denominator, text })
  })

  it.each([
    ["1.123456789012", "1.1234567890123"],
    ["0.000000000001", "0.0000000000001"],
  ])("given 12 fractional digits (%j) it parses, when 13 (%j), then TOO_PRECISE", (twelve, thirteen) => {
    expect(typeof parseRate(twelve)).toBe("object")
    expect(parseRate(thirteen)).toBe("TOO_PRECISE")
  })

  it("given 12 integer digits it parses, when 13, then TOO_LARGE", () => {
    expect(typeof parseRate("100000000000")).toBe("object")
    expect(parseRate("1000000000000")).toBe("TOO_LARGE")
    expect(parseRate("1000000000000.5")).toBe("TOO_LARGE")
  })

  it.each(["0", "0.0", "0.000000000000", "-1.5", "-0", "-0.000067"])("given %j, then NOT_POSITIVE", (text) => {
    expect(parseRate(text)).toBe("NOT_POSITIVE")
  })

  it("given 13 fractional zeros, then the shape error TOO_PRECISE is reported before the value", () => {
    expect(parseRate("0.0000000000000")).toBe("TOO_PRECISE")
  })

  it.each([
    "",
    "1.",
    ".5",
    "01.5",
    "00",
    "+1",
    "1e3",
    "1E-3",
    " 1",
    "1 ",
    "1,5",
    "1/3",
    "NaN",
    "Infinity",
    "0x10",
    "--1",
  ])("given %j, then MALFORMED", (text) => {
    expect(parseRate(text)).toBe("MALFORMED")
  })
})

describe("invertRate", () => {
  it("given rate 3, when inverted, then it is exactly 1/3, not a rounded decimal", () => {
    expect(invertRate(rate("3"))).toEqual({ numerator: 1n, denominator: 3n, text: "1/3" })
  })

  it("given rate 1.0842, when inverted, then it is printed in lowest terms", () => {
    expect(invertRate(rate("1.0842"))).toEqual({ numerator: 5000n, denominator: 5421n, text: "5000/5421" })
  })

  it("given rate 0.5, when inverted, then it is 2/1", () => {
    expect(invertRate(rate("0.5")).text).toBe("2/1")
  })
})

describe("makeRateTable", () => {
  it("given no entries, then the table is empty and every pair is unavailable", () => {
    expect(lookupRate(table([]), eur, usd)).toBe("FX_RATE_UNAVAILABLE")
  })

  it.each([
    [[config("usd", "EUR", "0.9")], { reason: "UNKNOWN_CURRENCY", index: 0, code: "usd" }],
    [[config("USD", "XAU", "0.9")], { reason: "UNKNOWN_CURRENCY", index: 0, code: "XAU" }],
    [[config("EUR", "USD", "1.08"), config("USD", "USD", "1")], { reason: "SAME_CURRENCY", index: 1, currency: usd }],
    [
      [config("EUR", "USD", "1.08"), config("EUR", "USD", "1.09")],
      { reason: "DUPLICATE_PAIR", index: 1, firstIndex: 0 },
    ],
    [[config("EUR", "USD", "1.0842000000001")], { reason: "INVALID_RATE", index: 0, rateError: "TOO_PRECISE" }],
    [[config("EUR", "USD", "0")], { reason: "INVALID_RATE", index: 0, rateError: "NOT_POSITIVE" }],
    [[config("EUR", "USD", "abc")], { reason: "INVALID_RATE", index: 0, rateError: "MALFORMED" }],
  ] as const)("given %j, when built, then it is refused with %j", (configs, error) => {
    expect(makeRateTable(configs)).toEqual(error)
  })

  it.each([Number.NaN, -1, 1.5, Number.POSITIVE_INFINITY, 1e16])(
    "given asOfMs %s, when built, then INVALID_AS_OF",
    (asOfMs) => {
      expect(makeRateTable([{ ...config("EUR", "USD", "1.08"), asOfMs }])).toEqual({
        reason: "INVALID_AS_OF",
        index: 0,
      })
    },
  )

  it("given both directions of a pair, then they are not duplicates", () => {
    const rates = table([config("EUR", "USD", "1.08"), config("USD", "EUR", "0.93")])
    expect([...rates.entries.keys()]).toEqual(["EUR/USD", "USD/EUR"])
  })
})

describe("lookupRate", () => {
  const rates = table([config("EUR", "USD", "1.0842"), config("USD", "JPY", "157.23"), config("JPY", "USD", "0.0064")])

  it("given a configured pair, when looked up, then the direct entry is returned", () => {
    expect(lookupRate(rates, eur, usd)).toEqual({
      base: eur,
      quote: usd,
      rate: rate("1.0842"),
      source: "ecb",
      asOfMs: 1_700_000_000_000,
      direction: "direct",
    })
  })

  it("given only the opposite pair, when looked up, then its exact inverse keeps source and time", () => {
    expect(lookupRate(rates, usd, eur)).toEqual({
      base: usd,
      quote: eur,
      rate: { numerator: 5000n, denominator: 5421n, text: "5000/5421" },
      source: "ecb",
      asOfMs: 1_700_000_000_000,
      direction: "inverse",
    })
  })

  it("given both directions configured, when looked up, then each direct entry wins over the inverse", () => {
    expect(quote(rates, jpy, usd).rate.text).toBe("0.0064")
    expect(quote(rates, usd, jpy).rate.text).toBe("157.23")
  })

  it("given the same currency, then it is not a conversion", () => {
    expect(lookupRate(rates, usd, usd)).toBe("SAME_CURRENCY")
  })

  it("given EUR/USD and USD/JPY, when EUR to JPY is asked, then no cross rate is made up", () => {
    expect(lookupRate(rates, eur, jpy)).toBe("FX_RATE_UNAVAILABLE")
    expect(lookupRate(rates, bhd, kwd)).toBe("FX_RATE_UNAVAILABLE")
  })
})

describe("convert", () => {
  it.each([
    // Target exponent 0 (from USD cents): 1.5 → 2 and 2.5 → 2, both to even; 4.5 → 4.
    [1n, usd, jpy, "150", 2n],
    [1n, usd, jpy, "250", 2n],
    [3n, usd, jpy, "150", 4n],
    // Target exponent 0 from exponent 3 (KWD fils): 0.5 → 0, 1.5 → 2.
    [1n, kwd, jpy, "500", 0n],
    [3n, kwd, jpy, "500", 2n],
    // Target exponent 2: 100.5 → 100 and 301.5 → 302; 0.5 → 0 and 2.5 → 2 from JPY.
    [100n, eur, usd, "1.005", 100n],
    [300n, eur, usd, "1.005", 302n],
    [1n, jpy, usd, "0.005", 0n],
    [5n, jpy, usd, "0.005", 2n],
    [7n, jpy, usd, "0.005", 4n],
    // Target exponent 3: 2.5 → 2 and 7.5 → 8 from USD cents; 1.5 → 2 and 4.5 → 4 from BHD fils.
    [1n, usd, bhd, "0.25", 2n],
    [3n, usd, bhd, "0.25", 8n],
    [1n, bhd, kwd, "1.5", 2n],
    [3n, bhd, kwd, "1.5", 4n],
  ] as const)(
    "given %s minor %s → %s at %s, when exactly half-way, then it rounds to even %s",
    (amount, from, to, text, expected) => {
      expect(convert(amount, from, to, rate(text))).toEqual({ amountMinor: expected, rounding: "rounded_half_even" })
    },
  )

  it.each([
    [2n, kwd, jpy, "500.5", 1n, "rounded_half_even"],
    [251n, usd, jpy, "1", 3n, "rounded_half_even"],
    [249n, usd, jpy, "1", 2n, "rounded_half_even"],
    [1000n, usd, jpy, "157.23", 1572n, "rounded_half_even"],
    [10000n, usd, jpy, "157.23", 15723n, "exact"],
    [1_000_000n, eur, usd, "1.0842", 1_084_200n, "exact"],
    [4n, jpy, bhd, "0.00025", 1n, "exact"],
  ] as const)("given %s minor %s → %s at %s, then %s (%s)", (amount, from, to, text, expected, rounding) => {
    expect(convert(amount, from, to, rate(text))).toEqual({ amountMinor: expected, rounding })
  })

  it("given a rate with 12 decimals, then no digit of it is lost", () => {
    expect(convert(100_000_000n, eur, usd, rate("1.084212345678"))).toEqual({
      amountMinor: 108_421_235n,
      rounding: "rounded_half_even",
    })
    expect(convert(10n ** 21n, eur, usd, rate("1.084212345678"))).toEqual({
      amountMinor: 1_084_212_345_678_000_000_000n,
      rounding: "exact",
    })
  })

  it("given an amount beyond 2^53, then the result is exact to the last digit", () => {
    expect(convert(2n ** 64n, eur, usd, rate("1.0842"))).toEqual({
      amountMinor: 19_999_959_924_715_895_862n,
      rounding: "rounded_half_even",
    })
    expect(convert(10n ** 18n, jpy, usd, rate("0.000000000001"))).toEqual({
      amountMinor: 100_000_000n,
      rounding: "exact",
    })
  })

  it("given a non-terminating inverse 1/3, then it converts exactly where a 12-digit decimal would not", () => {
    const third = quote(table([config("USD", "TRY", "3")]), tryLira, usd).rate
    expect(convert(100n, tryLira, usd, third)).toEqual({ amountMinor: 33n, rounding: "rounded_half_even" })
    expect(convert(200n, tryLira, usd, third)).toEqual({ amountMinor: 67n, rounding: "rounded_half_even" })
    expect(convert(150n, tryLira, usd, third)).toEqual({ amountMinor: 50n, rounding: "exact" })
    expect(convert(3n * 10n ** 15n, tryLira, usd, third)).toEqual({ amountMinor: 10n ** 15n, rounding: "exact" })
    expect(convert(3n * 10n ** 15n, tryLira, usd, rate("0.333333333333")).amountMinor).toBe(999_999_999_999_000n)
  })

  it("given a positive amount worth less than half a target minor unit, then it rounds to 0 for the caller to judge", () => {
    expect(convert(1n, jpy, usd, rate("0.004"))).toEqual({ amountMinor: 0n, rounding: "rounded_half_even" })
  })

  it.each([0n, -1n])("given amount %s, then it is a programmer error", (amount) => {
    expect(() => convert(amount, eur, usd, rate("1.08"))).toThrow(/assertion/)
  })

  it("given the same currency on both sides, then it is a programmer error", () => {
    expect(() => convert(100n, usd, usd, rate("1"))).toThrow(/assertion/)
  })
})

describe("convertAt and encodeConversion", () => {
  const rates = table([config("USD", "JPY", "157.23"), config("KWD", "EUR", "2.9871")])

  it("given a direct quote, when converted, then the record says what was used and the wire prints decimals", () => {
    const conversion = convertAt(quote(rates, usd, jpy), 1234n)
    expect(conversion).toEqual({
      rate: "157.23",
      source: "ecb",
      asOfMs: 1_700_000_000_000,
      fromAmountMinor: 1234n,
      fromCurrency: usd,
      toAmountMinor: 1940n,
      toCurrency: jpy,
      rounding: "rounded_half_even",
    })
    expect(encodeConversion(conversion)).toEqual({
      rate: "157.23",
      source: "ecb",
      asOf: "2023-11-14T22:13:20.000Z",
      fromAmount: "12.34",
      fromCurrency: "USD",
      toAmount: "1940",
      toCurrency: "JPY",
      rounding: "rounded_half_even",
    })
  })

  it("given an inverse quote into exponent 3, then the record carries the exact fraction", () => {
    const conversion = encodeConversion(convertAt(quote(rates, eur, kwd), 29_871n))
    expect(conversion).toMatchObject({
      rate: "10000/29871",
      fromAmount: "298.71",
      toAmount: "100.000",
      rounding: "exact",
    })
  })
})
