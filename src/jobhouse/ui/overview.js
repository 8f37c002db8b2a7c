// #/overview: queued, running and failed jobs by kind, and the oldest queued job's age; kept
// live by the workspace stream (recounted at most every two seconds). Counts come from the
// workspace's job listings and stop at 2,000 per status ("2000+").

import { get, query } from "./api.js";
import { age, fill, h, say } from "./dom.js";
import { follow } from "./sse.js";

const STATUSES = ["queued", "running", "failed"];
const CAP = 2000;

export function overviewPage(main) {
  let oldest = null;
  let timer = 0;
  let again = false;
  let counting = false;
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
        h("caption", {}, "Jobs by kind (failed includes cancelled)"),
        h("thead", {}, h("tr", {}, ["Kind", ...STATUSES].map((c) => h("th", { scope: "col" }, c)))),
        tbody,
      ),
    ),
  );

  async function count(status) {
    const byKind = new Map();
    let cursor = null;
    let seen = 0;
    let last = null;
    do {
      const page = await get(`/api/jobs${query({ status, limit: 500, cursor })}`, { signal: controller.signal });
      for (const job of page.jobs) byKind.set(job.type, (byKind.get(job.type) || 0) + 1);
      seen += page.jobs.length;
      last = page.jobs.at(-1) ?? last;
      cursor = page.nextCursor;
    } while (cursor && seen < CAP);
    return { byKind, more: Boolean(cursor), last };
  }

  async function recount() {
    if (counting) {
      again = true;
      return;
    }
    counting = true;
    try {
      const results = await Promise.all(STATUSES.map(count));
      const kinds = new Set(results.flatMap((r) => [...r.byKind.keys()]));
      const cell = (r, kind) => `${r.byKind.get(kind) || 0}${r.more ? "+" : ""}`;
      fill(
        tbody,
        kinds.size
          ? [...kinds].sort().map((kind) => h("tr", { dataset: { kind } }, h("th", { scope: "row" }, kind), results.map((r) => h("td", {}, cell(r, kind)))))
          : h("tr", {}, h("td", { colspan: 4 }, "No queued, running or failed jobs.")),
      );
      const queued = results[0];
      oldest = queued.more ? null : queued.last;
      oldestText.textContent = queued.more ? `older than the ${CAP} newest` : oldest ? "" : "none queued";
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
    if (!timer) timer = setTimeout(() => ((timer = 0), recount()), 2000);
  }

  function tick() {
    if (oldest) oldestText.textContent = `${age(Date.now() - Date.parse(oldest.createdAt))} (${oldest.type})`;
  }

  const clock = setInterval(tick, 1000);
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
  };
}
