/** The workspace surface, `/api/jobs`: `client.jobs`. */

import { eventStream } from "./events.js";
import { type Transport, newIdempotencyKey, sleep } from "./http.js";
import {
  type CreateJob,
  type Job,
  type JobChange,
  type JobEvent,
  type JobFilters,
  type JobPage,
  isFinished,
} from "./types.js";

/** Every call takes an optional `signal` that aborts it. */
export interface CallOptions {
  signal?: AbortSignal | undefined;
}

export interface ListOptions extends JobFilters, CallOptions {
  /** Jobs per page, 1-500 (the server's default is 50). */
  limit?: number | undefined;
  /** The `nextCursor` of the previous page. */
  cursor?: string | null | undefined;
}

export interface CreateOptions extends Omit<CreateJob, "runAt">, CallOptions {
  /**
   * Start no earlier than this time: a `Date`, or an ISO 8601 string with a UTC offset (`Z` or
   * `+02:00`; one without is refused by the server). Or `delayMs`; `priority` goes beside either.
   */
  runAt?: Date | string | null | undefined;
  /** Sent as `Idempotency-Key`; by default a random one, the same for every retry of this call. */
  idempotencyKey?: string | undefined;
}

export interface GetOptions extends CallOptions {
  /** `"done"` long-polls until the job ends or `timeoutMs` passes (one request; see `wait`). */
  wait?: "done" | undefined;
  /** How long the server may hold a `wait: "done"` request, 0-120000 ms. */
  timeoutMs?: number | undefined;
}

export interface WaitOptions extends CallOptions {
  /** Give up after this long and return the job as it is then; by default wait until it ends. */
  timeoutMs?: number | undefined;
}

export interface EventOptions extends CallOptions {
  /** Resume after this event id: only the events after it come. */
  lastEventId?: string | number | undefined;
}

export interface StreamOptions extends JobFilters, EventOptions {}

/** The server holds one long-poll at most this long (it may be configured lower). */
export const MAX_LONG_POLL_MS = 120_000;
/** A long-poll answered sooner than this without the job ending makes `wait` pause before asking again. */
const QUICK_ANSWER_MS = 500;

export class Jobs {
  constructor(private readonly transport: Transport) {}

  /** One page of the workspace's jobs, newest first: `{jobs, nextCursor}`. */
  async list(options: ListOptions = {}): Promise<JobPage> {
    const { signal, status, type, competitorId, limit, cursor } = options;
    return this.transport.json<JobPage>({
      method: "GET",
      path: "/api/jobs",
      query: { status, type, competitorId, limit, cursor },
      signal,
    });
  }

  /** Every job that matches, newest first, page after page (`limit` is the page size). */
  async *iterate(options: ListOptions = {}): AsyncGenerator<Job> {
    let cursor = options.cursor ?? undefined;
    for (;;) {
      const page = await this.list({ ...options, cursor });
      yield* page.jobs;
      // The last page says so with a null cursor; an empty page, or the same cursor again, ends it too.
      if (!page.nextCursor || page.nextCursor === cursor || page.jobs.length === 0) return;
      cursor = page.nextCursor;
    }
  }

  /** Every job that matches, in one array (follows every cursor: mind the size). */
  async listAll(options: ListOptions = {}): Promise<Job[]> {
    const jobs: Job[] = [];
    for await (const job of this.iterate(options)) jobs.push(job);
    return jobs;
  }

  /** The job; with `wait: "done"`, once it ends or `timeoutMs` passes (one long-poll). */
  async get<Result = unknown>(id: string, options: GetOptions = {}): Promise<Job<Result>> {
    const { wait, timeoutMs, signal } = options;
    const body = await this.transport.json<{ job: Job<Result> }>({
      method: "GET",
      path: `/api/jobs/${encodeURIComponent(id)}`,
      query: { wait, timeout_ms: timeoutMs },
      holdMs: wait === "done" ? (timeoutMs ?? 0) : 0,
      signal,
    });
    return body.job;
  }

  /**
   * Queue a job of a registered kind; answers at once with the job, `queued`. With `runAt` or
   * `delayMs` it waits for that time, reading `queued` with `scheduledAt` until then.
   */
  async create<Result = unknown>(options: CreateOptions): Promise<Job<Result>> {
    const { signal, idempotencyKey, type, input, metadata, competitorId, displayTitle, callbackUrl } = options;
    const { delayMs, priority } = options;
    const runAt = wireTime(options.runAt, "runAt");
    const body = await this.transport.json<{ job: Job<Result> }>({
      method: "POST",
      path: "/api/jobs",
      body: dropUndefined({ type, input, metadata, competitorId, displayTitle, callbackUrl, runAt, delayMs, priority }),
      headers: { "Idempotency-Key": idempotencyKey ?? newIdempotencyKey() },
      signal,
    });
    return body.job;
  }

