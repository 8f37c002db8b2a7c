// #/sources: the candidate sources, their last sync and candidate counts; a sync shown live.

import { get, post } from "./api.js";
import { fill, h, progressBar, say, shownStatus, when } from "./dom.js";
import { follow } from "./sse.js";

export function sourcesPage(main) {
  const streams = new Set();
  const error = h("p", { class: "error", role: "alert" });
  const tbody = h("tbody");
  const syncAll = h("button", { type: "button" }, "Sync all sources");
  const live = h("div", { class: "syncs", "aria-live": "polite" });
  fill(
    main,
    h("h1", {}, "Sources"),
    h("p", {}, "Where searches find applications. A sync reads a source again and rebuilds the index."),
    h("p", {}, syncAll),
    error,
    live,
    h(
      "div",
      { class: "scroll" },
      h(
        "table",
        { class: "sources" },
        h("thead", {}, h("tr", {}, ["Source", "Last sync", "Candidates", "Last error", ""].map((c) => h("th", { scope: "col" }, c)))),
        tbody,
      ),
    ),
  );

  async function load() {
    try {
      const { sources } = await get("/api/v1/run/sources");
      fill(
        tbody,
        sources.map((s) => {
          const button = h("button", { type: "button", "aria-label": `Sync ${s.title}` }, "Sync");
          button.addEventListener("click", () => sync(`/api/v1/run/sources/${encodeURIComponent(s.id)}/sync`, s.title, button));
          return h(
            "tr",
            { dataset: { source: s.id } },
            h("th", { scope: "row" }, h("span", {}, s.title), h("br"), h("code", {}, s.id)),
            h("td", {}, s.synced_at ? when(s.synced_at) : "never"),
            h("td", {}, String(s.candidate_count)),
            h("td", {}, s.last_error ? `${s.last_error} (${when(s.last_error_at)})` : "—"),
            h("td", {}, button),
          );
        }),
      );
    } catch (e) {
      error.textContent = `Could not load the sources: ${e.message}`;
    }
  }

  async function sync(path, title, button) {
    button.disabled = true;
    error.textContent = "";
    try {
      const job = await post(path, {});
      const bar = progressBar(job.progress, `Sync of ${title}`);
      const text = h("span");
      const line = h("p", { class: "sync" }, `Sync of ${title}: `, h("a", { href: `#/jobs/${job.job_id}` }, "job"), " ", text, " ", bar);
      live.prepend(line);
      const show = (status, step) => {
        text.textContent = step ? `${status} — ${step}` : status;
      };
      show(job.status, job.current_step);
      const stream = follow(`/api/jobs/${job.job_id}/events`, {
        onEvent({ data }) {
          if (!data) return;
          bar.value = data.progress ?? 0;
          show(shownStatus(data), data.currentStep);
        },
        onState(state) {
          if (state === "ended" || state === "gone") {
            streams.delete(stream);
            button.disabled = false;
            say(`Sync of ${title} ended.`);
            load();
          }
        },
      });
      streams.add(stream);
    } catch (e) {
      error.textContent = `Could not start the sync: ${e.message}`;
      button.disabled = false;
    }
  }

  syncAll.addEventListener("click", () => sync("/api/v1/run/sources/sync", "all sources", syncAll));
  load();
  return () => {
    for (const s of streams) s.stop();
  };
}
