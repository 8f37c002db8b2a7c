/**
 * The shapes the jobhouse HTTP API speaks (docs/api.md, and the server's `/openapi.json`).
 *
 * The run surface (`/api/v1/run`) is snake_case with timestamps to the second; the workspace
 * surface (`/api/jobs`) is camelCase with timestamps to the millisecond. Timestamps are ISO 8601
 * strings in UTC, as the server sends them.
 */

/** Any JSON object: a job's `input` and `metadata`. */
export type JsonObject = { [key: string]: unknown };

/** A step's status. */
export type StepStatus = "pending" | "running" | "completed" | "failed";

/** One named step of a job, in the order its kind declares them. */
export interface Step {
  id: string;
  name: string;
  status: StepStatus;
}

/** Why a job failed, or that it was cancelled (`type: "cancelled"`). */
export interface JobErrorInfo {
  message: string;
  /** A short name: the exception's class, or `timeout`, `lost`, `cancelled`. */
  type: string;
  /** Where the handler raised: only for kinds that opt in (`expose_traceback`). */
  traceback?: string;
}

/** The error of one failed or lost attempt. */
export interface AttemptError {
  attempt: number | null;
  message: string;
  type: string;
  at: string | null;
  /** Where the handler raised: only for kinds that opt in (`expose_traceback`). */
  traceback?: string;
}

// -- the workspace surface -------------------------------------------------------------------

/** A job's status on the workspace surface. A cancelled job reads `failed`, with `currentStep: "Cancelled"`. */
export type JobStatus = "queued" | "running" | "completed" | "failed";

/** The statuses `jobs.list` filters by: the four above, plus `cancelled` for cancelled jobs only. */
export type JobStatusFilter = JobStatus | "cancelled";

/** A job on the workspace surface (`/api/jobs`). */
export interface Job<Result = unknown> {
  id: string;
  workspaceId: string;
  /** What the job is about (its subject); null when nothing. */
  competitorId: string | null;
  /** The job's kind. */
  type: string;
  displayTitle: string;
  status: JobStatus;
  /** 0-100. */
  progress: number;
  /** The running step's name; `"Cancelled"` once cancelled; else null. */
  currentStep: string | null;
  steps: Step[];
  startedAt: string | null;
  completedAt: string | null;
  metadata: JsonObject;
  createdAt: string;
  updatedAt: string;
  input: JsonObject;
  /** The job's result once completed, else null. */
  result: Result | null;
  resultType: string | null;
  error: JobErrorInfo | null;
  attempt: number;
  maxAttempts: number;
  errors: AttemptError[];
  /** -10 to 10; claims take higher priorities first (the kind's default unless the create gave one). */
  priority: number;
  /** While the job is queued for a later time (created with `runAt`/`delayMs`, or waiting to retry): when it may start; else null. */
  scheduledAt: string | null;
}

/** One page of `GET /api/jobs`. */
export interface JobPage {
  jobs: Job[];
  /** Pass it back as `cursor` for the next page; null on the last page. */
  nextCursor: string | null;
}

/** What `jobs.create` sends (`POST /api/jobs`). */
export interface CreateJob {
  /** A kind registered on the server. */
  type: string;
  input?: JsonObject | null;
  metadata?: JsonObject | null;
  competitorId?: string | null;
  displayTitle?: string | null;
  /** A URL the server POSTs the job to when it ends (a host the operator allows: docs/webhooks.md). */
  callbackUrl?: string | null;
  /** Start no earlier than this time: ISO 8601 with a UTC offset (`Z` or `+02:00`), at most 366 days ahead. */
  runAt?: string | null;
  /** Start no earlier than this many milliseconds from now (0 to 366 days); not with `runAt`. */
  delayMs?: number | null;
  /** -10 to 10, higher first; the kind's default (0 unless it says otherwise) when absent. */
  priority?: number | null;
}

/** The filters of `GET /api/jobs` and `GET /api/jobs/events`. */
export interface JobFilters {
  status?: JobStatusFilter;
  type?: string;
  competitorId?: string;
}

// -- the run surface -------------------------------------------------------------------------

/** A job's status on the run surface. */
export type RunJobStatus = "queued" | "running" | "done" | "failed" | "cancelled";

