// #/jobs/<id>: one job, its input, metadata, result or error, its steps and attempts, live from
// the job's event stream; Cancel while it is queued or running, Retry once it failed.

import { ApiError, get, post } from "./api.js";
import { fill, h, json, progressBar, say, shownStatus, statusBadge, when } from "./dom.js";
import { follow } from "./sse.js";

export function jobPage(main, id) {
  const path = `/api/jobs/${encodeURIComponent(id)}`;
  let job = null;
  let stream = null;
  let frame = 0;
  const heading = h("h1", {}, "Job");
  const actions = h("div", { class: "actions" });
  const notice = h("p", { class: "error", role: "alert" });
  const body = h("div", { class: "job" }, h("p", {}, "Loading…"));
  fill(main, h("p", {}, h("a", { href: "#/jobs" }, "← All jobs")), heading, actions, notice, body);

  function render() {
    frame = 0;
    if (!job) return;
    const s = shownStatus(job);
    heading.textContent = job.displayTitle || job.type;
    fill(actions);
    if (s === "queued" || s === "running") actions.append(button("Cancel", cancel));
    if (s === "failed" || s === "cancelled") actions.append(button("Retry", retry));
    const facts = [
      ["Status", statusBadge(job)],
      ["Progress", h("span", { class: "progress" }, progressBar(job.progress, "Progress"), ` ${job.progress ?? 0}%`)],
      ["Current step", job.currentStep ?? "—"],
      ["Type", job.type],
      ["Subject", job.competitorId ?? "—"],
      ["Id", h("code", {}, job.id)],
      ["Attempt", `${job.attempt ?? 0} of ${job.maxAttempts ?? "?"}`],
      ["Priority", String(job.priority ?? 0)],
      ["Created", when(job.createdAt)],
      ["Scheduled for", job.scheduledAt ? when(job.scheduledAt) : null],
      ["Started", when(job.startedAt)],
      ["Ended", when(job.completedAt)],
      ["Updated", when(job.updatedAt)],
    ].filter(([, v]) => v !== null);
    const steps = h(
      "ol",
      { class: "timeline", "aria-label": "Steps" },
      (job.steps || []).map((step) =>
        h("li", { class: `step step-${step.status}`, dataset: { step: step.id } }, h("span", { class: "step-name" }, step.name), " ", h("span", { class: "step-status" }, step.status)),
      ),
    );
    const errors = job.errors || [];
    const attempts = h(
      "ol",
      { class: "attempts", "aria-label": "Attempts" },
      Array.from({ length: job.attempt || 0 }, (_, i) => {
        const n = i + 1;
        const failed = errors.filter((e) => e.attempt === n);
        const current = n === job.attempt;
        const outcome = failed.length ? `failed (${failed[0].type})` : current ? shownStatus(job) : "ended";
        return h(
          "li",
          { class: failed.length ? "attempt failed" : "attempt" },
          h("strong", {}, `Attempt ${n}`),
          `: ${outcome}`,
          failed.map((e) => h("div", { class: "attempt-error" }, when(e.at), " — ", e.message)),
        );
      }),
    );
    fill(
      body,
      h("dl", { class: "facts" }, facts.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
      h("section", { "aria-labelledby": "h-steps" }, h("h2", { id: "h-steps" }, "Steps"), steps.children.length ? steps : h("p", {}, "This kind has no named steps.")),
      h("section", { "aria-labelledby": "h-attempts" }, h("h2", { id: "h-attempts" }, "Attempts"), attempts.children.length ? attempts : h("p", {}, "Not started yet.")),
      job.error ? h("section", { "aria-labelledby": "h-error" }, h("h2", { id: "h-error" }, "Error"), json(job.error)) : null,
      s === "completed" ? h("section", { "aria-labelledby": "h-result" }, h("h2", { id: "h-result" }, "Result"), json(job.result)) : null,
      h("section", { "aria-labelledby": "h-input" }, h("h2", { id: "h-input" }, "Input"), json(job.input)),
      h("section", { "aria-labelledby": "h-meta" }, h("h2", { id: "h-meta" }, "Metadata"), json(job.metadata)),
    );
  }

  function button(label, action) {
    const b = h("button", { type: "button" }, label);
    b.addEventListener("click", async () => {
      b.disabled = true;
      notice.textContent = "";
      try {
        await action();
      } catch (e) {
        notice.textContent = `${label} failed: ${e.message}`;
        b.disabled = false;
      }
    });
    return b;
  }

  async function cancel() {
    const answer = await post(`${path}/cancel`);
    job = answer.job;
    say("Job cancelled.");
    render();
  }

  async function retry() {
    const answer = await post(`${path}/retry`);
    job = answer.job;
    say("Job queued again.");
    render();
    watch(stream ? stream.lastId : null);
  }

  function watch(lastId) {
    stream?.stop();
    stream = follow(`${path}/events`, {
      lastId,
      onEvent({ event, data }) {
        if (!data || data.id !== job?.id) return;
        Object.assign(job, data);
        if (event === "status" && ["completed", "failed"].includes(data.status)) refresh(); // attempts' errors
        frame ||= requestAnimationFrame(render);
      },
      onState(state) {
        if (state === "open" || state === "reopen") say("Live: this page follows the job.");
        else if (state === "retrying") say("Connection lost: reconnecting…");
        else if (state === "ended") say("The job has ended.");
        else if (state === "gone") notice.textContent = "This job no longer exists.";
      },
    });
  }

  async function refresh() {
    try {
      job = (await get(path)).job;
      frame ||= requestAnimationFrame(render);
    } catch (e) {
      notice.textContent = e instanceof ApiError && e.status === 404 ? "No such job in this workspace." : `Could not load the job: ${e.message}`;
    }
  }

  get(path)
    .then((answer) => {
      job = answer.job;
      render();
      watch(null); // replays the job's history, then follows it
    })
    .catch((e) => {
      heading.textContent = "Job not found";
      fill(body);
      notice.textContent = e instanceof ApiError && e.status === 404 ? "No such job in this workspace." : `Could not load the job: ${e.message}`;
    });

  return () => {
    stream?.stop();
    if (frame) cancelAnimationFrame(frame);
  };
}
