/**
 * The HTTP edge: the contract's REST routes over the same operations as the WebSocket, plus the
 * health probes. Bodies are read up to `payloadBytesMax` (413 as soon as it is passed) and the
 * requests in flight are bounded by `httpInFlightMax` (429 beyond it). `Idempotency-Key` stands
 * in for `depositId` / `paymentId` when the body omits them.
 */
import type { Outcome } from "../actors/processor.ts"
import { PeerUnreachable } from "../cluster/peer-links.ts"
import type { ErrorCode } from "../core/errors.ts"
import type { Principal } from "../tenancy/key-authenticator.ts"
import { bearerKey } from "./auth.ts"
import { accountOfOperation, dispatch, forbiddenMessage } from "./dispatch.ts"
import type { EdgeState, PeerForwarding } from "./edge-state.ts"
import { renderMetrics } from "./metrics.ts"
import type { HttpRequest, HttpResponse, TemplatedApp } from "./uws.ts"
import {
  decodeOperation,
  type Fields,
  isFields,
  isInvalidRequest,
  type OperationName,
  readTraceparent,
} from "./wire-request.ts"
import { encodeHttpError, encodeHttpSuccess, httpStatusOf, httpStatusOk } from "./wire-response.ts"

/** Ends a response with a JSON body; `closeConnection` when the rest of a request body was left unread. */
const send = (res: HttpResponse, status: string, body: string, closeConnection = false): void => {
  res.cork(() => {
    res.writeStatus(status).writeHeader("content-type", "application/json").end(body, closeConnection)
  })
}

const sendError = (res: HttpResponse, code: ErrorCode, message: string, closeConnection = false): void =>
  send(res, httpStatusOf[code], encodeHttpError(code, message), closeConnection)

/**
 * One accepted request between its arrival and its answer. It counts against `httpInFlightMax`
 * until answered or aborted, and after an abort it never touches the response again.
 */
class Exchange {
  private done = false

  constructor(
    private readonly res: HttpResponse,
    private readonly state: EdgeState,
    readonly principal: Principal,
    readonly traceparent: string | undefined,
  ) {
    state.httpInFlight++
    res.onAborted(() => this.finish())
  }

  get isDone(): boolean {
    return this.done
  }

  private finish(): boolean {
    if (this.done) return false
    this.done = true
    this.state.httpInFlight--
    return true
  }

  answer(outcome: Outcome): void {
    if (!this.finish()) return
    if (outcome._tag === "Rejection") sendError(this.res, outcome.code, outcome.message)
    else send(this.res, httpStatusOk, encodeHttpSuccess(outcome))
  }

  /** The answer another node gave, as it wrote it. */
  answerAs(status: string, body: string): void {
    if (this.finish()) send(this.res, status, body)
  }

  fail(code: ErrorCode, message: string, closeConnection = false): void {
    if (this.finish()) sendError(this.res, code, message, closeConnection)
  }
}

/**
 * Checks what can be refused before any work: the API key, a declared body over the limit, the
 * path's escapes, the in-flight bound. Reads the headers it needs now (uWS reuses `req` after the
 * handler returns). A refusal of a request with a body closes the connection, as the body stays unread.
 */
const admit = (
  state: EdgeState,
  res: HttpResponse,
  req: HttpRequest,
  params: ReadonlyArray<string> | undefined,
  hasBody: boolean,
): Exchange | undefined => {
  const principal = state.keys.authenticate(bearerKey(req.getHeader("authorization")))
  if (principal === undefined) {
    sendError(res, "UNAUTHORIZED", "a valid API key is required: Authorization: Bearer <key>", hasBody)
    return undefined
  }
  const declaredBytes = Number(req.getHeader("content-length"))
  if (hasBody && Number.isFinite(declaredBytes) && declaredBytes > state.edge.payloadBytesMax) {
    sendError(res, "PAYLOAD_TOO_LARGE", `the body is larger than ${state.edge.payloadBytesMax} bytes`, true)
    return undefined
  }
  if (params === undefined) {
    sendError(res, "INVALID_REQUEST", "the path has a malformed percent-escape", hasBody)
    return undefined
  }
  if (state.httpInFlight >= state.edge.httpInFlightMax) {
    sendError(res, "OVERLOADED", `more than ${state.edge.httpInFlightMax} HTTP requests in flight`, hasBody)
    return undefined
  }
  return new Exchange(res, state, principal, readTraceparent(req.getHeader("traceparent")))
}

