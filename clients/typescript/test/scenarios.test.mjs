// The shared client scenarios (clients/scenarios.json), one test each, named exactly as there,
// against real jobhouse servers (see helpers.mjs). tests/test_typescript_client.py checks that
// every scenario has a passing test here.

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  ApiError,
  ConnectionFailed,
  InvalidRequest,
  InvalidSelector,
  JobAlreadyFinished,
  JobNotFinished,
  JobNotFound,
  JobNotRetryable,
  NotFound,
  QueueUnavailable,
  SourceNotFound,
  Unauthorized,
  UnknownJobType,
  createClient,
  isCancelled,
} from "../dist/index.js";
import {
  client,
  countingFetch,
  env,
  proxied,
  proxy,
  recordLog,
  rejectsWith,
  serverUrl,
  subject,
  untilStatus,
} from "./helpers.mjs";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const MISSING_ID = "00000000-0000-7000-8000-000000000000";
const SEED_STEPS = ["collect", "ingest", "build-matrix", "build-battlecard"];

test("create", async () => {
  const jobhouse = client();
  const competitorId = subject("create");
  const metadata = { competitorName: "Competitor Inc", isFirstRun: true, productIds: ["product-id-1"] };

  const job = await jobhouse.jobs.create({
    type: "collect",
    competitorId,
    displayTitle: "Analyzing Competitor Inc",
    metadata,
  });

  assert.match(job.id, UUID);
  assert.equal(job.status, "queued");
  assert.equal(job.type, "collect");
  assert.equal(job.competitorId, competitorId);
  assert.equal(job.displayTitle, "Analyzing Competitor Inc");
  assert.deepEqual(job.metadata, metadata);
  assert.deepEqual(
    job.steps.map((step) => [step.id, step.status]),
    SEED_STEPS.map((id) => [id, "pending"]),
  );

  const done = await jobhouse.jobs.wait(job.id);
  assert.equal(done.id, job.id);
  assert.equal(done.status, "completed");
  assert.equal(done.progress, 100);
  assert.equal(done.resultType, "battlecard");
  assert.equal(done.result.battlecard, `for ${competitorId}`);
  assert.ok(done.completedAt);

  // The same Idempotency-Key with the same body gives the same job back.
  const key = `create-${competitorId}`;
  const first = await jobhouse.jobs.create({ type: "echo", competitorId, idempotencyKey: key });
  const again = await jobhouse.jobs.create({ type: "echo", competitorId, idempotencyKey: key });
  assert.equal(again.id, first.id);
});

test("wait-past-long-poll-max", async () => {
  // This server holds one long-poll 1 s at most (JOBHOUSE_LONG_POLL_MAX=1); the job runs 3 s.
  const counter = countingFetch();
  const jobhouse = createClient({
    baseUrl: env("JOBHOUSE_SHORT_POLL_URL"),
    apiKey: env("JOBHOUSE_SHORT_POLL_KEY"),
    fetch: counter.fetch,
  });
  const job = await jobhouse.jobs.create({ type: "record", input: { seconds: 3, log: recordLog() } });
  const started = Date.now();

  const done = await jobhouse.jobs.wait(job.id);

  const elapsed = Date.now() - started;
  assert.equal(done.status, "completed");
  assert.ok(elapsed >= 2500, `the job runs 3 s, but wait returned after ${elapsed} ms`);
  const polls = counter.count(`GET /api/jobs/${job.id}`);
  assert.ok(polls >= 2, `wait asked ${polls} time(s): it should have asked again after each 1 s long-poll`);
});

test("wait-timeout-returns-job-as-is", async () => {
  const jobhouse = client();
  const job = await jobhouse.jobs.create({ type: "record", input: { seconds: 5, log: recordLog() } });
  const started = Date.now();

  const seen = await jobhouse.jobs.wait(job.id, { timeoutMs: 1000 });

  const elapsed = Date.now() - started;
  assert.equal(seen.id, job.id);
  assert.ok(["queued", "running"].includes(seen.status), `status ${seen.status}`);
  assert.ok(elapsed >= 900 && elapsed < 4500, `wait took ${elapsed} ms with a 1000 ms timeout`);
  await jobhouse.jobs.cancel(job.id);
});

