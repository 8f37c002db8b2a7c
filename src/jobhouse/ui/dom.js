// Building the page from data: text always goes in as text (textContent), never as markup.

/** An element: h("a", {href: "#/x", class: "y"}, "text", child, ...). Attributes are set as
 * attributes (on* handlers are refused), children are nodes or strings (made text nodes). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on")) throw new Error("no inline handlers: " + name);
    if (name === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replace an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/** A JSON value, pretty, as text in a <pre>. */
export function json(value) {
  return h("pre", { class: "json" }, value === null || value === undefined ? "—" : JSON.stringify(value, null, 2));
}

export function when(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

export function age(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

/** The status a person reads: a cancelled job reads "failed" on the workspace surface. */
export function shownStatus(job) {
  return job.status === "failed" && job.currentStep === "Cancelled" ? "cancelled" : job.status;
}

export function statusBadge(job) {
  const s = shownStatus(job);
  return h("span", { class: `status status-${s}` }, s);
}

export function progressBar(value, label) {
  return h("progress", { max: 100, value: value ?? 0, "aria-label": label }, `${value ?? 0}%`);
}

/** A message in the page's live region (read out by screen readers). */
export function say(text) {
  const region = document.getElementById("connection");
  if (region) region.textContent = text;
}