const run = (state: EdgeState, exchange: Exchange, op: OperationName, fields: Fields): void => {
  const forbidden = forbiddenMessage(exchange.principal.scopes, op)
  if (forbidden !== undefined) {
    exchange.fail("FORBIDDEN", forbidden)
    return
  }
  const operation = decodeOperation(op, fields)
  if (isInvalidRequest(operation)) {
    exchange.fail("INVALID_REQUEST", operation.message)
    return
  }
  const { tenantId } = exchange.principal
  const owner = state.peers?.ownerAddressOf(tenantId, accountOfOperation(operation))
  if (owner !== undefined && state.peers !== undefined) {
    forwardHttp(state.peers, exchange, owner, op, fields)
    return
  }
  dispatch(state.processor, exchange.principal, operation, exchange.traceparent, (outcome) => exchange.answer(outcome))
}

/** Forwards a request to the node that owns its account; a former owner names the current one, tried once more. */
const forwardHttp = async (peers: PeerForwarding, exchange: Exchange, address: string, op: string, fields: Fields) => {
  const { tenantId } = exchange.principal
  try {
    const first = await peers.forwardHttp(address, tenantId, op, fields)
    const answer =
      first.kind === "notOwner" && first.owner !== null && first.owner !== address
        ? await peers.forwardHttp(first.owner, tenantId, op, fields)
        : first
    if (answer.kind === "httpAnswer") exchange.answerAs(answer.status, answer.body)
    else exchange.fail("UNAVAILABLE", "the account's shard is moving between nodes; retry")
  } catch (error) {
    exchange.fail(error instanceof PeerUnreachable ? error.code : "UNAVAILABLE", (error as Error).message)
  }
}

/** Reads a JSON object body, copying each chunk (uWS neuters it on return), up to `payloadBytesMax`. */
const readJsonBody = (state: EdgeState, res: HttpResponse, exchange: Exchange, onBody: (fields: Fields) => void) => {
  const limit = state.edge.payloadBytesMax
  const tooLarge = `the body is larger than ${limit} bytes`
  const chunks: Array<Buffer> = []
  let size = 0
  res.onData((chunk, isLast) => {
    if (exchange.isDone) return
    size += chunk.byteLength
    if (size > limit) return exchange.fail("PAYLOAD_TOO_LARGE", tooLarge, true)
    chunks.push(Buffer.from(chunk.slice(0)))
    if (!isLast) return
    if (size === 0) return exchange.fail("INVALID_REQUEST", "the body is empty: send a JSON object")
    let parsed: unknown
    try {
      parsed = JSON.parse(Buffer.concat(chunks, size).toString("utf8"))
    } catch {
      return exchange.fail("INVALID_REQUEST", "the body is not valid JSON")
    }
    if (isFields(parsed)) onBody(parsed)
    else exchange.fail("INVALID_REQUEST", "the body must be a JSON object")
  })
}

/** The route's path segments, percent-decoded; undefined when an escape is malformed. */
const pathParameters = (req: HttpRequest, count: number): ReadonlyArray<string> | undefined => {
  const params: Array<string> = []
  try {
    for (let index = 0; index < count; index++) params.push(decodeURIComponent(req.getParameter(index)))
  } catch {
    return undefined
  }
  return params
}

/** The Idempotency-Key header stands in for the id only where the body has none. */
const withIdempotencyKey = (fields: Fields, name: string, idempotencyKey: string): Fields =>
  fields[name] === undefined && idempotencyKey !== "" ? { ...fields, [name]: idempotencyKey } : fields

type BodyRoute = (fields: Fields, params: ReadonlyArray<string>, idempotencyKey: string) => Fields

/** POST routes: the operation's fields come from the body, the path and the Idempotency-Key header. */
const postRoute = (state: EdgeState, op: OperationName, paramCount: number, build: BodyRoute) => {
  return (res: HttpResponse, req: HttpRequest): void => {
    const params = pathParameters(req, paramCount)
    const idempotencyKey = req.getHeader("idempotency-key")
    const exchange = admit(state, res, req, params, true)
    if (exchange === undefined || params === undefined) return
    readJsonBody(state, res, exchange, (fields) => run(state, exchange, op, build(fields, params, idempotencyKey)))
  }
}