test("list-1200-through-cursors", async () => {
  const count = Number(env("JOBHOUSE_LIST_COUNT"));
  const counter = countingFetch();
  const jobhouse = client({ apiKey: env("JOBHOUSE_LIST_KEY"), fetch: counter.fetch });

  const seen = [];
  for await (const job of jobhouse.jobs.iterate({ limit: 100 })) seen.push(job);

  assert.equal(seen.length, count);
  assert.equal(new Set(seen.map((job) => job.id)).size, count, "a job was listed twice");
  for (let i = 1; i < seen.length; i++) {
    assert.ok(seen[i - 1].createdAt >= seen[i].createdAt, `not newest first at ${i}`);
  }
  const pages = counter.count("GET /api/jobs");
  assert.ok(pages >= count / 100 && pages <= count / 100 + 1, `${pages} pages of 100 for ${count} jobs`);

  // One page at a time, by hand, gives the same jobs; listAll gathers them all.
  const first = await jobhouse.jobs.list({ limit: 500 });
  assert.equal(first.jobs.length, 500);
  assert.equal(typeof first.nextCursor, "string");
  const second = await jobhouse.jobs.list({ limit: 500, cursor: first.nextCursor });
  assert.deepEqual(
    [...first.jobs, ...second.jobs].map((job) => job.id),
    seen.slice(0, 1000).map((job) => job.id),
  );
  const all = await jobhouse.jobs.listAll();
  assert.deepEqual(
    all.map((job) => job.id),
    seen.map((job) => job.id),
  );
});

test("list-filters", async () => {
  const jobhouse = client();
  const competitorId = subject("filters");
  const echo = await jobhouse.jobs.create({ type: "echo", competitorId });
  const boom = await jobhouse.jobs.create({ type: "boom", competitorId });
  const collect = await jobhouse.jobs.create({ type: "collect", competitorId });
  const held = await jobhouse.jobs.create({ type: "record", competitorId, input: { seconds: 5, log: recordLog() } });
  await jobhouse.jobs.cancel(held.id);
  for (const job of [echo, boom, collect]) await jobhouse.jobs.wait(job.id);
  const ids = async (filters) =>
    (await jobhouse.jobs.listAll({ competitorId, ...filters })).map((job) => job.id).sort();
  const sorted = (...jobs) => jobs.map((job) => job.id).sort();

  assert.deepEqual(await ids({}), sorted(echo, boom, collect, held));
  assert.deepEqual(await ids({ type: "boom" }), sorted(boom));
  assert.deepEqual(await ids({ status: "completed" }), sorted(echo, collect));
  assert.deepEqual(await ids({ status: "failed" }), sorted(boom, held));
  assert.deepEqual(await ids({ status: "cancelled" }), sorted(held));
  assert.deepEqual(await ids({ status: "completed", type: "collect" }), sorted(collect));
  assert.deepEqual(await ids({ status: "running" }), []);
  for (const job of await jobhouse.jobs.listAll({ competitorId: subject("nobody") })) {
    assert.fail(`a subject nobody used listed ${job.id}`);
  }
});

test("cancel", async () => {
  const jobhouse = client();
  const job = await jobhouse.jobs.create({ type: "record", input: { seconds: 5, log: recordLog() } });
  await untilStatus(jobhouse.jobs, job.id, "running");

  const cancelled = await jobhouse.jobs.cancel(job.id);

  assert.equal(cancelled.id, job.id);
  assert.equal(cancelled.status, "failed");
  assert.equal(cancelled.currentStep, "Cancelled");
  assert.equal(cancelled.error.type, "cancelled");
  assert.ok(isCancelled(cancelled));
  const again = await jobhouse.jobs.cancel(job.id); // cancelling a cancelled job is fine
  assert.equal(again.currentStep, "Cancelled");
  assert.equal((await jobhouse.jobs.get(job.id)).currentStep, "Cancelled");

  // On the run surface a cancelled job reads "cancelled".
  const other = await jobhouse.jobs.create({ type: "record", input: { seconds: 5, log: recordLog() } });
  const run = await jobhouse.app.jobs.cancel({ job_id: other.id });
  assert.equal(run.job_id, other.id);
  assert.equal(run.status, "cancelled");
  assert.equal(run.error.type, "cancelled");

  // A job that completed cannot be cancelled.
  const echo = await jobhouse.jobs.create({ type: "echo" });
  assert.equal((await jobhouse.jobs.wait(echo.id)).status, "completed");
  const error = await rejectsWith(jobhouse.jobs.cancel(echo.id), JobAlreadyFinished, {
    status: 409,
    code: "JOB_ALREADY_FINISHED",
  });
  assert.ok(error instanceof ApiError);
  await rejectsWith(jobhouse.app.jobs.cancel({ job_id: echo.id }), JobAlreadyFinished, { status: 409 });
});

