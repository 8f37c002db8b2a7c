// #/search: start a candidate search (a job), watch it, and show the ranked candidates.

import { get, post } from "./api.js";
import { fill, h, progressBar, say } from "./dom.js";

const DONE = new Set(["done", "failed", "cancelled"]);

export function searchPage(main) {
  let stopped = false;
  const controller = new AbortController();
  const field = (id, label, input) => h("div", { class: "field" }, h("label", { for: id }, label), input);
  const app = h("input", { id: "s-app", name: "app", required: true, maxlength: 200, autocomplete: "off", placeholder: "e.g. firefox" });
  const os = h("select", { id: "s-os", name: "os" }, ["", "linux", "macos", "windows"].map((v) => h("option", { value: v }, v || "any")));
  const kind = h("select", { id: "s-kind", name: "kind" }, ["", "gui", "cli"].map((v) => h("option", { value: v }, v || "any")));
  const limit = h("input", { id: "s-limit", name: "limit", type: "number", min: 1, max: 100, value: 10 });
  const submit = h("button", { type: "submit" }, "Search");
  const form = h("form", { class: "filters", "aria-label": "Search for an application" }, field("s-app", "Application", app), field("s-os", "OS", os), field("s-kind", "Kind", kind), field("s-limit", "How many", limit), h("div", { class: "field actions" }, submit));
  const status = h("div", { class: "search-status", "aria-live": "polite" });
  const error = h("p", { class: "error", role: "alert" });
  const results = h("div", { class: "results" });
  fill(main, h("h1", {}, "Search"), h("p", {}, "Find how to launch or install an application on this machine. The search runs as a job."), form, error, status, results);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    fill(results);
    submit.disabled = true;
    const selector = { app: app.value.trim(), limit: Number(limit.value) || 10 };
    if (os.value) selector.os = os.value;
    if (kind.value) selector.kind = kind.value;
    try {
      let job = await post("/api/v1/run/search/jobs", selector, { signal: controller.signal });
      show(job);
      while (!DONE.has(job.status) && !stopped) {
        job = await get(`/api/v1/run/jobs/${job.job_id}?wait=done&timeout_ms=30000`, { signal: controller.signal });
        show(job);
      }
      if (job.status === "done") candidates(job.result?.candidates ?? []);
      else if (job.error) error.textContent = `The search ${job.status}: ${job.error.message}`;
    } catch (e) {
      if (e.name !== "AbortError") error.textContent = `Search failed: ${e.message}`;
    } finally {
      submit.disabled = false;
    }
  });

  function show(job) {
    fill(
      status,
      h("p", {}, "Search job ", h("a", { href: `#/jobs/${job.job_id}` }, job.job_id.slice(0, 8) + "…"), `: ${job.status}`, job.current_step ? ` — ${job.current_step}` : ""),
      progressBar(job.progress, "Search progress"),
    );
    if (DONE.has(job.status)) say(`Search ${job.status}.`);
  }

  function candidates(list) {
    if (!list.length) {
      fill(results, h("p", { class: "empty" }, "No candidates found."));
      return;
    }
    const cols = ["#", "Name", "App", "Version", "OS", "Kind", "Installed", "Score", "Match", "Launch", "Install", "Sources"];
    fill(
      results,
      h("h2", {}, `${list.length} candidate${list.length === 1 ? "" : "s"}, best first`),
      h(
        "div",
        { class: "scroll" },
        h(
          "table",
          { class: "candidates" },
          h("thead", {}, h("tr", {}, cols.map((c) => h("th", { scope: "col" }, c)))),
          h(
            "tbody",
            {},
            list.map((c, i) =>
              h(
                "tr",
                {},
                [i + 1, c.name, c.app, c.version ?? "—", c.os, c.kind ?? "—", c.installed ? "yes" : "no", c.score, c.match, c.launch ?? "—", c.install ?? "—", (c.sources || []).join(", ")].map((v) => h("td", {}, String(v))),
              ),
            ),
          ),
        ),
      ),
    );
  }

  return () => {
    stopped = true;
    controller.abort();
  };
}