/** A job on the run surface (`/api/v1/run`). */
export interface RunJob<Result = unknown> {
  job_id: string;
  kind: string;
  status: RunJobStatus;
  created_at: string;
  updated_at: string;
  progress: number;
  current_step: string | null;
  steps: Step[];
  attempt: number;
  /** Present once the job is done. */
  result_type?: string | null;
  /** Present once the job is done. */
  result?: Result;
  /** Present once the job failed or was cancelled. */
  error?: JobErrorInfo;
  /** -10 to 10; claims take higher priorities first. */
  priority: number;
  /** Present while the job is queued for a later time: when it may start (to the second). */
  scheduled_at?: string;
}

/** What a candidate search looks for. Only `app` is required. */
export interface Selector {
  /** The application's name (1-200 characters). */
  app: string;
  os?: "linux" | "macos" | "windows";
  kind?: "gui" | "cli";
  /** 1-100; the server's default is 25. */
  limit?: number;
  /** Leading version components: `"2"` matches 2.10.34, never 20.1. */
  version?: string;
  /** Only candidates this source knows. */
  source?: string;
}

/** How a candidate matched, best first. */
export type MatchTier = "exact" | "prefix" | "word" | "substring" | "keyword" | "fuzzy";

/** One application on one OS, merged from every source that knows it. */
export interface Candidate {
  /** `<os>:<app>`, stable across syncs. */
  id: string;
  app: string;
  name: string;
  version: string | null;
  os: "linux" | "macos" | "windows";
  kind: "gui" | "cli";
  source: string;
  sources: string[];
  installed: boolean;
  /** 0-100. */
  score: number;
  match: MatchTier;
  launch: string | null;
  install: string | null;
  description: string | null;
  package: string | null;
}

/** Ranked candidates, best first: the answer of `app.search`, and a search job's `result`. */
export interface SearchResponse {
  candidates: Candidate[];
}

/** A candidate source and what the store remembers of its last sync. */
export interface Source {
  id: string;
  title: string;
  synced_at: string | null;
  candidate_count: number;
  last_error: string | null;
  last_error_at: string | null;
}

export interface SourceList {
  sources: Source[];
}

// -- events ----------------------------------------------------------------------------------

/** What an event says changed, the most telling first (other names may come in later versions). */
export type JobEventType = "created" | "status" | "attempt" | "step" | "progress";

/** One server-sent event of a job stream. */
export interface StreamEvent<Change> {
  /** The event's id, increasing within a stream: pass it as `lastEventId` to resume after it. */
  id: number;
  /** What changed. */
  event: JobEventType | (string & {});
  /** The job's changing fields as they were at that change. */
  job: Change;
}

/** A workspace-surface job as an event shows it; the terminal event adds how it ended. */
export interface JobChange<Result = unknown> {
  id: string;
  type: string;
  competitorId: string | null;
  status: JobStatus;
  progress: number;
  currentStep: string | null;
  steps: Step[];
  attempt: number;
  updatedAt: string;
  /** Terminal event only. */
  result?: Result | null;
  /** Terminal event only. */
  resultType?: string | null;
  /** Terminal event only. */
  error?: JobErrorInfo | null;
  /** Terminal event only. */
  completedAt?: string | null;
}

/** A run-surface job as an event shows it; the terminal event adds how it ended. */
export interface RunJobChange<Result = unknown> {
  job_id: string;
  kind: string;
  status: RunJobStatus;
  progress: number;
  current_step: string | null;
  steps: Step[];
  attempt: number;
  updated_at: string;
  /** Terminal event of a done job only. */
  result_type?: string | null;
  /** Terminal event of a done job only. */
  result?: Result;
  /** Terminal event of a failed or cancelled job only. */
  error?: JobErrorInfo;
}

/** An event of `GET /api/jobs/{id}/events` or `GET /api/jobs/events`. */
export type JobEvent<Result = unknown> = StreamEvent<JobChange<Result>>;

/** An event of `GET /api/v1/run/jobs/{job_id}/events`. */
export type RunJobEvent<Result = unknown> = StreamEvent<RunJobChange<Result>>;

// -- terminal states -------------------------------------------------------------------------

/** Whether a workspace-surface job has ended (completed, failed or cancelled). */
export function isFinished(job: { status: JobStatus }): boolean {
  return job.status === "completed" || job.status === "failed";
}

/** Whether a run-surface job has ended. */
export function isRunFinished(job: { status: RunJobStatus }): boolean {
  return job.status === "done" || job.status === "failed" || job.status === "cancelled";
}

/** Whether a workspace-surface job was cancelled (it reads `failed` there). */
export function isCancelled(job: { currentStep: string | null; error?: JobErrorInfo | null }): boolean {
  return job.error?.type === "cancelled" || job.currentStep === "Cancelled";
}
