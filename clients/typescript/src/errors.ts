/**
 * Every error the client throws, in one tree (the same names as the Python SDK's):
 *
 * ```text
 * ApiError                       the root: status, code, message, retryAfter
 * ├── ConnectionFailed           no answer: refused, reset, dropped (status and code null)
 * │   └── RequestTimeout         no answer within `timeoutMs`
 * ├── InvalidRequest             400 INVALID_REQUEST, BAD_REQUEST, WEBHOOK_REFUSED; 408, 414, 431
 * │   ├── InvalidSelector        400 INVALID_SELECTOR
 * │   └── UnknownJobType         400 UNKNOWN_JOB_TYPE
 * ├── Unauthorized               401 UNAUTHORIZED
 * ├── Forbidden                  403 FORBIDDEN
 * ├── NotFound                   404 NOT_FOUND (no such route), WEBHOOK_NOT_FOUND
 * │   ├── JobNotFound            404 JOB_NOT_FOUND
 * │   └── SourceNotFound         404 SOURCE_NOT_FOUND
 * ├── MethodNotAllowed           405 METHOD_NOT_ALLOWED
 * ├── Conflict                   409
 * │   ├── JobAlreadyFinished     409 JOB_ALREADY_FINISHED
 * │   ├── JobNotRetryable        409 JOB_NOT_RETRYABLE
 * │   └── JobNotFinished         409 JOB_NOT_FINISHED
 * ├── PayloadTooLarge            413 PAYLOAD_TOO_LARGE
 * ├── UnsupportedMediaType       415 UNSUPPORTED_MEDIA_TYPE
 * ├── Unprocessable              422 UNPROCESSABLE_ENTITY
 * │   └── IdempotencyKeyReused   422 IDEMPOTENCY_KEY_REUSED
 * ├── QuotaExceeded              429 QUOTA_EXCEEDED, RATE_LIMITED, TOO_MANY_WAITERS
 * └── ServerError                5xx
 *     ├── InternalError          500 INTERNAL_ERROR
 *     └── QueueUnavailable       503 STORE_UNAVAILABLE, SERVER_BUSY, SCHEMA_MISMATCH
 * ```
 *
 * A code this client does not know becomes the class of its status (a 404 with a new code is a
 * `NotFound`), or `ApiError` itself, so a newer server never breaks an older client.
 *
 * Cancelling a call through its `AbortSignal` rejects it with the signal's reason (an
 * `AbortError` `DOMException` unless you gave another), never with one of these.
 */

/** The server's error envelope: `{"error": "<message>", "code": <status>, "error_code": "<CODE>"}`. */
export interface ErrorEnvelope {
  error: string;
  code: number;
  error_code: string;
}

export interface ApiErrorInit {
  /** The HTTP status; null when no answer came. */
  status?: number | null;
  /** The machine-readable code (the envelope's `error_code`); null when no answer came. */
  code?: string | null;
  /** Seconds the server asked to wait before trying again (`Retry-After`), if it said. */
  retryAfter?: number | null;
  /** The underlying error (a network failure), if any. */
  cause?: unknown;
}

/** The root of the client's errors: the server refused the call, or could not be reached. */
export class ApiError extends Error {
  /** The HTTP status of the answer (404, 503, ...); null when no answer came. */
  readonly status: number | null;
  /** The server's machine-readable `error_code` (`JOB_NOT_FOUND`, ...), stable across versions; null when no answer came. */
  readonly code: string | null;
  /** Seconds to wait before trying again, from the `Retry-After` header; null when not given. */
  readonly retryAfter: number | null;

  constructor(message: string, init: ApiErrorInit = {}) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.status = init.status ?? null;
    this.code = init.code ?? null;
    this.retryAfter = init.retryAfter ?? null;
  }
}

/** Could not reach the server, or the connection was lost before it answered. */
export class ConnectionFailed extends ApiError {}
/** No answer within the client's `timeoutMs`. */
export class RequestTimeout extends ConnectionFailed {}

