// The single page: hash routes, navigation state, live refresh while a page is shown.
import { ApiError } from "./api.js";
import { clear, h } from "./dom.js";
import { budgetsPage } from "./pages/budgets.js";
import { customersPage, keysPage, teamsPage } from "./pages/entities.js";
import { logsPage } from "./pages/logs.js";
import { overviewPage } from "./pages/overview.js";
import { pricingPage } from "./pages/pricing.js";
import { providersPage } from "./pages/providers.js";
import { sessionsPage } from "./pages/sessions.js";

const PAGES = {
  overview: overviewPage, budgets: budgetsPage, logs: logsPage, sessions: sessionsPage,
  keys: keysPage, teams: teamsPage, customers: customersPage, providers: providersPage,
  pricing: pricingPage,
};
const LIVE_MS = 5000;
const main = document.getElementById("main");
let current = null; // {stop()} of the page on screen

function parseHash() {
  const [name, ...rest] = location.hash.replace(/^#\/?/, "").split("/");
  const [page, q] = (name || "overview").split("?");
  return { page: PAGES[page] ? page : "overview", arg: rest.join("/"), params: new URLSearchParams(q || "") };
}

async function show() {
  if (current) current.stop();
  const route = parseHash();
  for (const a of document.querySelectorAll("#nav a")) {
    if (a.getAttribute("href") === `#/${route.page}`) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  document.getElementById("nav").classList.remove("open");
  clear(main);
  const root = h("div", {});
  main.append(root);
  const state = { timer: null, stopped: false };
  current = { stop() { state.stopped = true; clearInterval(state.timer); } };
  const ctx = {
    root, arg: route.arg, params: route.params,
    // Calls `fn` now and every few seconds while this page is on screen and visible.
    live(fn) {
      state.timer = setInterval(() => {
        if (!state.stopped && document.visibilityState === "visible") fn().catch(report);
      }, LIVE_MS);
    },
    get stopped() { return state.stopped; },
  };
  try {
    await PAGES[route.page](ctx);
  } catch (err) {
    report(err, root);
  }
  document.title = `${route.page[0].toUpperCase()}${route.page.slice(1)} · Tollway`;
}

function report(err, root) {
  if (err instanceof ApiError && err.status === 401) return;
  console.error(err);
  const where = root || main;
  where.append(h("p", { class: "error", role: "alert" }, `Could not load: ${err.message || err}`));
}

document.querySelector(".menu-toggle").addEventListener("click", (e) => {
  const nav = document.getElementById("nav");
  const open = nav.classList.toggle("open");
  e.currentTarget.setAttribute("aria-expanded", String(open));
});
window.addEventListener("hashchange", show);
show();
