/**
 * Foreign exchange: a tenant's configured rates as exact rationals, the table that finds the rate
 * for a currency pair (serving the inverse of a configured pair exactly), and the conversion of a
 * payment amount into the debtor account's currency, rounded half-to-even to the target's minor
 * unit. Everything is bigint; no `number` ever holds an amount or a rate.
 */
import { invariant } from "./invariants.ts"
import { type Currency, exponentOf, formatAmount, isCurrency } from "./money.ts"

/**
 * 1 major unit of a base currency = numerator / denominator major units of its quote, exactly.
 * A configured rate has a power-of-ten denominator; an inverse one generally does not (1/3), which
 * is why this is a general fraction rather than digits and a scale. `text` is what goes on events:
 * the configured decimal string as written, or for an inverse the fraction in lowest terms ("1/3").
 */
export interface FxRate {
  readonly numerator: bigint
  readonly denominator: bigint
  readonly text: string
}

export type RateError = "MALFORMED" | "NOT_POSITIVE" | "TOO_PRECISE" | "TOO_LARGE"

export const rateFractionDigitsMax = 12
export const rateIntegerDigitsMax = 12

// A leading "-" is matched so that a negative rate is reported as NOT_POSITIVE, not MALFORMED.
const rateDecimal = /^(-?)(0|[1-9][0-9]*)(?:\.([0-9]+))?$/

/** Parses a configured rate; configuration errors are values so startup can report all of them. */
export const parseRate = (text: string): FxRate | RateError => {
  const match = rateDecimal.exec(text)
  if (match === null) return "MALFORMED"
  const integerPart = match[2] as string
  const fractionPart = match[3] ?? ""
  if (fractionPart.length > rateFractionDigitsMax) return "TOO_PRECISE"
  if (integerPart.length > rateIntegerDigitsMax) return "TOO_LARGE"
  const numerator = BigInt(integerPart + fractionPart)
  if (match[1] === "-" || numerator === 0n) return "NOT_POSITIVE"
  return { numerator, denominator: 10n ** BigInt(fractionPart.length), text }
}

const greatestCommonDivisor = (a: bigint, b: bigint): bigint => (b === 0n ? a : greatestCommonDivisor(b, a % b))

/** 1/rate exactly, printed in lowest terms so equal rates always print the same. */
export const invertRate = (rate: FxRate): FxRate => {
  const divisor = greatestCommonDivisor(rate.numerator, rate.denominator)
  const numerator = rate.denominator / divisor
  const denominator = rate.numerator / divisor
  return { numerator, denominator, text: `${numerator}/${denominator}` }
}

/** A rate as it appears in tenant configuration, before validation. */
export interface FxRateConfig {
  readonly base: string
  readonly quote: string
  readonly rate: string
  readonly source: string
  readonly asOfMs: number
}

export interface FxRateEntry {
  readonly base: Currency
  readonly quote: Currency
  readonly rate: FxRate
  readonly source: string
  readonly asOfMs: number
}

/** Why configuration entry `index` was refused; precise so an operator can fix the right line. */
export type RateTableError =
  | { readonly reason: "UNKNOWN_CURRENCY"; readonly index: number; readonly code: string }
  | { readonly reason: "SAME_CURRENCY"; readonly index: number; readonly currency: Currency }
  | { readonly reason: "DUPLICATE_PAIR"; readonly index: number; readonly firstIndex: number }
  | { readonly reason: "INVALID_RATE"; readonly index: number; readonly rateError: RateError }
  | { readonly reason: "INVALID_AS_OF"; readonly index: number }

/** Configured entries keyed by "BASE/QUOTE"; built only by `makeRateTable`, so it is valid. */
export interface FxRateTable {
  readonly entries: ReadonlyMap<string, FxRateEntry>
}

// The latest time a Date can hold; beyond it the wire encoding of `asOfMs` would throw.
const dateMsMax = 8_640_000_000_000_000

const pairKey = (base: Currency, quote: Currency): string => `${base}/${quote}`

const validateEntry = (config: FxRateConfig, index: number): FxRateEntry | RateTableError => {
  const { base, quote } = config
  if (!isCurrency(base)) return { reason: "UNKNOWN_CURRENCY", index, code: base }
  if (!isCurrency(quote)) return { reason: "UNKNOWN_CURRENCY", index, code: quote }
  if (base === quote) return { reason: "SAME_CURRENCY", index, currency: base }
  const rate = parseRate(config.rate)
  if (typeof rate === "string") return { reason: "INVALID_RATE", index, rateError: rate }
  const { asOfMs } = config
  if (!Number.isSafeInteger(asOfMs) || asOfMs < 0 || asOfMs > dateMsMax) return { reason: "INVALID_AS_OF", index }
  return { base, quote, rate, source: config.source, asOfMs }
}

/** Validates every entry; the first refusal wins. Both directions of a pair may be configured. */
export const makeRateTable = (configs: ReadonlyArray<FxRateConfig>): FxRateTable | RateTableError => {
  const entries = new Map<string, FxRateEntry>()
  const indexByPair = new Map<string, number>()
  for (const [index, config] of configs.entries()) {
    const entry = validateEntry(config, index)
    if ("reason" in entry) return entry
    const key = pairKey(entry.base, entry.quote)
    const firstIndex = indexByPair.get(key)
    if (firstIndex !== undefined) return { reason: "DUPLICATE_PAIR", index, firstIndex }
    entries.set(key, entry)
    indexByPair.set(key, index)
  }
  return { entries }
}