test("retry", async () => {
  const jobhouse = client();
  const job = await jobhouse.jobs.create({ type: "boom" });
  const first = await jobhouse.jobs.wait(job.id);
  assert.deepEqual([first.status, first.attempt, first.maxAttempts], ["failed", 1, 1]);

  const again = await jobhouse.jobs.retry(job.id);

  assert.deepEqual([again.id, again.status, again.error, again.attempt, again.maxAttempts], [job.id, "queued", null, 1, 2]);
  assert.deepEqual(
    again.errors.map((error) => error.attempt),
    [1],
  );
  const second = await jobhouse.jobs.wait(job.id);
  assert.deepEqual([second.status, second.attempt, second.maxAttempts], ["failed", 2, 2]);
  assert.deepEqual(
    second.errors.map((error) => [error.attempt, error.type]),
    [
      [1, "ValueError"],
      [2, "ValueError"],
    ],
  );

  const echo = await jobhouse.jobs.create({ type: "echo" });
  assert.equal((await jobhouse.jobs.wait(echo.id)).status, "completed");
  await rejectsWith(jobhouse.jobs.retry(echo.id), JobNotRetryable, { status: 409, code: "JOB_NOT_RETRYABLE" });

  // A retry whose answer is lost is not sent again: a second one would run the job once more.
  await proxy.reset();
  const path = `/api/jobs/${job.id}/retry`;
  await proxy.arm({ method: "POST", path, action: "drop-response", times: 1 });
  await rejectsWith(proxied().jobs.retry(job.id), ConnectionFailed);
  assert.equal(await proxy.hits(`POST ${path}`), 1);
  const third = await jobhouse.jobs.wait(job.id);
  assert.deepEqual([third.status, third.attempt, third.errors.length], ["failed", 3, 3]);
  await proxy.reset();
});

test("delete", async () => {
  const jobhouse = client();
  const competitorId = subject("delete");
  const done = await jobhouse.jobs.create({ type: "echo", competitorId });
  await jobhouse.jobs.wait(done.id);

  assert.equal(await jobhouse.jobs.delete(done.id), undefined);

  await rejectsWith(jobhouse.jobs.get(done.id), JobNotFound, { status: 404, code: "JOB_NOT_FOUND" });
  assert.deepEqual(await jobhouse.jobs.listAll({ competitorId }), []);

  const running = await jobhouse.jobs.create({ type: "record", input: { seconds: 5, log: recordLog() } });
  await untilStatus(jobhouse.jobs, running.id, "running");
  await rejectsWith(jobhouse.jobs.delete(running.id), JobNotFinished, { status: 409, code: "JOB_NOT_FINISHED" });
  assert.equal((await jobhouse.jobs.get(running.id)).status, "running");
  await jobhouse.jobs.cancel(running.id);

  // A delete whose answer is lost is sent again; finding the job gone, it is done.
  await proxy.reset();
  const path = `/api/jobs/${running.id}`;
  await proxy.arm({ method: "DELETE", path, action: "drop-response", times: 1 });
  await proxied().jobs.delete(running.id);
  assert.equal(await proxy.hits(`DELETE ${path}`), 2);
  await rejectsWith(jobhouse.jobs.get(running.id), JobNotFound);
  await proxy.reset();
});

test("scheduled", async () => {
  const jobhouse = client();
  const delayed = await jobhouse.jobs.create({ type: "echo", delayMs: 300 });
  const at = new Date(Date.now() + 600); // ahead still when it arrives, on a slow machine too
  const timed = await jobhouse.jobs.create({ type: "echo", runAt: at });

  assert.deepEqual([delayed.status, timed.status], ["queued", "queued"]);
  const after = Date.parse(delayed.scheduledAt) - Date.parse(delayed.createdAt);
  assert.ok(Math.abs(after - 300) < 50, `scheduledAt is ${after} ms after createdAt, not 300`);
  assert.equal(timed.scheduledAt, at.toISOString());
  for (const job of [delayed, timed]) {
    const done = await jobhouse.jobs.wait(job.id);
    assert.deepEqual([done.status, done.scheduledAt], ["completed", null]);
    assert.ok(done.startedAt >= job.scheduledAt, `started ${done.startedAt}, before ${job.scheduledAt}`);
  }

  const naive = await rejectsWith(jobhouse.jobs.create({ type: "echo", runAt: "2030-01-01T09:00:00" }), InvalidRequest, {
    status: 400,
    code: "INVALID_REQUEST",
  });
  assert.match(naive.message, /runAt needs a UTC offset/);
  await assert.rejects(jobhouse.jobs.create({ type: "echo", runAt: new Date(Number.NaN) }), RangeError);
});