/** The server refused the request as malformed (400). */
export class InvalidRequest extends ApiError {}
/** The search selector breaks a rule (400). */
export class InvalidSelector extends InvalidRequest {}
/** No kind is registered under that job type (400). */
export class UnknownJobType extends InvalidRequest {}
/** No API key, or one that is malformed, unknown or revoked (401). */
export class Unauthorized extends ApiError {}
/** The key may not do this (403; reserved, no route answers it today). */
export class Forbidden extends ApiError {}
/** Nothing is at that address (404). */
export class NotFound extends ApiError {}
/** No job with that id in the key's workspace (404). */
export class JobNotFound extends NotFound {}
/** No candidate source with that id (404). */
export class SourceNotFound extends NotFound {}
/** The route does not take that method (405). */
export class MethodNotAllowed extends ApiError {}
/** The request conflicts with the resource's state (409). */
export class Conflict extends ApiError {}
/** The job already completed or failed, so it cannot be cancelled (409). */
export class JobAlreadyFinished extends Conflict {}
/** Only a failed or cancelled job can be retried; this one is queued, running or completed (409). */
export class JobNotRetryable extends Conflict {}
/** Only a finished job can be deleted; this one is queued or running: cancel it first (409). */
export class JobNotFinished extends Conflict {}
/** The request body is over the server's limit (413). */
export class PayloadTooLarge extends ApiError {}
/** The server does not take that content type (415; reserved). */
export class UnsupportedMediaType extends ApiError {}
/** The server understood the request but will not act on it (422). */
export class Unprocessable extends ApiError {}
/** That Idempotency-Key was already used, within its 24 hours, with another request (422). */
export class IdempotencyKeyReused extends Unprocessable {}
/** The workspace has as many queued jobs as it may have; try again after `retryAfter` (429). */
export class QuotaExceeded extends ApiError {}
/** The server failed (5xx). */
export class ServerError extends ApiError {}
/** A bug in the server; it logged the traceback (500). */
export class InternalError extends ServerError {}
/** The server cannot reach its job store right now; try again after `retryAfter` (503). */
export class QueueUnavailable extends ServerError {}

// Each class's `name` is on its prototype, written out, so minified bundles keep it.
for (const [name, type] of Object.entries({
  ApiError,
  ConnectionFailed,
  RequestTimeout,
  InvalidRequest,
  InvalidSelector,
  UnknownJobType,
  Unauthorized,
  Forbidden,
  NotFound,
  JobNotFound,
  SourceNotFound,
  MethodNotAllowed,
  Conflict,
  JobAlreadyFinished,
  JobNotRetryable,
  JobNotFinished,
  PayloadTooLarge,
  UnsupportedMediaType,
  Unprocessable,
  IdempotencyKeyReused,
  QuotaExceeded,
  ServerError,
  InternalError,
  QueueUnavailable,
})) {
  Object.defineProperty(type.prototype, "name", { value: name, writable: true, configurable: true });
}

type ErrorClass = new (message: string, init?: ApiErrorInit) => ApiError;

/** The server's `error_code` → error class. */
const CODES: Record<string, ErrorClass> = {
  INVALID_REQUEST: InvalidRequest,
  BAD_REQUEST: InvalidRequest,
  INVALID_SELECTOR: InvalidSelector,
  UNKNOWN_JOB_TYPE: UnknownJobType,
  UNAUTHORIZED: Unauthorized,
  FORBIDDEN: Forbidden,
  NOT_FOUND: NotFound,
  JOB_NOT_FOUND: JobNotFound,
  SOURCE_NOT_FOUND: SourceNotFound,
  WEBHOOK_NOT_FOUND: NotFound,
  WEBHOOK_REFUSED: InvalidRequest,
  METHOD_NOT_ALLOWED: MethodNotAllowed,
  JOB_ALREADY_FINISHED: JobAlreadyFinished,
  JOB_NOT_RETRYABLE: JobNotRetryable,
  JOB_NOT_FINISHED: JobNotFinished,
  PAYLOAD_TOO_LARGE: PayloadTooLarge,
  UNSUPPORTED_MEDIA_TYPE: UnsupportedMediaType,
  UNPROCESSABLE_ENTITY: Unprocessable,
  IDEMPOTENCY_KEY_REUSED: IdempotencyKeyReused,
  QUOTA_EXCEEDED: QuotaExceeded,
  INTERNAL_ERROR: InternalError,
  STORE_UNAVAILABLE: QueueUnavailable,
  // the server's limits (docs/security.md)
  REQUEST_TIMEOUT: InvalidRequest,
  URL_TOO_LONG: InvalidRequest,
  HEADERS_TOO_LARGE: InvalidRequest,
  RATE_LIMITED: QuotaExceeded,
  TOO_MANY_WAITERS: QuotaExceeded,
  SERVER_BUSY: QueueUnavailable,
  SCHEMA_MISMATCH: QueueUnavailable,
};

/** The HTTP status → error class, for a code `CODES` does not know. */
const STATUSES: Record<number, ErrorClass> = {
  400: InvalidRequest,
  401: Unauthorized,
  403: Forbidden,
  404: NotFound,
  405: MethodNotAllowed,
  409: Conflict,
  413: PayloadTooLarge,
  415: UnsupportedMediaType,
  422: Unprocessable,
  429: QuotaExceeded,
  500: InternalError,
  503: QueueUnavailable,
};

/** The error for an answer with this status, `error_code` and message. */
export function errorFor(status: number, code: string, message: string, retryAfter: number | null): ApiError {
  const type = CODES[code] ?? STATUSES[status] ?? (status >= 500 ? ServerError : ApiError);
  return new type(message, { status, code, retryAfter });
}
