/**
 * What the generator sends: account ids, the account picker (uniform, hot-spot skew, cross-shard
 * only), the transfer, authorize and capture frames and bodies, the seed deposit, and a cheap
 * reading of the answers. Pure and seeded, so the unit tests check proportions and the picker
 * without a server.
 */
import { type AccountId, shardOf, type TenantId } from "../../core/ids.ts"
import { formatAmount, isCurrency, parseAmount } from "../../core/money.ts"
import type {
  AuthorizeCaptureWorkload,
  Distribution,
  EchoWorkload,
  PaymentTraffic,
  PaymentWorkload,
  TransferWorkload,
} from "./plan.ts"

/** The tenant every benchmark runs as (TENANTS=bench:<key>). */
export const benchTenantId = "bench" as TenantId

/** The id of seeded account `index`; the same in the seeding, the generator and the reports. */
export const accountIdOf = (index: number): string => `acct-${index}`

/** The transfers an echo run sends: the echo server answers them without looking at accounts. */
export const echoTransfers: TransferWorkload = {
  kind: "transfers",
  accounts: 10_000,
  distribution: { kind: "uniform" },
  crossShardOnly: false,
  shardCount: 16,
  currency: "USD",
  amount: "0.01",
}

/** Who pays whom in a workload; the echo baseline is sent the echo transfers. */
export const trafficOf = (workload: PaymentWorkload | EchoWorkload): PaymentTraffic =>
  workload.kind === "echo" ? echoTransfers : workload

/** Payments of the workload's amount one account can make from its seed deposit, holds included. */
export const seedPaymentsPerAccount = 100_000_000n

/**
 * What seeding deposits into each account: the workload's amount a hundred million times (1,000,000.00
 * for 0.01), so no run drains an account or runs short of available funds for its holds, whatever
 * the amount. Throws for a currency or amount the product would refuse, naming it.
 */
export const seedDepositOf = (traffic: PaymentTraffic): string => {
  const { currency, amount } = traffic
  if (!isCurrency(currency)) throw new Error(`currency ${currency} is not an ISO 4217 code the product knows`)
  const amountMinor = parseAmount(amount, currency)
  if (typeof amountMinor === "string") throw new Error(`amount ${amount} ${currency} is refused: ${amountMinor}`)
  const deposit = formatAmount(amountMinor * seedPaymentsPerAccount, currency)
  const depositCheck = parseAmount(deposit, currency)
  if (typeof depositCheck === "string") {
    throw new Error(
      `amount ${amount} ${currency} is too large to seed ${seedPaymentsPerAccount} payments: ${depositCheck}`,
    )
  }
  return deposit
}

/** mulberry32: a small, fast, seedable generator of numbers in [0, 1). */
export const seededRandom = (seed: number): (() => number) => {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let mixed = state
    mixed = Math.imul(mixed ^ (mixed >>> 15), mixed | 1)
    mixed ^= mixed + Math.imul(mixed ^ (mixed >>> 7), mixed | 61)
    return ((mixed ^ (mixed >>> 14)) >>> 0) / 4294967296
  }
}

/** Picks one account index by the distribution: hot accounts are indexes 0 .. hotCount - 1. */
export const accountPickerOf = (accounts: number, distribution: Distribution, random: () => number): (() => number) => {
  if (distribution.kind === "uniform") return () => Math.floor(random() * accounts)
  const hotCount = Math.min(accounts - 1, Math.max(1, Math.round(accounts * distribution.hotFraction)))
  const coldCount = accounts - hotCount
  const hotShare = distribution.hotShare
  return () => (random() < hotShare ? Math.floor(random() * hotCount) : hotCount + Math.floor(random() * coldCount))
}

/** Attempts at a creditor on another shard before giving up on the pick (never reached with S >= 2). */
const crossShardAttemptsMax = 1_000

export interface TransferPicker {
  /** Debtor and creditor indexes of the next transfer, never equal; on other shards if crossShardOnly. */
  readonly next: () => { readonly from: number; readonly to: number }
}

export const transferPickerOf = (workload: PaymentTraffic, random: () => number): TransferPicker => {
  const pick = accountPickerOf(workload.accounts, workload.distribution, random)
  const shards = workload.crossShardOnly ? shardsOfAccounts(workload.accounts, workload.shardCount) : undefined
  const next = () => {
    const from = pick()
    for (let attempt = 0; attempt < crossShardAttemptsMax; attempt++) {
      const to = pick()
      if (to === from) continue
      if (shards === undefined || shards[to] !== shards[from]) return { from, to }
    }
    throw new Error(`no creditor found for account ${from} in ${crossShardAttemptsMax} picks`)
  }
  return { next }
}

/** The shard of every seeded account, computed once (2 bytes an account). */
export const shardsOfAccounts = (accounts: number, shardCount: number): Uint16Array => {
  if (shardCount < 2 || shardCount > 65_535) throw new Error(`crossShardOnly needs 2..65535 shards, not ${shardCount}`)
  const shards = new Uint16Array(accounts)
  for (let index = 0; index < accounts; index++) {
    shards[index] = shardOf(benchTenantId, accountIdOf(index) as AccountId, shardCount)
  }
  return shards
}

/** The payment id of schedule index `index`: the run's prefix keeps runs against one node apart. */
export const paymentIdOf = (runId: string, index: number): string => `${runId}-${index}`