test("priority", async () => {
  const jobhouse = client();
  const urgent = await jobhouse.jobs.create({ type: "echo", priority: 7 });
  const plain = await jobhouse.jobs.create({ type: "echo" });

  assert.deepEqual([urgent.priority, plain.priority], [7, 0]);
  assert.equal((await jobhouse.jobs.get(urgent.id)).priority, 7);
  const refused = await rejectsWith(jobhouse.jobs.create({ type: "echo", priority: 11 }), InvalidRequest, {
    status: 400,
    code: "INVALID_REQUEST",
  });
  assert.match(refused.message, /priority/);
});

test("not-found-404", async () => {
  const jobhouse = client();
  const notFound = { status: 404, code: "JOB_NOT_FOUND", message: "No job exists with the requested identifier" };
  const theirs = await client({ apiKey: env("JOBHOUSE_OTHER_KEY") }).jobs.create({ type: "echo" });

  for (const id of [MISSING_ID, theirs.id, "not-a-uuid"]) {
    const error = await rejectsWith(jobhouse.jobs.get(id), JobNotFound, notFound);
    assert.ok(error instanceof NotFound && error instanceof ApiError);
    await rejectsWith(jobhouse.jobs.wait(id, { timeoutMs: 5000 }), JobNotFound, notFound);
    await rejectsWith(jobhouse.jobs.cancel(id), JobNotFound, notFound);
    await rejectsWith(jobhouse.app.jobs.getStatus({ job_id: id, wait: "done", timeout_ms: 1000 }), JobNotFound, notFound);
    await rejectsWith(jobhouse.app.jobs.cancel({ job_id: id }), JobNotFound, notFound);
  }
  await rejectsWith(jobhouse.app.sources.sync({ source_id: "no-such-source" }), SourceNotFound, {
    status: 404,
    code: "SOURCE_NOT_FOUND",
  });
});

test("unauthorized-401", async () => {
  await proxy.reset();
  const unauthorized = { status: 401, code: "UNAUTHORIZED", retryAfter: null };
  for (const apiKey of ["jh_wrong_key", env("JOBHOUSE_REVOKED_KEY"), undefined]) {
    const jobhouse = proxied({ apiKey });
    const error = await rejectsWith(jobhouse.jobs.list(), Unauthorized, unauthorized);
    assert.ok(error instanceof ApiError);
    await rejectsWith(jobhouse.jobs.create({ type: "echo" }), Unauthorized, unauthorized);
    await rejectsWith(jobhouse.jobs.get(MISSING_ID), Unauthorized, unauthorized);
    await rejectsWith(jobhouse.app.jobs.getStatus({ job_id: MISSING_ID }), Unauthorized, unauthorized);
    await rejectsWith(jobhouse.app.sources.list(), Unauthorized, unauthorized);
  }
  // Each call was sent once: a 401 is not retried.
  const { hits } = await proxy.state();
  assert.equal(hits["GET /api/jobs"], 3);
  assert.equal(hits["POST /api/jobs"], 3);
  assert.equal(hits[`GET /api/jobs/${MISSING_ID}`], 3);
  assert.equal(hits[`GET /api/v1/run/jobs/${MISSING_ID}`], 3);
  assert.equal(hits["GET /api/v1/run/sources"], 3);
});

test("invalid-request-400", async () => {
  await proxy.reset();
  const jobhouse = proxied();

  const unknown = await rejectsWith(jobhouse.jobs.create({ type: "no-such-kind" }), UnknownJobType, {
    status: 400,
    code: "UNKNOWN_JOB_TYPE",
  });
  assert.ok(unknown instanceof InvalidRequest);
  assert.match(unknown.message, /no-such-kind/);

  const input = await rejectsWith(jobhouse.jobs.create({ type: "echo", input: ["not", "an", "object"] }), InvalidRequest, {
    status: 400,
    code: "INVALID_REQUEST",
  });
  assert.match(input.message, /input/);

  await rejectsWith(jobhouse.app.jobs.createSearch({ data: { os: "linux" } }), InvalidSelector, {
    status: 400,
    code: "INVALID_SELECTOR",
    message: "Invalid selector: app is required",
  });
  const limit = await rejectsWith(jobhouse.jobs.list({ limit: 0 }), InvalidRequest, { code: "INVALID_REQUEST" });
  assert.match(limit.message, /limit/);
  await rejectsWith(jobhouse.jobs.get(MISSING_ID, { wait: "done", timeoutMs: 999_999 }), InvalidRequest, {
    status: 400,
  });

  const { hits } = await proxy.state();
  assert.equal(hits["POST /api/jobs"], 2, "a 400 is not retried");
});

