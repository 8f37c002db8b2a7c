/** `JobhouseClient`: one object per server and key, holding both surfaces. */

import { App } from "./app.js";
import { type FetchLike, Transport } from "./http.js";
import { Jobs } from "./jobs.js";

export interface ClientOptions {
  /** The server's address, e.g. `http://127.0.0.1:8000` (a path prefix is kept). */
  baseUrl: string;
  /** The workspace's API key, sent as `Authorization: Bearer <key>`. */
  apiKey?: string | undefined;
  /** The `fetch` to use; by default the platform's. */
  fetch?: FetchLike | undefined;
  /** How many times a call that met a 503, a 429 or a lost connection is tried again (default 3). */
  retries?: number | undefined;
  /** How long one request may take, in ms (default 30000); a long-poll gets its own wait on top. */
  timeoutMs?: number | undefined;
  /** The longest wait before one retry, in ms (default 30000); a longer `Retry-After` is cut to it. */
  maxRetryWaitMs?: number | undefined;
  /** Extra headers for every request. */
  headers?: Record<string, string> | undefined;
}

export class JobhouseClient {
  /** The workspace surface, `/api/jobs`: list, get, create, cancel, retry, delete, wait, events, stream. */
  readonly jobs: Jobs;
  /** The run surface, `/api/v1/run`: `app.jobs`, `app.sources`, `app.search`. */
  readonly app: App;
  /** The server's address, without a trailing slash. */
  readonly baseUrl: string;

  constructor(options: ClientOptions) {
    const transport = new Transport(options);
    this.baseUrl = transport.baseUrl;
    this.jobs = new Jobs(transport);
    this.app = new App(transport);
  }
}

/** `new JobhouseClient(options)`. */
export function createClient(options: ClientOptions): JobhouseClient {
  return new JobhouseClient(options);
}
