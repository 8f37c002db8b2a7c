// #/overview: the workspace's jobs by kind (queued, scheduled and running now; failed and completed
// in the last 24 hours) and how long the oldest queued job has waited, from GET /api/jobs/stats;
// counted again as the workspace stream reports changes (at most once a second), and every 15 s.

import { get } from "./api.js";
import { age, fill, h, say } from "./dom.js";
import { follow } from "./sse.js";

const COLUMNS = [
  ["queued", "Queued"],
  ["scheduled", "Scheduled"],
  ["running", "Running"],
  ["failed", "Failed (24 h)"],
  ["completed", "Completed (24 h)"],
];

export function overviewPage(main) {
  let oldest = null; // {type, waited: ms at the server's time of the counts, seen: Date.now() then}
  let timer = 0;
  let counting = false;
  let again = false;
  const controller = new AbortController();
  const tbody = h("tbody");
  const oldestText = h("strong", {}, "—");
  const error = h("p", { class: "error", role: "alert" });
  fill(
    main,
    h("h1", {}, "Overview"),
    h("p", { class: "oldest" }, "Oldest queued job: ", oldestText),
    error,
    h(
      "div",
      { class: "scroll" },
      h(
        "table",
        { class: "overview" },
        h("caption", {}, "Jobs by kind: now, and ended in the last 24 hours (failed includes cancelled)"),
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Kind"), COLUMNS.map(([, c]) => h("th", { scope: "col" }, c)), h("th", { scope: "col" }, "Oldest queued"))),
        tbody,
      ),
    ),
  );

  const waited = (kind, at) => (kind.oldestQueuedAt ? Date.parse(at) - Date.parse(kind.oldestQueuedAt) : null);

  async function recount() {
    if (counting) {
      again = true;
      return;
    }
    counting = true;
    try {
      const stats = await get("/api/jobs/stats", { signal: controller.signal });
      const seen = Date.now();
      const cell = (kind, name) => {
        const text = name === "failed" && kind.cancelled ? `${kind.failed} (${kind.cancelled} cancelled)` : String(kind[name]);
        return h("td", { class: name }, text);
      };
      fill(
        tbody,
        stats.kinds.length
          ? stats.kinds.map((kind) => {
              const w = waited(kind, stats.at);
              return h("tr", { dataset: { kind: kind.type } }, h("th", { scope: "row" }, kind.type), COLUMNS.map(([name]) => cell(kind, name)), h("td", { class: "oldest-queued" }, w === null ? "—" : age(w)));
            })
          : h("tr", {}, h("td", { colspan: COLUMNS.length + 2 }, "No jobs in the last 24 hours.")),
      );
      oldest = null;
      for (const kind of stats.kinds) {
        const w = waited(kind, stats.at);
        if (w !== null && (!oldest || w > oldest.waited)) oldest = { type: kind.type, waited: w, seen };
      }
      tick();
      error.textContent = "";
    } catch (e) {
      if (e.name !== "AbortError") error.textContent = `Could not count jobs: ${e.message}`;
    } finally {
      counting = false;
      if (again) {
        again = false;
        schedule();
      }
    }
  }

  function schedule() {
    if (!timer) timer = setTimeout(() => ((timer = 0), recount()), 1000);
  }

  function tick() {
    oldestText.textContent = oldest ? `${age(oldest.waited + Date.now() - oldest.seen)} (${oldest.type})` : "none queued";
  }

  const clock = setInterval(tick, 1000);
  const refresh = setInterval(schedule, 15000); // windows and ages move even when nothing happens
  const stream = follow("/api/jobs/events", {
    onEvent: schedule,
    onState(state) {
      if (state === "open" || state === "reopen") say("Live: counts follow the workspace.");
      if (state === "reopen") schedule();
      else if (state === "retrying") say("Connection lost: reconnecting…");
    },
  });
  recount();
  return () => {
    stream.stop();
    controller.abort();
    clearTimeout(timer);
    clearInterval(clock);
    clearInterval(refresh);
  };
}