test("retry-503-with-retry-after", async () => {
  await proxy.reset();
  const jobhouse = proxied();
  const competitorId = subject("retry-503");

  // One 503 with Retry-After: 1 on the create: the client waits about a second and tries again.
  await proxy.arm({ method: "POST", path: "/api/jobs", action: "status", status: 503, retry_after: 1, times: 1 });
  let started = Date.now();
  const job = await jobhouse.jobs.create({ type: "echo", competitorId });
  let elapsed = Date.now() - started;
  assert.equal(job.status, "queued");
  assert.ok(elapsed >= 950 && elapsed < 10_000, `retried after ${elapsed} ms, not after Retry-After: 1`);
  assert.equal(await proxy.hits("POST /api/jobs"), 2);
  assert.deepEqual(
    (await client().jobs.listAll({ competitorId })).map((each) => each.id),
    [job.id],
  );

  // The same for a read, and for a 429.
  const path = `/api/jobs/${job.id}`;
  await proxy.arm({ method: "GET", path, action: "status", status: 503, retry_after: 0.2, times: 1 });
  await proxy.arm({ method: "GET", path, action: "status", status: 429, retry_after: 0.2, times: 1 });
  started = Date.now();
  assert.equal((await jobhouse.jobs.get(job.id)).id, job.id);
  elapsed = Date.now() - started;
  assert.ok(elapsed >= 350, `two Retry-After: 0.2 waits took ${elapsed} ms`);
  assert.equal(await proxy.hits(`GET ${path}`), 3);

  // When every try meets a 503, the caller gets QueueUnavailable with the server's Retry-After.
  await proxy.reset();
  await proxy.arm({ method: "GET", path: "/api/jobs", action: "status", status: 503, retry_after: 0.1, times: 10 });
  const error = await rejectsWith(proxied({ retries: 2 }).jobs.list(), QueueUnavailable, {
    status: 503,
    code: "STORE_UNAVAILABLE",
    message: "Job queue unavailable",
    retryAfter: 0.1,
  });
  assert.ok(error instanceof ApiError);
  assert.equal(await proxy.hits("GET /api/jobs"), 3, "one try and two retries");
  await proxy.reset();
});

test("idempotent-create-after-dropped-connection", async () => {
  await proxy.reset();
  const jobhouse = proxied();
  const competitorId = subject("dropped");

  // The proxy lets the create reach the server, then drops the connection before the answer.
  await proxy.arm({ method: "POST", path: "/api/jobs", action: "drop-response", times: 1 });
  const job = await jobhouse.jobs.create({ type: "echo", competitorId, metadata: { attempt: "one call" } });

  assert.equal(await proxy.hits("POST /api/jobs"), 2, "the create was sent again");
  const listed = await client().jobs.listAll({ competitorId });
  assert.deepEqual(
    listed.map((each) => each.id),
    [job.id],
    "exactly one job exists, and it is the one returned",
  );

  // The same on the run surface.
  await proxy.arm({ method: "POST", path: "/api/v1/run/search/jobs", action: "drop-response", times: 1 });
  const search = await jobhouse.app.jobs.createSearch({ data: { app: `dropped-${competitorId}` } });
  assert.equal(await proxy.hits("POST /api/v1/run/search/jobs"), 2);
  const searches = (await client().jobs.listAll({ type: "search-resolve" })).filter(
    (each) => each.input.app === `dropped-${competitorId}`,
  );
  assert.deepEqual(
    searches.map((each) => each.id),
    [search.job_id],
  );

  // Without retries the caller sees the dropped connection, though the server made the job.
  await proxy.arm({ method: "POST", path: "/api/jobs", action: "drop-response", times: 1 });
  const lonely = subject("dropped-no-retry");
  await rejectsWith(proxied({ retries: 0 }).jobs.create({ type: "echo", competitorId: lonely }), ConnectionFailed, {
    status: null,
    code: null,
  });
  assert.equal((await client().jobs.listAll({ competitorId: lonely })).length, 1);
  await proxy.reset();
});

/** Every event of a job's stream until the stream ends by itself. */
async function allEvents(jobs, id, options) {
  const events = [];
  for await (const event of jobs.events(id, options)) events.push(event);
  return events;
}

