// #/jobs: the workspace's jobs, filtered and paged, kept live by the workspace event stream.
// Rows are keyed by job id and updated in place; changes are applied once per animation frame
// (500 jobs changing at once cost one layout), and the table never holds more than a page.

import { get, query } from "./api.js";
import { fill, h, progressBar, say, shownStatus, when } from "./dom.js";
import { follow } from "./sse.js";

const STATUSES = ["queued", "running", "completed", "failed", "cancelled"];
const TERMINAL = new Set(["completed", "failed", "cancelled"]);

/** The kinds this server runs, from its OpenAPI document (public, no key needed). */
let kindsPromise = null;
export function kinds() {
  kindsPromise ??= fetch("/openapi.json")
    .then((r) => r.json())
    .then((doc) => doc?.components?.schemas?.CreateJob?.properties?.type?.enum ?? [])
    .catch(() => []);
  return kindsPromise;
}

function matches(job, filters) {
  const s = shownStatus(job);
  if (filters.status && !(s === filters.status || (filters.status === "failed" && s === "cancelled"))) return false;
  if (filters.type && job.type !== filters.type) return false;
  if (filters.subject && job.competitorId !== filters.subject) return false;
  return inRange(job, filters);
}

/** Whether `got` (a job as read) was updated after `have` (a row's job, as events left it). */
function newer(got, have) {
  return !have.updatedAt || !got.updatedAt || Date.parse(got.updatedAt) > Date.parse(have.updatedAt);
}

function inRange(job, filters) {
  if (!job.createdAt) return true;
  const t = Date.parse(job.createdAt);
  if (filters.from && t < Date.parse(filters.from)) return false;
  if (filters.to && t > Date.parse(filters.to)) return false;
  return true;
}