  /** Cancel a queued or running job; returns it cancelled (`status: "failed"`, `currentStep: "Cancelled"`). */
  async cancel<Result = unknown>(id: string, options: CallOptions = {}): Promise<Job<Result>> {
    const body = await this.transport.json<{ success: true; job: Job<Result> }>({
      method: "POST",
      path: `/api/jobs/${encodeURIComponent(id)}/cancel`,
      signal: options.signal,
    });
    return body.job;
  }

  /**
   * Run a failed or cancelled job again: the same job, `queued`, whose next run is its next
   * attempt, with its `errors` kept. A job that is queued, running or completed throws
   * `JobNotRetryable` (409). Not sent twice after a lost answer: it would run the job twice.
   */
  async retry<Result = unknown>(id: string, options: CallOptions = {}): Promise<Job<Result>> {
    const body = await this.transport.json<{ job: Job<Result> }>({
      method: "POST",
      path: `/api/jobs/${encodeURIComponent(id)}/retry`,
      signal: options.signal,
      repeatable: false,
    });
    return body.job;
  }

  /**
   * Delete a finished job, with its events and webhook deliveries. A queued or running job throws
   * `JobNotFinished` (409): cancel it first.
   */
  async delete(id: string, options: CallOptions = {}): Promise<void> {
    await this.transport.done({
      method: "DELETE",
      path: `/api/jobs/${encodeURIComponent(id)}`,
      signal: options.signal,
    });
  }

  /**
   * The job once it has ended (completed, failed or cancelled), long-polling as many times as it
   * takes: past the server's cap on one long-poll, and past 120 s. With `timeoutMs`, the job as it
   * is when that time has passed, ended or not (not an error: check `status`).
   */
  async wait<Result = unknown>(id: string, options: WaitOptions = {}): Promise<Job<Result>> {
    const { timeoutMs, signal } = options;
    return longPoll((hold) => this.get<Result>(id, { wait: "done", timeoutMs: hold, signal }), isFinished, timeoutMs, signal);
  }

  /**
   * The job's events as they happen, typed (`created`, `status`, `step`, ...). Without
   * `lastEventId` the job's whole history comes first. Ends after the terminal event; a dropped
   * connection is resumed where it stopped.
   */
  events<Result = unknown>(id: string, options: EventOptions = {}): AsyncGenerator<JobEvent<Result>> {
    return eventStream<JobChange<Result>>(this.transport, {
      path: `/api/jobs/${encodeURIComponent(id)}/events`,
      lastEventId: options.lastEventId,
      signal: options.signal,
      isTerminal: isFinished,
    });
  }

  /**
   * Every event of the workspace's jobs, filtered like `list`, from now on (or after
   * `lastEventId`). It never ends by itself: break out of the loop, or abort `signal`.
   */
  stream(options: StreamOptions = {}): AsyncGenerator<JobEvent> {
    const { status, type, competitorId } = options;
    return eventStream<JobChange>(this.transport, {
      path: "/api/jobs/events",
      query: { status, type, competitorId },
      lastEventId: options.lastEventId,
      signal: options.signal,
    });
  }
}

/**
 * Long-poll with `poll(holdMs)` until `finished` says the job has ended, or `timeoutMs` (if given)
 * has passed; each request asks the server to hold it at most `MAX_LONG_POLL_MS`. A server may
 * hold one for less (its `long_poll_max` setting): an early answer with the job still going just
 * means "ask again".
 */
export async function longPoll<J>(
  poll: (holdMs: number) => Promise<J>,
  finished: (job: J) => boolean,
  timeoutMs: number | undefined,
  signal: AbortSignal | undefined,
): Promise<J> {
  const deadline = timeoutMs === undefined ? Infinity : Date.now() + Math.max(0, timeoutMs);
  let pause = 250;
  for (;;) {
    const hold = Math.max(0, Math.min(MAX_LONG_POLL_MS, Math.ceil(deadline - Date.now())));
    const asked = Date.now();
    const job = await poll(hold);
    if (finished(job) || Date.now() >= deadline) return job;
    if (Date.now() - asked < Math.min(hold, QUICK_ANSWER_MS)) {
      // Answered at once without an end (a server shutting down): do not ask in a tight loop.
      await sleep(Math.min(pause, Math.max(0, deadline - Date.now())), signal);
      pause = Math.min(pause * 2, 2000);
    } else {
      pause = 250;
    }
  }
}

/** A time as the server reads it: a `Date` in ISO 8601 (UTC, to the millisecond); a string as given. */
export function wireTime(value: Date | string | null | undefined, name: string): string | null | undefined {
  if (!(value instanceof Date)) return value;
  if (Number.isNaN(value.getTime())) throw new RangeError(`${name} is an invalid Date`);
  return value.toISOString();
}

export function dropUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