/** GET routes: the operation's fields are the path parameters. */
const getRoute = (state: EdgeState, op: OperationName, names: ReadonlyArray<string>) => {
  return (res: HttpResponse, req: HttpRequest): void => {
    const params = pathParameters(req, names.length)
    const exchange = admit(state, res, req, params, false)
    if (exchange === undefined || params === undefined) return
    const fields: Record<string, string> = {}
    for (const [index, name] of names.entries()) fields[name] = params[index] as string
    run(state, exchange, op, fields)
  }
}

export const registerHttpRoutes = (app: TemplatedApp, state: EdgeState): void => {
  app.get("/healthz", (res) => send(res, httpStatusOk, `{"status":"ok"}`))
  app.get("/metrics", (res) => {
    res.cork(() => {
      res
        .writeStatus(httpStatusOk)
        .writeHeader("content-type", "text/plain; version=0.0.4")
        .end(renderMetrics(state.processor.metrics()))
    })
  })
  app.get("/v1/cluster", (res, req) => {
    const adminKey = state.adminKey
    // Off without ADMIN_API_KEY: answered as any unknown route is.
    if (adminKey === undefined) {
      return send(
        res,
        "404 Not Found",
        encodeHttpError("INVALID_REQUEST", "no route GET /v1/cluster (ADMIN_API_KEY is not set)"),
      )
    }
    if (!adminKey(bearerKey(req.getHeader("authorization"))))
      return sendError(res, "UNAUTHORIZED", "the operators' key is required: Authorization: Bearer <ADMIN_API_KEY>")
    send(res, httpStatusOk, JSON.stringify(state.processor.clusterStatus()))
  })
  app.get("/readyz", (res) =>
    state.draining
      ? sendError(res, "UNAVAILABLE", "the node is draining")
      : state.processor.isReady()
        ? send(res, httpStatusOk, `{"status":"ready"}`)
        : sendError(res, "UNAVAILABLE", "not every owned shard has recovered yet"),
  )
  app.post(
    "/v1/accounts",
    postRoute(state, "openAccount", 0, (fields) => fields),
  )
  app.get("/v1/accounts/:accountId", getRoute(state, "getAccount", ["accountId"]))
  app.post(
    "/v1/accounts/:accountId/deposits",
    postRoute(state, "deposit", 1, (fields, [accountId], key) => ({
      ...withIdempotencyKey(fields, "depositId", key),
      accountId,
    })),
  )
  app.post(
    "/v1/payments",
    postRoute(state, "transfer", 0, (fields, _params, key) => withIdempotencyKey(fields, "paymentId", key)),
  )
  app.get("/v1/accounts/:accountId/payments/:paymentId", getRoute(state, "getPayment", ["accountId", "paymentId"]))
  app.post(
    "/v1/payments/authorizations",
    postRoute(state, "authorize", 0, (fields, _params, key) => withIdempotencyKey(fields, "paymentId", key)),
  )
  app.post(
    "/v1/accounts/:from/payments/:paymentId/capture",
    postRoute(state, "capture", 2, (fields, [from, paymentId], key) => ({
      ...withIdempotencyKey(fields, "captureId", key),
      from,
      paymentId,
    })),
  )
  app.post(
    "/v1/accounts/:from/payments/:paymentId/refunds",
    postRoute(state, "refund", 2, (fields, [from, paymentId], key) => ({
      ...withIdempotencyKey(fields, "refundId", key),
      from,
      paymentId,
    })),
  )
  app.post(
    "/v1/accounts/:from/payments/:paymentId/void",
    postRoute(state, "void", 2, (fields, [from, paymentId]) => ({ ...fields, from, paymentId })),
  )
  app.post(
    "/v1/accounts/:from/payments/:paymentId/review",
    postRoute(state, "reviewPayment", 2, (fields, [from, paymentId]) => ({ ...fields, from, paymentId })),
  )
  app.any("/*", (res, req) => {
    const route = `${req.getMethod().toUpperCase()} ${req.getUrl()}`
    // 404 rather than INVALID_REQUEST's usual 400: the contract answers unknown routes as not found.
    send(res, "404 Not Found", encodeHttpError("INVALID_REQUEST", `no route ${route.slice(0, 200)}`), true)
  })
}