export function jobsPage(main, params) {
  const filters = {
    type: params.get("type") || "",
    status: params.get("status") || "",
    subject: params.get("subject") || "",
    from: params.get("from") || "",
    to: params.get("to") || "",
  };
  const limit = Math.min(Math.max(Number(params.get("limit")) || 25, 1), 500);
  const cursors = [null]; // the cursor of each page seen so far; the last is the current page's
  let nextCursor = null;
  let loading = null;
  /** id -> {tr, cells, job} for the rows on screen. */
  const rows = new Map();
  const pending = new Map();
  let frame = 0;
  let refetch = 0;
  let lastRefetch = -Infinity;

  const field = (id, label, input) => h("div", { class: "field" }, h("label", { for: id }, label), input);
  const clear = h("button", { type: "button" }, "Clear");
  const typeInput = h("input", { id: "f-type", name: "type", list: "kinds", value: filters.type, autocomplete: "off" });
  const kindList = h("datalist", { id: "kinds" });
  const statusInput = h(
    "select",
    { id: "f-status", name: "status" },
    h("option", { value: "" }, "any"),
    STATUSES.map((s) => h("option", { value: s, selected: s === filters.status }, s)),
  );
  const subjectInput = h("input", { id: "f-subject", name: "subject", value: filters.subject, autocomplete: "off" });
  const fromInput = h("input", { id: "f-from", name: "from", type: "datetime-local", value: filters.from });
  const toInput = h("input", { id: "f-to", name: "to", type: "datetime-local", value: filters.to });
  const form = h(
    "form",
    { class: "filters", "aria-label": "Filter jobs" },
    field("f-type", "Type", typeInput),
    kindList,
    field("f-status", "Status", statusInput),
    field("f-subject", "Subject", subjectInput),
    field("f-from", "Created from", fromInput),
    field("f-to", "Created to", toInput),
    h("div", { class: "field actions" }, h("button", { type: "submit" }, "Apply"), clear),
  );
  const tbody = h("tbody");
  const table = h(
    "table",
    { class: "jobs" },
    h("caption", { class: "visually-hidden" }, "Jobs, newest first"),
    h(
      "thead",
      {},
      h("tr", {}, ["Title", "Type", "Status", "Progress", "Current step", "Created"].map((c) => h("th", { scope: "col" }, c))),
    ),
    tbody,
  );
  const empty = h("p", { class: "empty", hidden: true }, "No jobs match.");
  const prev = h("button", { type: "button", disabled: true }, "Previous");
  const next = h("button", { type: "button", disabled: true }, "Next");
  const pageInfo = h("span", { class: "page-info", "aria-live": "polite" });
  const error = h("p", { class: "error", role: "alert" });

  // On a small screen the filters fold away (unless some are set); on a wide one they are open.
  const active = ["type", "status", "subject", "from", "to"].filter((k) => filters[k]).length;
  const folded = h(
    "details",
    { class: "filters-box", open: active > 0 || matchMedia("(min-width: 40rem)").matches },
    h("summary", {}, active ? `Filters (${active} set)` : "Filters"),
    form,
  );
  fill(
    main,
    h("h1", {}, "Jobs"),
    folded,
    error,
    h("div", { class: "scroll" }, table),
    empty,
    h("nav", { class: "pager", "aria-label": "Pages of jobs" }, prev, pageInfo, next),
  );
  kinds().then((names) => fill(kindList, names.map((n) => h("option", { value: n }))));

  function makeRow(job) {
    const link = h("a", { href: `#/jobs/${encodeURIComponent(job.id)}` });
    const cells = {
      title: link,
      type: h("td"),
      status: h("span", { class: "status" }),
      bar: progressBar(0, ""),
      step: h("td", { class: "step" }),
      created: h("td"),
    };
    const tr = h(
      "tr",
      { dataset: { id: job.id } },
      h("td", { class: "title" }, link),
      cells.type,
      h("td", {}, cells.status),
      h("td", {}, cells.bar),
      cells.step,
      cells.created,
    );
    const row = { tr, cells, job: {} };
    update(row, job);
    return row;
  }

  function update(row, change) {
    const job = Object.assign(row.job, change);
    const { cells } = row;
    const s = shownStatus(job);
    const progress = job.progress ?? 0;
    const title = job.displayTitle ?? job.type ?? job.id;
    // Only what changed is written: an unchanged row costs no style or layout work.
    const shown = [title, job.type ?? "", s, progress, job.currentStep ?? (TERMINAL.has(s) ? "" : "—"), job.createdAt];
    if (row.shown && shown.every((v, i) => v === row.shown[i])) return;
    const was = row.shown || [];
    row.shown = shown;
    if (was[0] !== title) {
      cells.title.textContent = title;
      cells.bar.setAttribute("aria-label", `Progress of ${title}`);
    }
    if (was[1] !== shown[1]) cells.type.textContent = shown[1];
    if (was[2] !== s) {
      cells.status.textContent = s;
      cells.status.className = `status status-${s}`;
      row.tr.dataset.status = s;
    }
    if (was[3] !== progress) {
      cells.bar.value = progress;
      cells.bar.textContent = `${progress}%`;
      row.tr.dataset.progress = String(progress);
    }
    if (was[4] !== shown[4]) cells.step.textContent = shown[4];
    if (was[5] !== job.createdAt) cells.created.textContent = when(job.createdAt);
  }

  async function load(cursor) {
    const controller = new AbortController();
    loading?.abort();
    loading = controller;
    error.textContent = "";
    try {
      const page = await get(
        `/api/jobs${query({ type: filters.type, status: filters.status, competitorId: filters.subject, limit, cursor })}`,
        { signal: controller.signal },
      );
      let jobs = page.jobs.filter((job) => inRange(job, filters));
      nextCursor = page.nextCursor;
      // Newest first: past the "from" bound, no later page can hold a match.
      if (filters.from && page.jobs.length && Date.parse(page.jobs.at(-1).createdAt) < Date.parse(filters.from)) {
        nextCursor = null;
      }
      render(jobs.slice(0, limit));
    } catch (e) {
      if (e.name !== "AbortError") error.textContent = `Could not load jobs: ${e.message}`;
    } finally {
      if (loading === controller) loading = null;
    }
  }

  function render(jobs) {
    const keep = new Set(jobs.map((j) => j.id));
    for (const [id, row] of rows) if (!keep.has(id)) rows.delete(id);
    const trs = jobs.map((job) => {
      const row = rows.get(job.id);
      if (row) {
        // A page read before the latest events must not set a row back: only what events do not
        // carry is taken from a snapshot that is not newer than the row.
        update(row, newer(job, row.job) ? job : { displayTitle: job.displayTitle, createdAt: job.createdAt });
        return row.tr;
      }
      const made = makeRow(job);
      rows.set(job.id, made);
      return made.tr;
    });
    // Rows already in place stay where they are (moving them costs layout); new ones go in between.
    let at = tbody.firstChild;
    for (const tr of trs) {
      if (tr === at) at = at.nextSibling;
      else tbody.insertBefore(tr, at);
    }
    while (at) {
      const gone = at;
      at = at.nextSibling;
      gone.remove();
    }
    empty.hidden = jobs.length > 0;
    prev.disabled = cursors.length <= 1;
    next.disabled = !nextCursor;
    pageInfo.textContent = `Page ${cursors.length}`;
  }

  function flush() {
    frame = 0;
    let unseen = false;
    for (const [id, change] of pending) {
      const row = rows.get(id);
      if (row) update(row, change);
      else if (cursors.length === 1 && matches({ ...change, createdAt: null }, filters)) unseen = true;
    }
    pending.clear();
    // A job that is new to the first page: fetch the page again (its title and creation time are
    // not in events) at once, then at most once a second however many arrive.
    if (unseen && !refetch) {
      const wait = Math.max(0, lastRefetch + 1000 - performance.now());
      refetch = setTimeout(() => {
        refetch = 0;
        lastRefetch = performance.now();
        if (cursors.length === 1) load(null);
      }, wait);
    }
  }

  const stream = follow(`/api/jobs/events${query({ type: filters.type, competitorId: filters.subject })}`, {
    onEvent({ data }) {
      if (!data || !data.id) return;
      pending.set(data.id, Object.assign(pending.get(data.id) || {}, data));
      frame ||= requestAnimationFrame(flush);
    },
    onState(state) {
      if (state === "open" || state === "reopen") say("Live: updates arrive as jobs change.");
      if (state === "reopen") load(cursors.at(-1)); // whatever changed while the connection was down
      else if (state === "retrying") say("Connection lost: reconnecting…");
    },
  });

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const wanted = {
      type: typeInput.value.trim(),
      status: statusInput.value,
      subject: subjectInput.value.trim(),
      from: fromInput.value,
      to: toInput.value,
      limit: params.get("limit") || "",
    };
    history.replaceState(null, "", `#/jobs${query(wanted)}`);
    stop();
    main.replaceChildren();
    Object.assign(handle, { stop: jobsPage(main, new URLSearchParams(query(wanted).slice(1))) });
    main.querySelector("h1")?.setAttribute("tabindex", "-1");
    main.querySelector("h1")?.focus();
  });
  clear.addEventListener("click", () => {
    for (const input of [typeInput, statusInput, subjectInput, fromInput, toInput]) input.value = "";
    form.requestSubmit();
  });
  next.addEventListener("click", () => {
    if (!nextCursor) return;
    cursors.push(nextCursor);
    load(nextCursor);
  });
  prev.addEventListener("click", () => {
    if (cursors.length <= 1) return;
    cursors.pop();
    load(cursors.at(-1));
  });

  load(null);

  function stop() {
    stream.stop();
    loading?.abort();
    if (frame) cancelAnimationFrame(frame);
    clearTimeout(refetch);
  }
  const handle = { stop };
  return () => handle.stop();
}
