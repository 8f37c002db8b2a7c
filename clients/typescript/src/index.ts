/**
 * The jobhouse client: `createClient({ baseUrl, apiKey })`, then `client.jobs` (the workspace
 * surface) and `client.app` (the run surface). See README.md.
 */

export { JobhouseClient, createClient, type ClientOptions } from "./client.js";
export type { FetchLike } from "./http.js";
export type {
  CallOptions,
  CreateOptions,
  EventOptions,
  GetOptions,
  ListOptions,
  StreamOptions,
  WaitOptions,
} from "./jobs.js";
export type {
  ControlParams,
  CreateSearchParams,
  GetStatusParams,
  JobIdParams,
  RunEventParams,
  RunWaitParams,
  SearchParams,
  SyncParams,
} from "./app.js";
export {
  ApiError,
  Conflict,
  ConnectionFailed,
  Forbidden,
  IdempotencyKeyReused,
  InternalError,
  InvalidRequest,
  InvalidSelector,
  JobAlreadyFinished,
  JobNotFinished,
  JobNotFound,
  JobNotRetryable,
  MethodNotAllowed,
  NotFound,
  PayloadTooLarge,
  QueueUnavailable,
  QuotaExceeded,
  RequestTimeout,
  ServerError,
  SourceNotFound,
  Unauthorized,
  UnknownJobType,
  Unprocessable,
  UnsupportedMediaType,
  type ApiErrorInit,
  type ErrorEnvelope,
} from "./errors.js";
export { isCancelled, isFinished, isRunFinished } from "./types.js";
export type * from "./types.js";
export { SseParser, type SseEvent } from "./sse.js";
