// Server-sent events read with fetch(), because EventSource cannot send the Authorization header.
// Reconnects after a drop with Last-Event-ID (so nothing is missed or repeated), backing off
// exponentially (0.5 s doubling to 5 s, reset once a connection opens).

import { headers } from "./api.js";

/**
 * Follow the stream at `path` until `stop()` is called or the server says it is over (a 204: a
 * job's stream resumed after its end).
 * onEvent({id, event, data}) gets each event, data parsed as JSON.
 * onState("open" | "reopen" | "retrying" | "ended" | "refused" | "gone") tells how the connection
 * is; "reopen" is a reconnection, after which a page should fetch what it shows again if the
 * stream had no id to resume from (a workspace stream starts with what happens next).
 */
export function follow(path, { onEvent, onState = () => {}, lastId = null }) {
  let last = lastId;
  let delay = 500;
  let stopped = false;
  let opened = false;

  let attempt = null;

  async function once() {
    const extra = { Accept: "text/event-stream" };
    if (last !== null) extra["Last-Event-ID"] = String(last);
    // Each connection has its own abort: one that stays silent (no answer within 10 s, or no
    // byte, not even a ping, within 45 s) is given up and made again.
    attempt = new AbortController();
    const mine = attempt;
    let idle = setTimeout(() => mine.abort(), 10000);
    const quiet = () => {
      clearTimeout(idle);
      idle = setTimeout(() => mine.abort(), 45000);
    };
    try {
      return await read(extra, mine, quiet);
    } finally {
      clearTimeout(idle);
    }
  }

  async function read(extra, mine, quiet) {
    const response = await fetch(path, { headers: headers(extra), signal: mine.signal, cache: "no-store" });
    if (response.status === 204) return "ended";
    if (response.status === 401) return "refused";
    if (response.status === 404) return "gone";
    if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
    quiet();
    onState(opened ? "reopen" : "open");
    opened = true;
    delay = 500;
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let event = { id: null, event: "message", data: [] };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      quiet();
      buffer += value;
      const lines = buffer.split(/\r\n|\r|\n/);
      buffer = lines.pop();
      for (const line of lines) {
        if (line === "") {
          if (event.data.length) {
            if (event.id !== null) last = event.id;
            let data = null;
            try {
              data = JSON.parse(event.data.join("\n"));
            } catch {
              data = event.data.join("\n");
            }
            onEvent({ id: event.id, event: event.event, data });
          }
          event = { id: null, event: "message", data: [] };
          continue;
        }
        if (line.startsWith(":")) continue; // a ping
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let val = colon < 0 ? "" : line.slice(colon + 1);
        if (val.startsWith(" ")) val = val.slice(1);
        if (field === "data") event.data.push(val);
        else if (field === "event") event.event = val;
        else if (field === "id") event.id = val;
      }
    }
    return "dropped"; // a job's stream closes after its end: asking again with Last-Event-ID gets a 204
  }

  async function run() {
    while (!stopped) {
      let outcome;
      try {
        outcome = await once();
      } catch {
        if (stopped) return;
        outcome = "dropped";
      }
      if (stopped) return;
      if (outcome === "ended" || outcome === "refused" || outcome === "gone") {
        onState(outcome);
        return;
      }
      onState("retrying");
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 5000);
    }
  }

  run();
  return {
    stop() {
      stopped = true;
      attempt?.abort();
    },
    get lastId() {
      return last;
    },
  };
}