test("events-four-steps-in-order", async () => {
  const jobhouse = client();
  const competitorId = subject("events");
  const job = await jobhouse.jobs.create({ type: "collect", competitorId });

  const events = await allEvents(jobhouse.jobs, job.id);

  assert.ok(events.length >= 1 + 2 * SEED_STEPS.length, `only ${events.length} events`);
  assert.equal(events[0].event, "created");
  assert.equal(events[0].job.status, "queued");
  for (const event of events) {
    assert.ok(["created", "status", "attempt", "step", "progress"].includes(event.event), event.event);
    assert.equal(event.job.id, job.id);
    assert.equal(event.job.type, "collect");
    assert.equal(event.job.competitorId, competitorId);
  }
  for (let i = 1; i < events.length; i++) {
    assert.ok(events[i].id > events[i - 1].id, `ids not rising at ${i}`);
    assert.ok(events[i].job.progress >= events[i - 1].job.progress, `progress went down at ${i}`);
  }
  // Each step is seen running, then completed, in the kind's order.
  const firstIndex = (predicate) => events.findIndex((event) => predicate(event.job));
  let previous = -1;
  for (const [n, id] of SEED_STEPS.entries()) {
    const running = firstIndex((change) => change.steps[n].status === "running");
    const completed = firstIndex((change) => change.steps[n].status === "completed");
    assert.ok(running > previous, `step ${id} ran out of order`);
    assert.ok(completed > running, `step ${id} completed before it ran`);
    assert.equal(events[running].job.currentStep, events[0].job.steps[n].name);
    assert.ok(events.some((event) => event.event === "step" && event.job.steps[n].status === "running"));
    previous = completed;
  }
  const last = events.at(-1);
  assert.equal(last.event, "status");
  assert.equal(last.job.status, "completed");
  assert.equal(last.job.progress, 100);
  assert.equal(last.job.resultType, "battlecard");
  assert.equal(last.job.result.battlecard, `for ${competitorId}`);
  assert.ok(last.job.completedAt);

  // The run surface's stream of the same job: the same ids, snake_case, ending "done".
  const run = [];
  for await (const event of jobhouse.app.jobs.events({ job_id: job.id })) run.push(event);
  assert.deepEqual(
    run.map((event) => [event.id, event.event]),
    events.map((event) => [event.id, event.event]),
  );
  assert.equal(run.at(-1).job.job_id, job.id);
  assert.equal(run.at(-1).job.status, "done");
  assert.equal(run.at(-1).job.result_type, "battlecard");

  // A failing job's stream ends after its failed event; an unknown job's stream is a 404.
  const boom = await jobhouse.jobs.create({ type: "boom" });
  const failed = (await allEvents(jobhouse.jobs, boom.id)).at(-1);
  assert.equal(failed.job.status, "failed");
  assert.equal(failed.job.error.type, "ValueError");
  await rejectsWith(allEvents(jobhouse.jobs, MISSING_ID), JobNotFound, { status: 404 });
});

test("events-resume-last-event-id", async () => {
  await proxy.reset();
  const jobhouse = client();
  const job = await jobhouse.jobs.create({ type: "collect", competitorId: subject("resume") });
  await jobhouse.jobs.wait(job.id);
  const whole = await allEvents(jobhouse.jobs, job.id);
  const ids = whole.map((event) => event.id);
  assert.ok(ids.length >= 6, `only ${ids.length} events`);

  // The proxy cuts the stream after three events; the client resumes by itself.
  const path = `/api/jobs/${job.id}/events`;
  await proxy.arm({ method: "GET", path, action: "drop-stream", after_events: 3, times: 1 });
  const resumed = await allEvents(proxied().jobs, job.id);
  assert.deepEqual(
    resumed.map((event) => event.id),
    ids,
    "every event once, in order",
  );
  assert.deepEqual(resumed, whole);
  assert.equal(await proxy.hits(`GET ${path}`), 2, "one reconnection");

  // A stream opened after an event id yields only the events after it.
  const after = await allEvents(jobhouse.jobs, job.id, { lastEventId: ids[2] });
  assert.deepEqual(
    after.map((event) => event.id),
    ids.slice(3),
  );
  const run = [];
  for await (const event of jobhouse.app.jobs.events({ job_id: job.id, lastEventId: ids[4] })) run.push(event.id);
  assert.deepEqual(run, ids.slice(5));
  // After the last event of an ended job there is nothing: the stream ends at once.
  assert.deepEqual(await allEvents(jobhouse.jobs, job.id, { lastEventId: ids.at(-1) }), []);

  // A live job, cut twice while it runs: still every event once.
  const live = await jobhouse.jobs.create({ type: "collect", competitorId: subject("resume-live") });
  const livePath = `/api/jobs/${live.id}/events`;
  await proxy.arm({ method: "GET", path: livePath, action: "drop-stream", after_events: 2, times: 2 });
  const liveEvents = await allEvents(proxied().jobs, live.id);
  assert.deepEqual(
    liveEvents.map((event) => event.id),
    (await allEvents(jobhouse.jobs, live.id)).map((event) => event.id),
  );
  assert.equal(liveEvents.at(-1).job.status, "completed");
  await proxy.reset();
});

