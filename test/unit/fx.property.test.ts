/**
 * Properties of conversion under generated rates (configured decimals and their exact inverses),
 * currency pairs with exponents 0, 2 and 3, and amounts up to 10^21 minor units: the result equals a
 * reference nearest-even rounding of the exact rational, lies within half a minor unit of it, never
 * decreases as the amount grows, and survives the trip through the wire's decimal strings.
 */
import fc from "fast-check"
import { describe, expect, it } from "vitest"
import { convert, encodeConversion, type FxRate, invertRate, parseRate } from "../../core/fx.ts"
import { type Currency, exponentOf, isCurrency } from "../../core/money.ts"

const numRuns = 2000

const currencies: ReadonlyArray<Currency> = ["JPY", "CLP", "EUR", "USD", "BHD", "KWD"].filter(isCurrency)

const pairArbitrary = fc
  .tuple(fc.constantFrom(...currencies), fc.constantFrom(...currencies))
  .filter(([from, to]) => from !== to)

/** A configured rate text: up to 12 integer and 12 fractional digits, positive. */
const rateTextArbitrary = fc
  .tuple(
    fc.bigInt({ min: 0n, max: 10n ** 12n - 1n }),
    fc.integer({ min: 0, max: 12 }),
    fc.bigInt({ min: 0n, max: 10n ** 12n - 1n }),
  )
  .map(([integerPart, scale, fraction]) => {
    const fractionPart = scale === 0 ? "" : `.${(fraction % 10n ** BigInt(scale)).toString().padStart(scale, "0")}`
    return `${integerPart}${fractionPart}`
  })
  .filter((text) => /[1-9]/.test(text))

const rateArbitrary = fc.tuple(rateTextArbitrary, fc.boolean()).map(([text, inverted]) => {
  const parsed = parseRate(text) as FxRate
  return inverted ? invertRate(parsed) : parsed
})

const amountArbitrary = fc.bigInt({ min: 1n, max: 10n ** 21n })

/** The exact value in target minor units as a fraction, computed without `convert`'s shift. */
const exactValue = (amountMinor: bigint, from: Currency, to: Currency, rate: FxRate): [bigint, bigint] => [
  amountMinor * rate.numerator * 10n ** BigInt(exponentOf(to)),
  rate.denominator * 10n ** BigInt(exponentOf(from)),
]

/** Picks whichever of floor and floor + 1 is nearer; on a tie, the even one. */
const referenceRound = (numerator: bigint, denominator: bigint): bigint => {
  const floor = numerator / denominator
  const distanceDown = numerator - floor * denominator
  const distanceUp = (floor + 1n) * denominator - numerator
  if (distanceDown !== distanceUp) return distanceDown < distanceUp ? floor : floor + 1n
  return floor % 2n === 0n ? floor : floor + 1n
}

/**
 * Reads a printed amount back without `parseDecimal`'s 18-integer-digit limit: generated amounts and
 * converted ones may exceed it (10^21 minor units at a rate near 10^12); `convert` leaves that to its caller.
 */
const minorOf = (text: string, currency: Currency): bigint => {
  const [integerPart, fractionPart = ""] = text.split(".")
  expect(fractionPart.length).toBe(exponentOf(currency))
  return BigInt(`${integerPart}${fractionPart}`)
}

describe("convert properties", () => {
  it("given any rate and amount, then the result is the reference nearest-even rounding of the exact value", () => {
    fc.assert(
      fc.property(amountArbitrary, pairArbitrary, rateArbitrary, (amountMinor, [from, to], rate) => {
        const [numerator, denominator] = exactValue(amountMinor, from, to, rate)
        const result = convert(amountMinor, from, to, rate)
        expect(result.amountMinor).toBe(referenceRound(numerator, denominator))
        expect(result.rounding).toBe(numerator % denominator === 0n ? "exact" : "rounded_half_even")
      }),
      { numRuns },
    )
  })

  it("given any rate and amount, then the result is within half a minor unit, and even on a tie", () => {
    fc.assert(
      fc.property(amountArbitrary, pairArbitrary, rateArbitrary, (amountMinor, [from, to], rate) => {
        const [numerator, denominator] = exactValue(amountMinor, from, to, rate)
        const { amountMinor: result } = convert(amountMinor, from, to, rate)
        const twiceError = 2n * (result * denominator - numerator)
        const twiceErrorAbsolute = twiceError < 0n ? -twiceError : twiceError
        expect(twiceErrorAbsolute <= denominator).toBe(true)
        if (twiceErrorAbsolute === denominator) expect(result % 2n).toBe(0n)
      }),
      { numRuns },
    )
  })

  it("given two amounts, when the larger is converted, then it never converts to less", () => {
    fc.assert(
      fc.property(amountArbitrary, amountArbitrary, pairArbitrary, rateArbitrary, (a, b, [from, to], rate) => {
        const [smaller, larger] = a <= b ? [a, b] : [b, a]
        const smallerResult = convert(smaller, from, to, rate).amountMinor
        expect(smallerResult <= convert(larger, from, to, rate).amountMinor).toBe(true)
      }),
      { numRuns },
    )
  })

  it("given a rate, when inverted, then rate × inverse is exactly 1 and inverting twice gives the same value", () => {
    fc.assert(
      fc.property(rateArbitrary, (rate) => {
        const inverse = invertRate(rate)
        expect(rate.numerator * inverse.numerator).toBe(rate.denominator * inverse.denominator)
        const twice = invertRate(inverse)
        expect(twice.numerator * rate.denominator).toBe(rate.numerator * twice.denominator)
      }),
      { numRuns },
    )
  })

  it("given a conversion, when encoded for the wire, then both decimal strings read back to the minor units", () => {
    fc.assert(
      fc.property(amountArbitrary, pairArbitrary, rateArbitrary, (amountMinor, [from, to], rate) => {
        const converted = convert(amountMinor, from, to, rate)
        const wire = encodeConversion({
          rate: rate.text,
          source: "test",
          asOfMs: 0,
          fromAmountMinor: amountMinor,
          fromCurrency: from,
          toAmountMinor: converted.amountMinor,
          toCurrency: to,
          rounding: converted.rounding,
        })
        expect(minorOf(wire.fromAmount, from)).toBe(amountMinor)
        expect(minorOf(wire.toAmount, to)).toBe(converted.amountMinor)
      }),
      { numRuns: 200 },
    )
  })
})

describe("parseRate properties", () => {
  it("given a valid rate text, when parsed, then numerator / denominator is its exact value", () => {
    fc.assert(
      fc.property(rateTextArbitrary, (text) => {
        const [integerPart, fractionPart = ""] = text.split(".")
        expect(parseRate(text)).toEqual({
          numerator: BigInt(`${integerPart}${fractionPart}`),
          denominator: 10n ** BigInt(fractionPart.length),
          text,
        })
      }),
      { numRuns },
    )
  })

  it("given a valid rate text, when a 13th fractional or integer digit is added, then it is refused", () => {
    fc.assert(
      fc.property(rateTextArbitrary, fc.integer({ min: 1, max: 9 }), (text, digit) => {
        const [integerPart, fractionPart = ""] = text.split(".")
        const longFraction = `${integerPart}.${fractionPart.padEnd(12, "0")}${digit}`
        const longInteger = `${digit}${(integerPart as string).padStart(12, "0")}`
        expect(parseRate(longFraction)).toBe("TOO_PRECISE")
        expect(parseRate(longInteger)).toBe("TOO_LARGE")
      }),
      { numRuns },
    )
  })
})
