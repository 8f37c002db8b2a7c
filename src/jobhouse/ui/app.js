// The dashboard: sign-in, then a page per hash route (#/jobs, #/jobs/<id>, #/search, #/sources,
// #/overview). Each page returns a function that stops what it started (streams, timers).

import { ApiError, clearKey, get, key, setKey, whenRefused } from "./api.js";
import { fill, h, say } from "./dom.js";
import { jobPage } from "./job.js";
import { jobsPage } from "./jobs.js";
import { overviewPage } from "./overview.js";
import { searchPage } from "./search.js";
import { sourcesPage } from "./sources.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
let stopPage = () => {};

function signInPage(message) {
  nav.hidden = true;
  const field = h("input", {
    id: "key",
    name: "key",
    type: "password",
    autocomplete: "off",
    spellcheck: "false",
    required: true,
    "aria-describedby": "key-help",
  });
  const error = h("p", { id: "sign-in-error", class: "error", role: "alert" }, message || "");
  const button = h("button", { type: "submit" }, "Sign in");
  const form = h(
    "form",
    { class: "sign-in", "aria-labelledby": "sign-in-title" },
    h("h1", { id: "sign-in-title" }, "Sign in"),
    h("label", { for: "key" }, "API key"),
    field,
    h(
      "p",
      { id: "key-help", class: "help" },
      "A key made with ",
      h("code", {}, "jobhouse keys create --workspace NAME"),
      " (the server's first start wrote one to ",
      h("code", {}, "first-key"),
      " in its data directory). It is kept in this tab only, and sent in a header, never in a link.",
    ),
    button,
    error,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const candidate = field.value.trim();
    if (!candidate) return;
    button.disabled = true;
    error.textContent = "";
    try {
      await get("/api/jobs?limit=1", { keyOverride: candidate });
      setKey(candidate);
      field.value = "";
      if (!location.hash || location.hash === "#/" || location.hash === "#/sign-in") location.hash = "#/jobs";
      else route();
    } catch (e) {
      error.textContent =
        e instanceof ApiError && e.status === 401
          ? "That key was not accepted: check it, or make a new one."
          : `Could not sign in: ${e.message}`;
      button.disabled = false;
      field.focus();
    }
  });
  fill(main, form);
  field.focus();
}

function signOut(message) {
  stopPage();
  stopPage = () => {};
  clearKey();
  say("");
  signInPage(message);
}

function route() {
  stopPage();
  stopPage = () => {};
  if (!key()) {
    signInPage();
    return;
  }
  nav.hidden = false;
  const hash = location.hash || "#/jobs";
  const [path, search] = hash.slice(1).split("?");
  const params = new URLSearchParams(search || "");
  const parts = path.split("/").filter(Boolean);
  for (const link of nav.querySelectorAll("a")) {
    const current = link.getAttribute("href").slice(2) === parts[0];
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  main.replaceChildren();
  let stop;
  if (parts[0] === "jobs" && parts[1]) stop = jobPage(main, decodeURIComponent(parts[1]));
  else if (parts[0] === "search") stop = searchPage(main);
  else if (parts[0] === "sources") stop = sourcesPage(main);
  else if (parts[0] === "overview") stop = overviewPage(main);
  else stop = jobsPage(main, params);
  stopPage = stop || (() => {});
  const heading = main.querySelector("h1");
  if (heading) {
    heading.setAttribute("tabindex", "-1");
    if (document.activeElement === document.body || !main.contains(document.activeElement)) heading.focus();
  }
}

// The skip link moves the focus to the page's content; it must not change the route (the hash).
document.querySelector(".skip").addEventListener("click", (event) => {
  event.preventDefault();
  main.focus();
});
whenRefused(() => signOut("Your key was refused (revoked or unknown): sign in again."));
document.getElementById("sign-out").addEventListener("click", () => signOut("Signed out."));
window.addEventListener("hashchange", route);
route();