test("run-search", async () => {
  const jobhouse = client();

  const found = await jobhouse.app.search({ data: { app: "firefox", os: "linux" } });
  assert.ok(found.candidates.length > 0);
  assert.equal(found.candidates[0].app, "firefox");
  assert.equal(found.candidates[0].match, "exact");
  assert.ok(found.candidates.every((candidate) => candidate.os === "linux"));
  for (let i = 1; i < found.candidates.length; i++) {
    assert.ok(found.candidates[i].score <= found.candidates[i - 1].score, `not ranked at ${i}`);
  }

  // The seed's calls: a search job, then its status with a long-poll.
  const job = await jobhouse.app.jobs.createSearch({ data: { app: "firefox", os: "linux", kind: "gui" } });
  assert.match(job.job_id, UUID);
  assert.equal(job.kind, "search-resolve");
  assert.equal(job.status, "queued");
  assert.match(job.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  const status = await jobhouse.app.jobs.getStatus({ job_id: job.job_id, wait: "done", timeout_ms: 60000 });
  assert.equal(status.status, "done");
  assert.equal(status.result_type, "search-response");
  assert.ok(status.result.candidates.length > 0);
  assert.equal(status.result.candidates[0].app, "firefox");
  assert.ok(status.result.candidates.every((candidate) => candidate.os === "linux" && candidate.kind === "gui"));
  // Without wait, the status is answered at once; the job is on the workspace surface too.
  assert.equal((await jobhouse.app.jobs.getStatus({ job_id: job.job_id })).status, "done");
  const same = await jobhouse.jobs.get(job.job_id);
  assert.equal(same.type, "search-resolve");
  assert.equal(same.competitorId, null);
});

test("sources-list-and-sync", async () => {
  const jobhouse = client();

  const { sources } = await jobhouse.app.sources.list();
  const ids = sources.map((source) => source.id);
  for (const id of ["path", "desktop"]) assert.ok(ids.includes(id), `no ${id} source in ${ids}`);
  for (const source of sources) {
    assert.equal(typeof source.title, "string");
    assert.equal(typeof source.candidate_count, "number");
  }

  const one = await jobhouse.app.sources.sync({ source_id: "path" });
  assert.equal(one.kind, "source-sync");
  assert.equal(one.status, "queued");
  const oneDone = await jobhouse.app.jobs.getStatus({ job_id: one.job_id, wait: "done", timeout_ms: 60000 });
  assert.equal(oneDone.status, "done");
  assert.ok(oneDone.result.sources.path);
  const waited = await jobhouse.app.jobs.wait({ job_id: one.job_id, timeout_ms: 60000 });
  assert.deepEqual(waited, oneDone);

  const all = await jobhouse.app.sources.sync({ force: true });
  assert.equal(all.kind, "source-sync");
  const allDone = await jobhouse.jobs.wait(all.job_id);
  assert.equal(allDone.status, "completed");
  assert.deepEqual(Object.keys(allDone.result.sources).sort(), [...ids].sort());
  const synced = (await jobhouse.app.sources.list()).sources.find((source) => source.id === "path");
  assert.ok(synced.synced_at);
});

// Beyond the shared scenarios ---------------------------------------------------------------------

test("the run surface's creates take a delay, a time and a priority", async () => {
  const jobhouse = client();
  const search = await jobhouse.app.jobs.createSearch({ data: { app: "firefox", os: "linux" }, delay_ms: 300, priority: -4 });
  assert.deepEqual([search.status, search.priority], ["queued", -4]);
  assert.match(search.scheduled_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  const sync = await jobhouse.app.sources.sync({ source_id: "path", run_at: new Date(Date.now() - 3_600_000), priority: 2 });
  assert.deepEqual([sync.priority, "scheduled_at" in sync], [2, false]); // a time past is now
  const done = await jobhouse.app.jobs.wait({ job_id: search.job_id });
  assert.deepEqual([done.status, "scheduled_at" in done], ["done", false]);
  assert.equal((await jobhouse.app.jobs.wait({ job_id: sync.job_id })).status, "done");
});

test("the workspace stream follows the workspace's jobs and stops when the loop is left", async () => {
  const jobhouse = client();
  const competitorId = subject("stream");
  // The stream carries what happens after a point: the last event of a job that has ended.
  const marker = await jobhouse.jobs.create({ type: "echo", competitorId: subject("marker") });
  const since = (await allEvents(jobhouse.jobs, marker.id)).at(-1).id;
  const job = await jobhouse.jobs.create({ type: "collect", competitorId });
  await jobhouse.jobs.create({ type: "echo", competitorId: subject("elsewhere") });

  const seen = [];
  for await (const event of jobhouse.jobs.stream({ competitorId, lastEventId: since })) {
    seen.push(event);
    if (event.job.status === "completed") break;
  }

  assert.ok(seen.every((event) => event.job.id === job.id && event.job.competitorId === competitorId));
  assert.deepEqual(
    seen.map((event) => event.id),
    (await allEvents(jobhouse.jobs, job.id)).map((event) => event.id),
  );

  // Aborting its signal ends a stream that is waiting for events, with the signal's reason.
  const controller = new AbortController();
  const pending = jobhouse.jobs.stream({ competitorId: subject("quiet"), signal: controller.signal }).next();
  setTimeout(() => controller.abort(), 200);
  await assert.rejects(pending, { name: "AbortError" });
});

test("every call takes an AbortSignal", async () => {
  const jobhouse = client();
  const job = await jobhouse.jobs.create({ type: "record", input: { seconds: 5, log: recordLog() } });
  const controller = new AbortController();
  const waiting = jobhouse.jobs.wait(job.id, { signal: controller.signal });
  const polling = jobhouse.app.jobs.getStatus({ job_id: job.id, wait: "done", timeout_ms: 60000, signal: controller.signal });
  controller.abort();
  await assert.rejects(waiting, { name: "AbortError" });
  await assert.rejects(polling, { name: "AbortError" });
  await assert.rejects(jobhouse.jobs.list({ signal: AbortSignal.abort() }), { name: "AbortError" });
  await jobhouse.jobs.cancel(job.id);
});

test("a browser page of an allowed origin may send every request the client makes, and read Retry-After", async () => {
  const origin = env("JOBHOUSE_CORS_ORIGIN");
  const sent = new Map();
  const recording = (input, init) => {
    const names = Object.keys(init.headers).map((name) => name.toLowerCase());
    sent.set(`${init.method} ${input}`, { method: init.method, url: input, names });
    return fetch(input, init);
  };
  const jobhouse = client({ fetch: recording });
  const job = await jobhouse.jobs.create({ type: "collect", competitorId: subject("cors") });
  await jobhouse.jobs.wait(job.id);
  await jobhouse.jobs.get(job.id);
  await jobhouse.jobs.list({ competitorId: job.competitorId });
  await rejectsWith(jobhouse.jobs.cancel(job.id), JobAlreadyFinished);
  const events = await allEvents(jobhouse.jobs, job.id);
  await allEvents(jobhouse.jobs, job.id, { lastEventId: events[0].id });
  const search = await jobhouse.app.jobs.createSearch({ data: { app: "firefox" } });
  await jobhouse.app.jobs.getStatus({ job_id: search.job_id, wait: "done", timeout_ms: 30000 });
  await jobhouse.app.search({ data: { app: "firefox" } });
  await jobhouse.app.sources.list();
  await jobhouse.app.sources.sync({ source_id: "path", force: true });

  // Accept is the one header a page may send without asking; the server must allow the rest.
  for (const { method, url, names } of sent.values()) {
    const asked = names.filter((name) => name !== "accept");
    const preflight = await fetch(url, {
      method: "OPTIONS",
      headers: {
        Origin: origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": asked.join(","),
      },
    });
    assert.equal(preflight.status, 200, `preflight of ${method} ${url} with ${asked}: ${await preflight.text()}`);
    assert.equal(preflight.headers.get("access-control-allow-origin"), origin);
  }
  assert.ok([...sent.values()].some(({ names }) => names.includes("last-event-id")));
  assert.ok([...sent.values()].some(({ names }) => names.includes("idempotency-key")));

  const answer = await fetch(`${serverUrl()}/api/jobs`, {
    headers: { Origin: origin, Authorization: `Bearer ${env("JOBHOUSE_KEY")}` },
  });
  const exposed = (answer.headers.get("access-control-expose-headers") ?? "").toLowerCase().split(/\s*,\s*/);
  assert.ok(exposed.includes("retry-after"), `exposed: ${exposed}`);
});
