// Compiled, never run (`npm run build` type-checks it against the built declarations): the calls
// of the README and of the API documents type-check as written, and misuses do not.

import {
  ApiError,
  type Job,
  type JobEvent,
  JobNotFound,
  type RunJob,
  type SearchResponse,
  createClient,
  isFinished,
} from "../dist/index.js";

export async function seedCalls(): Promise<void> {
  const client = createClient({ baseUrl: "http://127.0.0.1:8000", apiKey: "jh_..." });

  // The run surface, exactly as the seed writes it.
  const job = await client.app.jobs.createSearch({ data: { app: "firefox", os: "linux", kind: "gui" } });
  const status: RunJob<SearchResponse> = await client.app.jobs.getStatus<SearchResponse>({
    job_id: job.job_id,
    wait: "done",
    timeout_ms: 60000,
  });
  const names: string[] = (status.result?.candidates ?? []).map((candidate) => candidate.name);
  const found: SearchResponse = await client.app.search({ data: { app: "gimp", limit: 5 } });
  const { sources } = await client.app.sources.list();
  await client.app.sources.sync({ source_id: sources[0]?.id, force: true });
  await client.app.jobs.cancel({ job_id: job.job_id });
  await client.app.jobs.wait({ job_id: job.job_id, timeout_ms: 5000 });
  for await (const event of client.app.jobs.events({ job_id: job.job_id })) {
    const progress: number = event.job.progress;
    void progress;
  }

  // The workspace surface.
  const created: Job<{ battlecard: string }> = await client.jobs.create({
    type: "collect",
    competitorId: "acme",
    metadata: { isFirstRun: true },
  });
  const done = await client.jobs.wait<{ battlecard: string }>(created.id, { timeoutMs: 60_000 });
  const later: Job = await client.jobs.create({ type: "collect", runAt: new Date(Date.now() + 60_000), priority: 5 });
  const soon = await client.jobs.create({ type: "collect", runAt: "2030-01-01T09:00:00Z" });
  await client.jobs.create({ type: "collect", delayMs: 30_000, priority: -5 });
  const when: string | null = later.scheduledAt;
  const priority: number = soon.priority;
  await client.app.jobs.createSearch({ data: { app: "firefox" }, run_at: new Date(), priority: 1 });
  await client.app.sources.sync({ delay_ms: 1000 });
  const battlecard: string | undefined = done.result?.battlecard;
  const retried: Job = await client.jobs.retry(created.id);
  await client.jobs.cancel(retried.id);
  await client.jobs.delete(retried.id);
  const page = await client.jobs.list({ status: "failed", type: "collect", limit: 100 });
  const next: string | null = page.nextCursor;
  for await (const each of client.jobs.iterate({ competitorId: "acme" })) void each.id;
  for await (const event of client.jobs.events(created.id, { lastEventId: 41 })) {
    const typed: JobEvent = event;
    if (isFinished(typed.job)) break;
  }
  for await (const event of client.jobs.stream({ status: "completed", signal: AbortSignal.timeout(1000) })) {
    void event.job.resultType;
  }
  try {
    await client.jobs.get("nope");
  } catch (error) {
    if (error instanceof JobNotFound) void error.code;
    if (error instanceof ApiError) void [error.status, error.retryAfter];
  }
  void [names, found, battlecard, next, when, priority];
}

export async function misuses(): Promise<void> {
  const client = createClient({ baseUrl: "http://127.0.0.1:8000" });
  // @ts-expect-error: wait only takes "done"
  await client.app.jobs.getStatus({ job_id: "x", wait: "soon" });
  // @ts-expect-error: a selector needs app
  await client.app.jobs.createSearch({ data: { os: "linux" } });
  // @ts-expect-error: os is one of three
  await client.app.search({ data: { app: "x", os: "beos" } });
  // @ts-expect-error: the workspace statuses are camelCase-surface ones
  await client.jobs.list({ status: "done" });
  // @ts-expect-error: create needs a type
  await client.jobs.create({ competitorId: "acme" });
  // @ts-expect-error: runAt is a Date or an ISO 8601 string, not a number
  await client.jobs.create({ type: "collect", runAt: Date.now() });
}
