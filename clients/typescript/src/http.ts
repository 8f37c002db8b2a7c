/**
 * One HTTP exchange with the server: headers, the key, a per-request timeout, the caller's
 * `AbortSignal`, error envelopes turned into typed errors, and retries.
 *
 * What is retried: an answer of 503 or 429 (or 502 or 504, from a proxy in front of the server),
 * a connection that failed or dropped, and a request that timed out. Nearly every call of this
 * client is safe to repeat: reads, cancels and deletes by nature (a delete repeated after a lost
 * answer finds the job gone, and that counts as done), and the calls that create a job send an
 * `Idempotency-Key` that stays the same across the retries of one call, so the server makes one job
 * however often the request arrives. The one that is not, a job's retry, is sent again only after a
 * 429 (the server did nothing). A `Retry-After`
 * header says how long to wait (at most `maxRetryWaitMs`); without one the wait doubles from half
 * a second, with jitter, so many clients do not come back at the same moment.
 */

import { ApiError, ConnectionFailed, RequestTimeout, errorFor } from "./errors.js";

export type FetchLike = (input: string, init: RequestInit) => Promise<Response>;

/** A query string's values; undefined and null are left out. */
export type Query = Record<string, string | number | boolean | undefined | null>;

export interface TransportOptions {
  baseUrl: string;
  apiKey?: string | undefined;
  fetch?: FetchLike | undefined;
  retries?: number | undefined;
  timeoutMs?: number | undefined;
  maxRetryWaitMs?: number | undefined;
  headers?: Record<string, string> | undefined;
}

export interface RequestSpec {
  method: "GET" | "POST" | "DELETE";
  path: string;
  query?: Query | undefined;
  body?: unknown;
  headers?: Record<string, string> | undefined;
  signal?: AbortSignal | undefined;
  /** Added to the timeout: how long the server may hold this request on purpose (a long-poll). */
  holdMs?: number | undefined;
  /** False: doing it twice would do more than doing it once, so it is sent again only after a 429. */
  repeatable?: boolean | undefined;
}

/** The default number of retries after the first try. */
export const DEFAULT_RETRIES = 3;
/** The default time one request may take, in milliseconds (a long-poll gets its wait on top). */
export const DEFAULT_TIMEOUT_MS = 30_000;
/** The default longest wait before one retry, in milliseconds (a longer `Retry-After` is cut to it). */
export const DEFAULT_MAX_RETRY_WAIT_MS = 30_000;
const BACKOFF_FIRST_MS = 500;
/** The reason our own timer aborts a request with. */
const TIMED_OUT = Symbol("timed out");

export class Transport {
  readonly baseUrl: string;
  readonly retries: number;
  readonly timeoutMs: number;
  readonly maxRetryWaitMs: number;
  private readonly apiKey: string | undefined;
  private readonly fetchImpl: FetchLike;
  private readonly headers: Record<string, string>;

  constructor(options: TransportOptions) {
    if (!options.baseUrl) throw new TypeError("baseUrl is required, e.g. http://127.0.0.1:8000");
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.apiKey = options.apiKey;
    this.retries = Math.max(0, Math.floor(options.retries ?? DEFAULT_RETRIES));
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.maxRetryWaitMs = options.maxRetryWaitMs ?? DEFAULT_MAX_RETRY_WAIT_MS;
    if (!(this.timeoutMs > 0) || !(this.maxRetryWaitMs >= 0)) {
      throw new RangeError("timeoutMs must be positive, and maxRetryWaitMs not negative");
    }
    this.headers = { ...options.headers };
    if (options.fetch !== undefined) {
      this.fetchImpl = options.fetch;
    } else if (typeof globalThis.fetch === "function") {
      this.fetchImpl = (input, init) => globalThis.fetch(input, init);
    } else {
      throw new TypeError("this platform has no fetch: pass one as the `fetch` option");
    }
  }

  /** Send a request and return its JSON body; throws an `ApiError` for an error answer. */
  async json<T>(spec: RequestSpec): Promise<T> {
    return this.withRetries(spec, async (response) => {
      const text = await response.text();
      try {
        return (text === "" ? null : JSON.parse(text)) as T;
      } catch (cause) {
        throw new ApiError(`Unexpected answer from ${spec.method} ${spec.path}: the body is not JSON`, {
          status: response.status,
          code: "UNEXPECTED_RESPONSE",
          cause,
        });
      }
    });
  }

  /**
   * Send a request whose answer has no body (a delete). A 404 on a retry means the first try did
   * it (its answer was lost): that is success too.
   */
  async done(spec: RequestSpec): Promise<void> {
    await this.withRetries(spec, async () => undefined, false, () => undefined);
  }

  /**
   * Send a request and return the response once its headers are in, for a body read as a
   * stream. Only the wait for the headers is under `timeoutMs`; the caller's `signal` (which it
   * must abort when it is done) covers the body.
   */
  async open(spec: RequestSpec): Promise<Response> {
    return this.withRetries(spec, async (response) => response, true);
  }

