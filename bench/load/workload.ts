/**
 * What the generator sends: account ids, the account picker (uniform, hot-spot skew, cross-shard
 * only), the transfer frames and bodies, and a cheap reading of the answers. Pure and seeded, so
 * the unit tests check proportions and the picker without a server.
 */
import { type AccountId, shardOf, type TenantId } from "../../core/ids.ts"
import type { Distribution, EchoWorkload, TransferWorkload } from "./plan.ts"

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

export const transfersOf = (workload: TransferWorkload | EchoWorkload): TransferWorkload =>
  workload.kind === "echo" ? echoTransfers : workload

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

export const transferPickerOf = (workload: TransferWorkload, random: () => number): TransferPicker => {
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

/** The JSON of a transfer's fields. Ids are plain ASCII, so a template is exact and cheaper than stringify. */
export const transferFields = (workload: TransferWorkload, paymentId: string, from: number, to: number): string =>
  `"paymentId":"${paymentId}","from":"${accountIdOf(from)}","to":"${accountIdOf(to)}","amount":"${workload.amount}","currency":"${workload.currency}"`

export const transferFrame = (reqId: number, fields: string): string => `{"op":"transfer","reqId":${reqId},${fields}}`

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
