// What the scenario tests share: the servers they are given, clients, and the fault proxy.
//
// The tests run against real jobhouse servers, whose addresses and keys come from the
// environment (tests/test_typescript_client.py sets them up and runs these tests):
//
//   JOBHOUSE_URL, JOBHOUSE_KEY            a server with workers, and a key of a workspace of the tests' own
//   JOBHOUSE_OTHER_KEY                    a key of another workspace on that server
//   JOBHOUSE_REVOKED_KEY                  a key of that server that was revoked
//   JOBHOUSE_PROXY_URL                    the fault proxy (tests/faultproxy.py) in front of that server
//   JOBHOUSE_LIST_KEY, JOBHOUSE_LIST_COUNT  a workspace holding that many jobs, made before the tests
//   JOBHOUSE_SHORT_POLL_URL, JOBHOUSE_SHORT_POLL_KEY  a server that holds one long-poll 1 s at most

import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";

import { createClient } from "../dist/index.js";

export function env(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run these tests through tests/test_typescript_client.py`);
  return value;
}

export const serverUrl = () => env("JOBHOUSE_URL");
export const proxyUrl = () => env("JOBHOUSE_PROXY_URL");

/** A client of the main server (or `baseUrl`), with `key` and any other options. */
export function client(options = {}) {
  return createClient({ baseUrl: serverUrl(), apiKey: env("JOBHOUSE_KEY"), ...options });
}

/** A client that goes through the fault proxy. */
export function proxied(options = {}) {
  return client({ baseUrl: proxyUrl(), ...options });
}

/** A subject no other test uses, so a test can list exactly its own jobs. */
export function subject(prefix) {
  return `${prefix}-${randomUUID()}`;
}

const logs = [];
process.on("exit", () => logs.forEach((path) => rmSync(path, { force: true })));

/** A file for the `record` kind's log (the server writes it; it is on this machine), removed at exit. */
export function recordLog() {
  const path = join(tmpdir(), `jobhouse-ts-record-${randomUUID()}.log`);
  logs.push(path);
  return path;
}

/** A `fetch` that counts the requests it sends, by "METHOD /path". */
export function countingFetch() {
  const counts = new Map();
  const fetcher = (input, init) => {
    const key = `${init?.method ?? "GET"} ${new URL(input).pathname}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
    return fetch(input, init);
  };
  return { fetch: fetcher, count: (key) => counts.get(key) ?? 0 };
}

/** Assert that `promise` rejects with an error of `type` that has these properties. */
export async function rejectsWith(promise, type, expected = {}) {
  let error;
  try {
    await promise;
  } catch (caught) {
    error = caught;
  }
  assert.ok(error, `expected ${type.name}, but the call succeeded`);
  assert.ok(error instanceof type, `expected ${type.name}, got ${error?.name}: ${error?.message}`);
  for (const [name, value] of Object.entries(expected)) {
    assert.deepEqual(error[name], value, `${type.name}.${name}`);
  }
  return error;
}

/** The job once its status is `status`, asking every 50 ms for at most 20 s. */
export async function untilStatus(jobs, id, status) {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const job = await jobs.get(id);
    if (job.status === status) return job;
    assert.ok(Date.now() < deadline, `job ${id} is still ${job.status}, not ${status}`);
    await delay(50);
  }
}

// -- the fault proxy ---------------------------------------------------------------------------

async function control(method, body) {
  const response = await fetch(`${proxyUrl()}/_faults`, {
    method,
    headers: body ? { "Content-Type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const answer = await response.json();
  assert.ok(response.ok, `the fault proxy refused ${method}: ${JSON.stringify(answer)}`);
  return answer;
}

export const proxy = {
  /** Arm a fault: `{method, path, action, status?, retry_after?, times?, after_events?}`. */
  arm: (fault) => control("POST", fault),
  /** `{faults: [...still armed], hits: {"METHOD /path": n}}`. */
  state: () => control("GET"),
  /** Forget every fault and every count. */
  reset: () => control("DELETE"),
  /** How many requests the proxy saw for "METHOD /path". */
  hits: async (key) => (await control("GET")).hits[key] ?? 0,
};