  private async withRetries<T>(
    spec: RequestSpec,
    read: (response: Response) => Promise<T>,
    streaming = false,
    gone?: () => T,
  ): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      let failure: ApiError;
      try {
        return await this.once(spec, read, streaming);
      } catch (error) {
        if (gone !== undefined && attempt > 0 && error instanceof ApiError && error.status === 404) return gone();
        if (!(error instanceof ApiError) || !retryable(error, spec.repeatable ?? true)) throw error;
        failure = error;
      }
      if (attempt >= this.retries) throw failure;
      await sleep(this.delay(failure, attempt), spec.signal);
    }
  }

  /** How long to wait before the retry that follows try number `attempt` (from 0), in milliseconds. */
  private delay(failure: ApiError, attempt: number): number {
    if (failure.retryAfter !== null) return Math.min(failure.retryAfter * 1000, this.maxRetryWaitMs);
    const backoff = Math.min(this.maxRetryWaitMs, BACKOFF_FIRST_MS * 2 ** attempt);
    return backoff * (0.5 + Math.random() / 2);
  }

  private async once<T>(spec: RequestSpec, read: (response: Response) => Promise<T>, streaming: boolean): Promise<T> {
    spec.signal?.throwIfAborted();
    const controller = new AbortController();
    const limit = this.timeoutMs + (spec.holdMs ?? 0);
    const timer = setTimeout(() => controller.abort(TIMED_OUT), limit);
    const onAbort = () => controller.abort(spec.signal?.reason);
    spec.signal?.addEventListener("abort", onAbort, { once: true });
    let keepSignal = false;
    try {
      let response: Response;
      try {
        const fetcher = this.fetchImpl; // called unbound: a browser's fetch refuses another `this`
        response = await fetcher(this.url(spec.path, spec.query), {
          method: spec.method,
          headers: this.headersFor(spec),
          body: spec.body === undefined ? null : JSON.stringify(spec.body),
          signal: controller.signal,
        });
      } catch (cause) {
        throw this.failed(spec, controller, limit, cause);
      }
      if (!response.ok) {
        throw await errorOf(response).catch((cause: unknown) => this.failed(spec, controller, limit, cause));
      }
      if (streaming) {
        clearTimeout(timer);
        keepSignal = true; // the body is read later, and the caller's abort must still reach it
        return await read(response);
      }
      try {
        return await read(response);
      } catch (cause) {
        if (cause instanceof ApiError) throw cause;
        throw this.failed(spec, controller, limit, cause);
      }
    } finally {
      clearTimeout(timer);
      if (!keepSignal) spec.signal?.removeEventListener("abort", onAbort);
    }
  }

  /** What a fetch (or body read) that threw means: the caller's abort, our timeout, or a network failure. */
  private failed(spec: RequestSpec, controller: AbortController, limitMs: number, cause: unknown): unknown {
    if (spec.signal?.aborted) return spec.signal.reason;
    if (controller.signal.reason === TIMED_OUT) {
      return new RequestTimeout(`No answer from ${spec.method} ${spec.path} within ${limitMs} ms`, { cause });
    }
    if (cause instanceof ApiError) return cause;
    return new ConnectionFailed(`Could not reach the jobhouse server at ${this.baseUrl}: ${describe(cause)}`, {
      cause,
    });
  }

  private url(path: string, query?: Query): string {
    const params = new URLSearchParams();
    for (const [name, value] of Object.entries(query ?? {})) {
      if (value !== undefined && value !== null) params.append(name, String(value));
    }
    const search = params.toString();
    return `${this.baseUrl}${path}${search ? `?${search}` : ""}`;
  }

  private headersFor(spec: RequestSpec): Record<string, string> {
    const headers: Record<string, string> = { Accept: "application/json", ...this.headers, ...spec.headers };
    if (this.apiKey !== undefined) headers["Authorization"] = `Bearer ${this.apiKey}`;
    if (spec.body !== undefined) headers["Content-Type"] = "application/json";
    return headers;
  }
}

/** 503 and 429 say "later"; 502 and 504 come from a proxy that could not reach the server. */
const RETRY_STATUSES = new Set([429, 502, 503, 504]);

function retryable(error: ApiError, repeatable: boolean): boolean {
  if (!repeatable) return error.status === 429;
  return error instanceof ConnectionFailed || (error.status !== null && RETRY_STATUSES.has(error.status));
}

/** The typed error of an answer that is not 2xx: from the server's envelope when it sent one. */
async function errorOf(response: Response): Promise<ApiError> {
  const retryAfter = parseRetryAfter(response.headers.get("Retry-After"));
  const text = await response.text();
  const envelope = parseEnvelope(text);
  const message = envelope.error ?? (text.slice(0, 200).trim() || response.statusText || `HTTP ${response.status}`);
  const code = envelope.error_code ?? `HTTP_${response.status}`;
  return errorFor(response.status, code, message, retryAfter);
}

function parseEnvelope(text: string): { error?: string; error_code?: string } {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    return {};
  }
  if (typeof body !== "object" || body === null) return {};
  const { error, error_code } = body as Record<string, unknown>;
  return {
    ...(typeof error === "string" ? { error } : {}),
    ...(typeof error_code === "string" ? { error_code } : {}),
  };
}

/** Seconds from a `Retry-After` header: a number of seconds, or an HTTP date. */
export function parseRetryAfter(value: string | null): number | null {
  if (value === null || value.trim() === "") return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds);
  const date = Date.parse(value);
  if (Number.isNaN(date)) return null;
  return Math.max(0, (date - Date.now()) / 1000);
}

/** Wait `ms`, or reject with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

function describe(cause: unknown): string {
  if (cause instanceof Error) {
    const inner = (cause as { cause?: unknown }).cause;
    return inner instanceof Error ? `${cause.message} (${inner.message})` : cause.message;
  }
  return String(cause);
}

/** A fresh idempotency key: a random UUID, made even where `crypto.randomUUID` is missing (plain-HTTP pages). */
export function newIdempotencyKey(): string {
  const crypto = globalThis.crypto;
  if (typeof crypto?.randomUUID === "function") return crypto.randomUUID();
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  bytes[6] = (bytes[6]! & 0x0f) | 0x40;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
