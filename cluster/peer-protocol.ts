/**
 * What nodes say to each other over a peer link (one WebSocket per pair, text frames of JSON, many
 * messages in flight, matched by `id`):
 *
 * - `request`: a partner's request for a shard the receiver owns, as the partner sent it (the
 *   WebSocket frame's text, or an HTTP operation's name and fields), with the tenant the sender
 *   authenticated. The receiver answers `answer` with the exact bytes a local answer would have
 *   (the WebSocket frame, or the HTTP status and body), or `notOwner` with the owner it knows.
 * - `deliver`: a saga step for a shard the receiver owns (a credit, its settlement or reversal);
 *   delivered at least once, so it needs no answer.
 *
 * Everything is validated on receipt with Effect Schema; amounts travel as decimal strings of minor units.
 */
import { Schema } from "effect"
import type { ApplyCredit, Command, RedeliverCredit, ReverseTransfer, SettleTransfer } from "../core/commands.ts"
import { DeclineReason } from "../core/events.ts"
import { AccountId, PaymentId, TenantId } from "../core/ids.ts"
import type { Currency } from "../core/money.ts"

const CurrencyCode = Schema.String as unknown as Schema.Codec<Currency, string>
const meta = { tenantId: TenantId, correlationId: Schema.String, timestampMs: Schema.Number }
const payment = { paymentId: PaymentId, from: AccountId }

const ApplyCreditSchema = Schema.Struct({
  _tag: Schema.Literal("ApplyCredit"),
  ...meta,
  ...payment,
  to: AccountId,
  amountMinor: Schema.BigIntFromString,
  currency: CurrencyCode,
  paymentCreatedAtMs: Schema.Number,
})
const SettleTransferSchema = Schema.Struct({ _tag: Schema.Literal("SettleTransfer"), ...meta, ...payment })
const ReverseTransferSchema = Schema.Struct({
  _tag: Schema.Literal("ReverseTransfer"),
  ...meta,
  ...payment,
  reason: DeclineReason,
})
const RedeliverCreditSchema = Schema.Struct({
  _tag: Schema.Literal("RedeliverCredit"),
  ...meta,
  ...payment,
  attempt: Schema.Number,
})

/** The commands that cross nodes: the steps of a transfer whose two shards have different owners. */
export type PeerCommand = ApplyCredit | SettleTransfer | ReverseTransfer | RedeliverCredit
const PeerCommandSchema = Schema.Union([
  ApplyCreditSchema,
  SettleTransferSchema,
  ReverseTransferSchema,
  RedeliverCreditSchema,
])

// Compile-time proof that the schemas describe exactly the commands.
const _sameApplyCredit: ApplyCredit = {} as typeof ApplyCreditSchema.Type
const _sameSettle: SettleTransfer = {} as typeof SettleTransferSchema.Type
const _sameReverse: ReverseTransfer = {} as typeof ReverseTransferSchema.Type
const _sameRedeliver: RedeliverCredit = {} as typeof RedeliverCreditSchema.Type
void [_sameApplyCredit, _sameSettle, _sameReverse, _sameRedeliver]

export const isPeerCommand = (command: Command): command is PeerCommand =>
  command._tag === "ApplyCredit" ||
  command._tag === "SettleTransfer" ||
  command._tag === "ReverseTransfer" ||
  command._tag === "RedeliverCredit"

const PeerMessageSchema = Schema.Union([
  Schema.Struct({
    kind: Schema.Literal("request"),
    id: Schema.Number,
    tenantId: Schema.String,
    /** A WebSocket frame's text as the partner sent it. */
    frame: Schema.String,
  }),
  Schema.Struct({
    kind: Schema.Literal("httpRequest"),
    id: Schema.Number,
    tenantId: Schema.String,
    op: Schema.String,
    fields: Schema.Record(Schema.String, Schema.Unknown),
  }),
  Schema.Struct({ kind: Schema.Literal("deliver"), command: PeerCommandSchema }),
  Schema.Struct({ kind: Schema.Literal("answer"), id: Schema.Number, text: Schema.String }),
  Schema.Struct({ kind: Schema.Literal("httpAnswer"), id: Schema.Number, status: Schema.String, body: Schema.String }),
  Schema.Struct({ kind: Schema.Literal("notOwner"), id: Schema.Number, owner: Schema.NullOr(Schema.String) }),
])
export type PeerMessage = typeof PeerMessageSchema.Type

const PeerMessageJson = Schema.fromJsonString(PeerMessageSchema)
const encodeJson = Schema.encodeSync(PeerMessageJson)
const decodeJson = Schema.decodeUnknownResult(PeerMessageJson)

export const encodePeerMessage = (message: PeerMessage): string => encodeJson(message)

/** The message, or undefined for text that is not one (a peer of another version, damage): it is dropped. */
export const decodePeerMessage = (text: string): PeerMessage | undefined => {
  const decoded = decodeJson(text)
  return decoded._tag === "Success" ? decoded.success : undefined
}