/** A rate oriented from → to, saying whether it was configured that way or inverted. */
export interface FxQuote extends FxRateEntry {
  readonly direction: "direct" | "inverse"
}

/**
 * The rate for converting `from` into `to`. A configured direct entry wins over the inverse of the
 * opposite one, since a tenant that configures both means each for its own direction.
 * "SAME_CURRENCY" is not an error but not a conversion either: the caller books the amount as is.
 * "FX_RATE_UNAVAILABLE" is named after the wire error the caller answers with.
 */
export const lookupRate = (
  table: FxRateTable,
  from: Currency,
  to: Currency,
): FxQuote | "SAME_CURRENCY" | "FX_RATE_UNAVAILABLE" => {
  if (from === to) return "SAME_CURRENCY"
  const direct = table.entries.get(pairKey(from, to))
  if (direct !== undefined) return { ...direct, direction: "direct" }
  const opposite = table.entries.get(pairKey(to, from))
  if (opposite === undefined) return "FX_RATE_UNAVAILABLE"
  return { ...opposite, base: from, quote: to, rate: invertRate(opposite.rate), direction: "inverse" }
}

export type Rounding = "exact" | "rounded_half_even"

/**
 * Converts `amountMinor` of `from` at `rate` (1 from = rate to) into minor units of `to`:
 * amountMinor × rate × 10^(exp(to) − exp(from)), rounded half-to-even so that rounding over many
 * payments has no bias. A positive amount may round to 0 (1 JPY into KWD at a small rate); that
 * is returned as is, and whether to refuse it is the caller's decision. Nor is the result bounded
 * by `integerDigitsMax`; a caller that stores it checks that too.
 */
export const convert = (
  amountMinor: bigint,
  from: Currency,
  to: Currency,
  rate: FxRate,
): { readonly amountMinor: bigint; readonly rounding: Rounding } => {
  // Amounts are validated positive at the edge and lookups refuse same-currency pairs.
  invariant(amountMinor > 0n, "fx conversion of a non-positive amount")
  invariant(from !== to, "fx conversion between the same currency")
  invariant(rate.numerator > 0n, "fx rate with a non-positive numerator")
  invariant(rate.denominator > 0n, "fx rate with a non-positive denominator")
  const shift = exponentOf(to) - exponentOf(from)
  const scale = 10n ** BigInt(Math.abs(shift))
  const numerator = amountMinor * rate.numerator * (shift >= 0 ? scale : 1n)
  const denominator = rate.denominator * (shift < 0 ? scale : 1n)
  return roundHalfEven(numerator, denominator)
}

const roundHalfEven = (numerator: bigint, denominator: bigint): { amountMinor: bigint; rounding: Rounding } => {
  const quotient = numerator / denominator
  const twiceRemainder = 2n * (numerator % denominator)
  if (twiceRemainder === 0n) return { amountMinor: quotient, rounding: "exact" }
  const up = twiceRemainder > denominator || (twiceRemainder === denominator && quotient % 2n === 1n)
  return { amountMinor: up ? quotient + 1n : quotient, rounding: "rounded_half_even" }
}

/** What a payment and its events record about a conversion, enough to recompute it later. */
export interface FxConversion {
  readonly rate: string
  readonly source: string
  readonly asOfMs: number
  readonly fromAmountMinor: bigint
  readonly fromCurrency: Currency
  readonly toAmountMinor: bigint
  readonly toCurrency: Currency
  readonly rounding: Rounding
}

/** Converts at a looked-up quote, recording the rate it used. */
export const convertAt = (quote: FxQuote, amountMinor: bigint): FxConversion => {
  const converted = convert(amountMinor, quote.base, quote.quote, quote.rate)
  return {
    rate: quote.rate.text,
    source: quote.source,
    asOfMs: quote.asOfMs,
    fromAmountMinor: amountMinor,
    fromCurrency: quote.base,
    toAmountMinor: converted.amountMinor,
    toCurrency: quote.quote,
    rounding: converted.rounding,
  }
}

export interface WireFxConversion {
  readonly rate: string
  readonly source: string
  readonly asOf: string
  readonly fromAmount: string
  readonly fromCurrency: string
  readonly toAmount: string
  readonly toCurrency: string
  readonly rounding: Rounding
}

/** Amounts as decimal strings in major units and the time as ISO 8601, like the rest of the wire. */
export const encodeConversion = (conversion: FxConversion): WireFxConversion => ({
  rate: conversion.rate,
  source: conversion.source,
  asOf: new Date(conversion.asOfMs).toISOString(),
  fromAmount: formatAmount(conversion.fromAmountMinor, conversion.fromCurrency),
  fromCurrency: conversion.fromCurrency,
  toAmount: formatAmount(conversion.toAmountMinor, conversion.toCurrency),
  toCurrency: conversion.toCurrency,
  rounding: conversion.rounding,
})
