// What the client does when no server answers: a refused connection, and one that never answers.

import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer } from "node:net";
import { test } from "node:test";

import { ApiError, ConnectionFailed, RequestTimeout, createClient } from "../dist/index.js";

/** A TCP listener on loopback that accepts connections and never says a word, counting them. */
async function blackHole(t) {
  const sockets = new Set();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  let connections = 0;
  server.on("connection", () => connections++);
  t.after(() => {
    for (const socket of sockets) socket.destroy();
    server.close();
  });
  return { url: `http://127.0.0.1:${server.address().port}`, connections: () => connections };
}

test("a refused connection is ConnectionFailed after the retries", async () => {
  const hole = createServer();
  hole.listen(0, "127.0.0.1");
  await once(hole, "listening");
  const { port } = hole.address();
  hole.close(); // nobody listens on this port any more
  await once(hole, "close");
  const jobhouse = createClient({ baseUrl: `http://127.0.0.1:${port}`, apiKey: "jh_x", retries: 1 });

  const error = await jobhouse.jobs.list().catch((caught) => caught);

  assert.ok(error instanceof ConnectionFailed, `${error}`);
  assert.ok(error instanceof ApiError);
  assert.equal(error.status, null);
  assert.equal(error.code, null);
  assert.match(error.message, new RegExp(`127.0.0.1:${port}`));
});

test("a server that never answers is a RequestTimeout after timeoutMs, tried again", async (t) => {
  const hole = await blackHole(t);
  const jobhouse = createClient({ baseUrl: hole.url, apiKey: "jh_x", timeoutMs: 300, retries: 1, maxRetryWaitMs: 50 });
  const started = Date.now();

  const error = await jobhouse.jobs.get("00000000-0000-7000-8000-000000000000").catch((caught) => caught);

  assert.ok(error instanceof RequestTimeout, `${error}`);
  assert.ok(error instanceof ConnectionFailed);
  assert.equal(hole.connections(), 2, "one try and one retry");
  assert.ok(Date.now() - started >= 600, "each try waited timeoutMs");
});

test("a long-poll may take its timeout_ms on top of timeoutMs", async (t) => {
  const hole = await blackHole(t);
  const jobhouse = createClient({ baseUrl: hole.url, timeoutMs: 200, retries: 0 });
  const started = Date.now();

  const error = await jobhouse.app.jobs
    .getStatus({ job_id: "00000000-0000-7000-8000-000000000000", wait: "done", timeout_ms: 500 })
    .catch((caught) => caught);

  assert.ok(error instanceof RequestTimeout, `${error}`);
  const elapsed = Date.now() - started;
  assert.ok(elapsed >= 700 && elapsed < 5000, `gave up after ${elapsed} ms, not 200 + 500`);
});

test("an abort during a request, or during the wait before a retry, rejects with the signal's reason", async (t) => {
  const hole = await blackHole(t);
  const jobhouse = createClient({ baseUrl: hole.url, timeoutMs: 100, retries: 5, maxRetryWaitMs: 10_000 });
  const reason = new Error("enough");

  const during = jobhouse.jobs.list({ signal: AbortSignal.timeout(50) });
  await assert.rejects(during, { name: "TimeoutError" });

  const controller = new AbortController();
  const waiting = jobhouse.jobs.list({ signal: controller.signal });
  setTimeout(() => controller.abort(reason), 200); // the first try timed out at 100 ms: now in the 250-500 ms wait
  await assert.rejects(waiting, (error) => error === reason);
});
