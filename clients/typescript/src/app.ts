/**
 * The run surface, `/api/v1/run`: `client.app`. Its calls take one object of snake_case
 * parameters and return the server's bodies as they are, e.g.
 *
 * ```ts
 * const job = await client.app.jobs.createSearch({ data: { app: "firefox", os: "linux", kind: "gui" } });
 * const status = await client.app.jobs.getStatus({ job_id: job.job_id, wait: "done", timeout_ms: 60000 });
 * ```
 */

import { eventStream } from "./events.js";
import { type Transport, newIdempotencyKey } from "./http.js";
import { type CallOptions, dropUndefined, longPoll, wireTime } from "./jobs.js";
import {
  type RunJob,
  type RunJobEvent,
  type RunJobChange,
  type SearchResponse,
  type Selector,
  type SourceList,
  isRunFinished,
} from "./types.js";

export interface GetStatusParams extends CallOptions {
  job_id: string;
  /** `"done"` long-polls until the job ends or `timeout_ms` passes. */
  wait?: "done" | undefined;
  /** 0-120000; the server's default is 0 (answer at once). */
  timeout_ms?: number | undefined;
}

/** When and how soon a job of the run surface runs (docs/job-control.md); sent beside its body. */
export interface ControlParams {
  /** Start no earlier than this time: a `Date`, or an ISO 8601 string with a UTC offset. */
  run_at?: Date | string | undefined;
  /** Start no earlier than this many milliseconds from now; not with `run_at`. */
  delay_ms?: number | undefined;
  /** -10 to 10, higher first; the kind's default when absent. */
  priority?: number | undefined;
}

export interface CreateSearchParams extends CallOptions, ControlParams {
  data: Selector;
  /** Sent as `Idempotency-Key`; by default a random one, the same for every retry of this call. */
  idempotencyKey?: string | undefined;
}

export interface SearchParams extends CallOptions {
  data: Selector;
}

export interface RunWaitParams extends CallOptions {
  job_id: string;
  /** Give up after this many ms and return the job as it is then; by default wait until it ends. */
  timeout_ms?: number | undefined;
}

export interface JobIdParams extends CallOptions {
  job_id: string;
}

export interface RunEventParams extends JobIdParams {
  /** Resume after this event id. */
  lastEventId?: string | number | undefined;
}

export interface SyncParams extends CallOptions, ControlParams {
  /** One source's id; all sources when absent. */
  source_id?: string | undefined;
  /** Read the sources again even if their files did not change. */
  force?: boolean | undefined;
  idempotencyKey?: string | undefined;
}

export class RunJobs {
  constructor(private readonly transport: Transport) {}

  /** `GET /api/v1/run/jobs/{job_id}`: the job, or with `wait: "done"` once it ends (or `timeout_ms` passes). */
  async getStatus<Result = unknown>(params: GetStatusParams): Promise<RunJob<Result>> {
    const { job_id, wait, timeout_ms, signal } = params;
    return this.transport.json<RunJob<Result>>({
      method: "GET",
      path: `/api/v1/run/jobs/${encodeURIComponent(job_id)}`,
      query: { wait, timeout_ms },
      holdMs: wait === "done" ? (timeout_ms ?? 0) : 0,
      signal,
    });
  }

  /**
   * The job once it has ended (done, failed or cancelled), long-polling `getStatus` as many times
   * as it takes; with `timeout_ms`, the job as it is when that time has passed, ended or not.
   */
  async wait<Result = unknown>(params: RunWaitParams): Promise<RunJob<Result>> {
    const { job_id, timeout_ms, signal } = params;
    return longPoll(
      (hold) => this.getStatus<Result>({ job_id, wait: "done", timeout_ms: hold, signal }),
      isRunFinished,
      timeout_ms,
      signal,
    );
  }

  /**
   * `POST /api/v1/run/search/jobs`: queue a candidate search; answers at once with the job handle.
   * `run_at`/`delay_ms` make it wait (it reads `queued` with `scheduled_at`), `priority` orders it.
   */
  async createSearch(params: CreateSearchParams): Promise<RunJob<SearchResponse>> {
    return this.transport.json<RunJob<SearchResponse>>({
      method: "POST",
      path: "/api/v1/run/search/jobs",
      body: { ...params.data, ...control(params) },
      headers: { "Idempotency-Key": params.idempotencyKey ?? newIdempotencyKey() },
      signal: params.signal,
    });
  }

  /** `POST /api/v1/run/jobs/{job_id}/cancel`: the job, now `cancelled`. */
  async cancel<Result = unknown>(params: JobIdParams): Promise<RunJob<Result>> {
    return this.transport.json<RunJob<Result>>({
      method: "POST",
      path: `/api/v1/run/jobs/${encodeURIComponent(params.job_id)}/cancel`,
      signal: params.signal,
    });
  }

  /** `GET /api/v1/run/jobs/{job_id}/events`: the job's events (snake_case), ending after the terminal one. */
  events<Result = unknown>(params: RunEventParams): AsyncGenerator<RunJobEvent<Result>> {
    return eventStream<RunJobChange<Result>>(this.transport, {
      path: `/api/v1/run/jobs/${encodeURIComponent(params.job_id)}/events`,
      lastEventId: params.lastEventId,
      signal: params.signal,
      isTerminal: isRunFinished,
    });
  }
}

export class Sources {
  constructor(private readonly transport: Transport) {}

  /** `GET /api/v1/run/sources`: `{sources: [...]}`. */
  async list(params: CallOptions = {}): Promise<SourceList> {
    return this.transport.json<SourceList>({ method: "GET", path: "/api/v1/run/sources", signal: params.signal });
  }

  /** Queue a `source-sync` job for one source (`source_id`) or all of them; answers with its handle. */
  async sync(params: SyncParams = {}): Promise<RunJob> {
    const { source_id, force, idempotencyKey, signal } = params;
    const path =
      source_id === undefined ? "/api/v1/run/sources/sync" : `/api/v1/run/sources/${encodeURIComponent(source_id)}/sync`;
    const body = dropUndefined({ force, ...control(params) });
    return this.transport.json<RunJob>({
      method: "POST",
      path,
      body: Object.keys(body).length === 0 ? undefined : body,
      headers: { "Idempotency-Key": idempotencyKey ?? newIdempotencyKey() },
      signal,
    });
  }
}

/** The run surface's job-control fields of `params`, as the server reads them. */
function control(params: ControlParams): Record<string, unknown> {
  const { delay_ms, priority } = params;
  return dropUndefined({ run_at: wireTime(params.run_at, "run_at"), delay_ms, priority });
}

export class App {
  readonly jobs: RunJobs;
  readonly sources: Sources;

  constructor(private readonly transport: Transport) {
    this.jobs = new RunJobs(transport);
    this.sources = new Sources(transport);
  }

  /** `POST /api/v1/run/search`: the candidate search, answered in the request: `{candidates: [...]}`. */
  async search(params: SearchParams): Promise<SearchResponse> {
    return this.transport.json<SearchResponse>({
      method: "POST",
      path: "/api/v1/run/search",
      body: params.data,
      signal: params.signal,
    });
  }
}