/** The operations the generator sends. */
export type PaymentOperation = "transfer" | "authorize" | "capture"

/** The JSON of a transfer's fields. Ids are plain ASCII, so a template is exact and cheaper than stringify. */
export const transferFields = (workload: PaymentTraffic, paymentId: string, from: number, to: number): string =>
  `"paymentId":"${paymentId}","from":"${accountIdOf(from)}","to":"${accountIdOf(to)}","amount":"${workload.amount}","currency":"${workload.currency}"`

/** An authorization's fields: a transfer's, and the hold when the workload asks for one. */
export const authorizeFields = (
  workload: AuthorizeCaptureWorkload,
  paymentId: string,
  from: number,
  to: number,
): string =>
  workload.holdSeconds === undefined
    ? transferFields(workload, paymentId, from, to)
    : `${transferFields(workload, paymentId, from, to)},"holdSeconds":${workload.holdSeconds}`

/** The capture id of a payment: one capture per authorization, so one id per payment is the idempotency key. */
export const captureIdOf = (paymentId: string): string => `${paymentId}-capture`

/** A capture of all that was authorized (no amount). */
export const captureFields = (paymentId: string, from: number): string =>
  `"from":"${accountIdOf(from)}","paymentId":"${paymentId}","captureId":"${captureIdOf(paymentId)}"`

export const requestFrame = (operation: PaymentOperation, reqId: number, fields: string): string =>
  `{"op":"${operation}","reqId":${reqId},${fields}}`

export const transferFrame = (reqId: number, fields: string): string => requestFrame("transfer", reqId, fields)

export const transferBody = (fields: string): string => `{${fields}}`

/** A WebSocket answer reduced to what the generator needs. */
export interface AnswerSummary {
  readonly reqId: number
  /** Undefined when the answer is ok; otherwise the error code. */
  readonly errorCode: string | undefined
}

const okPrefix = '{"reqId":'

/**
 * Reads an answer. The product encodes `{"reqId":N,"ok":true,...}`, read without JSON.parse (most
 * of the generator's CPU would otherwise go to parsing payments it does not look at); anything
 * else falls back to JSON.parse. Returns undefined for an answer without a numeric reqId.
 */
export const readAnswer = (text: string): AnswerSummary | undefined => {
  if (text.startsWith(okPrefix)) {
    const comma = text.indexOf(",", okPrefix.length)
    if (comma > 0 && text.startsWith('"ok":true', comma + 1)) {
      const reqId = Number(text.slice(okPrefix.length, comma))
      if (Number.isInteger(reqId)) return { reqId, errorCode: undefined }
    }
  }
  let parsed: { reqId?: unknown; ok?: unknown; error?: { code?: unknown } }
  try {
    parsed = JSON.parse(text)
  } catch {
    return undefined
  }
  const reqId = typeof parsed.reqId === "string" ? Number(parsed.reqId) : parsed.reqId
  if (typeof reqId !== "number" || !Number.isInteger(reqId)) return undefined
  if (parsed.ok === true) return { reqId, errorCode: undefined }
  const code = parsed.error?.code
  return { reqId, errorCode: typeof code === "string" ? code : "UNKNOWN_ERROR" }
}

/** The error code of an HTTP answer: the body's error.code, else the status. */
export const httpErrorCodeOf = (status: number, body: string): string | undefined => {
  if (status === 200) return undefined
  try {
    const code = (JSON.parse(body) as { error?: { code?: unknown } }).error?.code
    if (typeof code === "string") return code
  } catch {
    // Not the product's error object (a proxy or a crash page): the status says what happened.
  }
  return `HTTP_${status}`
}

const paymentStatusKey = '"status":"'

/**
 * The payment status of an ok answer, `{"reqId":N,"ok":true,"payment":{...,"status":"authorized",...}}`,
 * read without JSON.parse like `readAnswer`'s fast path (the first "status" after "payment" is the
 * payment's: the fields before it are ids, amounts and the currency); anything else is parsed.
 * Undefined when the answer carries no payment.
 */
export const paymentStatusOf = (text: string): string | undefined => {
  const payment = text.indexOf('"payment":{')
  const key = payment < 0 ? -1 : text.indexOf(paymentStatusKey, payment)
  const end = key < 0 ? -1 : text.indexOf('"', key + paymentStatusKey.length)
  if (end > 0) return text.slice(key + paymentStatusKey.length, end)
  try {
    const status = (JSON.parse(text) as { payment?: { status?: unknown } }).payment?.status
    return typeof status === "string" ? status : undefined
  } catch {
    return undefined
  }
}

/**
 * The code a payment answer counts under when its status is not the one its operation should give:
 * `DECLINED_<reason>` for a decline (rare in a seeded run, so parsing it is affordable), else
 * `UNEXPECTED_<status>`.
 */
export const unexpectedStatusCodeOf = (status: string | undefined, text: string | undefined): string => {
  if (status !== "declined") return `UNEXPECTED_${(status ?? "none").toUpperCase()}`
  try {
    const reason = (JSON.parse(text ?? "") as { payment?: { reason?: unknown } }).payment?.reason
    return `DECLINED_${typeof reason === "string" ? reason : "WITHOUT_REASON"}`
  } catch {
    return "DECLINED_WITHOUT_REASON"
  }
}
