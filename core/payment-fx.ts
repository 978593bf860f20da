/**
 * Currency conversion in the payment path. A payment keeps the amount and currency it was asked
 * for; when the debtor's account holds another currency it is debited the converted amount at the
 * tenant's rate, and when the creditor's does, the creditor is credited the converted amount. Each
 * conversion is booked on the payment (rate, source, timestamp, both amounts, rounding) when first
 * decided and every later part of the payment (a partial capture, each refund) converts at the
 * booked rate, cumulatively: part k moves convert(total after k) − convert(total before k), so the
 * parts always add up to the conversion of their total and rounding never creates or loses a unit.
 */
import { type Rejection, reject } from "./errors.ts"
import { convert, type FxRateTable, lookupRate, type Rounding } from "./fx.ts"
import type { Account, Payment } from "./ledger.ts"
import type { Currency } from "./money.ts"

/** A conversion booked on a payment: 1 unit of the payment's currency = rateNumerator/rateDenominator of `currency`. */
export interface BookedConversion {
  /** The rate as configured ("0.9215"), or for an inverted pair the fraction in lowest terms ("2000/1843"). */
  readonly rate: string
  readonly rateNumerator: bigint
  readonly rateDenominator: bigint
  readonly source: string
  readonly asOfMs: number
  /** The account's currency, and the payment's whole amount in it. */
  readonly currency: Currency
  readonly amountMinor: bigint
  readonly rounding: Rounding
}

/** The conversions of one payment: on the debtor's side, the creditor's, or both. */
export interface PaymentFx {
  readonly debit?: BookedConversion
  readonly credit?: BookedConversion
}

/**
 * The conversion of a payment of `amountMinor` `from` into `account`'s currency; undefined when
 * none is needed. A tenant with no rate table keeps the contract it had without one
 * (CURRENCY_MISMATCH); one with a table that lacks the pair gets FX_RATE_UNAVAILABLE.
 */
export const conversionInto = (
  rates: FxRateTable | undefined,
  account: Account,
  amountMinor: bigint,
  from: Currency,
): BookedConversion | undefined | Rejection => {
  if (account.currency === from) return undefined
  if (rates === undefined) return reject("CURRENCY_MISMATCH", `account ${account.accountId} holds ${account.currency}`)
  const quote = lookupRate(rates, from, account.currency)
  if (quote === "SAME_CURRENCY") return undefined
  if (quote === "FX_RATE_UNAVAILABLE") {
    return reject("FX_RATE_UNAVAILABLE", `no rate from ${from} to ${account.currency} for account ${account.accountId}`)
  }
  const converted = convert(amountMinor, from, account.currency, quote.rate)
  // A payment that converts to nothing would move money one way only.
  if (converted.amountMinor <= 0n) {
    return reject("INVALID_REQUEST", `the amount converts to less than one minor unit of ${account.currency}`)
  }
  return {
    rate: quote.rate.text,
    rateNumerator: quote.rate.numerator,
    rateDenominator: quote.rate.denominator,
    source: quote.source,
    asOfMs: quote.asOfMs,
    currency: account.currency,
    amountMinor: converted.amountMinor,
    rounding: converted.rounding,
  }
}

/** `amountMinor` of the payment's currency at a booked conversion (itself when there is none). */
export const atBookedRate = (
  booked: BookedConversion | undefined,
  amountMinor: bigint,
  paymentCurrency: Currency,
): bigint => {
  if (booked === undefined || amountMinor === 0n) return amountMinor
  const rate = { numerator: booked.rateNumerator, denominator: booked.rateDenominator, text: booked.rate }
  return convert(amountMinor, paymentCurrency, booked.currency, rate).amountMinor
}

/** What a payment holds on, or has taken from, its debtor for `amountMinor` of it, in the debtor's currency. */
export const debitedFor = (payment: Payment, amountMinor: bigint): bigint =>
  atBookedRate(payment.fx?.debit, amountMinor, payment.currency)

/** What the creditor receives for `amountMinor` of the payment, in the creditor's currency. */
export const creditedFor = (payment: Payment, amountMinor: bigint): bigint =>
  atBookedRate(payment.fx?.credit, amountMinor, payment.currency)

/** The hold a live authorization (or payment in review) places on its debtor, in the debtor's currency. */
export const holdOf = (payment: Payment): bigint => payment.fx?.debit?.amountMinor ?? payment.amountMinor

/** One part of a payment (a refund) at a booked rate, cumulatively, so the parts add up to their total's conversion. */
export const partAtBookedRate = (
  booked: BookedConversion | undefined,
  beforeMinor: bigint,
  partMinor: bigint,
  paymentCurrency: Currency,
): bigint =>
  atBookedRate(booked, beforeMinor + partMinor, paymentCurrency) - atBookedRate(booked, beforeMinor, paymentCurrency)

const json = JSON.stringify

/** The JSON text of one booked conversion. */
export const bookedConversionJson = (booked: BookedConversion): string =>
  `{"rate":${json(booked.rate)},"rateNumerator":"${booked.rateNumerator}","rateDenominator":"${booked.rateDenominator}",` +
  `"source":${json(booked.source)},"asOfMs":${booked.asOfMs},"currency":${json(booked.currency)},` +
  `"amountMinor":"${booked.amountMinor}","rounding":"${booked.rounding}"}`

/** The JSON text of a payment's conversions, in the Schema's field order (journal records and snapshots). */
export const paymentFxJson = (fx: PaymentFx): string => {
  const debit = fx.debit === undefined ? "" : `"debit":${bookedConversionJson(fx.debit)}`
  const credit = fx.credit === undefined ? "" : `"credit":${bookedConversionJson(fx.credit)}`
  return `{${debit}${debit !== "" && credit !== "" ? "," : ""}${credit}}`
}
