// Logs: filters, newest first with cursor paging, live refresh; #/logs/<id> is one record.
import { get, query } from "../api.js";
import { badge, h, ms, num, table, usd, when } from "../dom.js";
import { Form, replace, section } from "../forms.js";

const FILTERS = [["key", "Key"], ["team", "Team"], ["customer", "Customer"], ["model", "Model"],
  ["provider", "Provider"], ["status", "Status"], ["session", "Session"], ["client", "Client"],
  ["from", "From (ISO or epoch)"], ["to", "To"], ["min_cost", "Min cost (USD)"]];

function statusBadge(s) {
  return badge(String(s), s >= 400 ? "bad" : "ok");
}

const COLUMNS = [
  { title: "Time", cell: (r) => when(r.started_at) },
  { title: "Status", cell: (r) => statusBadge(r.status) },
  { title: "Key", cell: (r) => r.vk_name || "—" },
  { title: "Model", cell: (r) => r.served_model || r.requested_model || "—" },
  { title: "Provider", cell: (r) => r.provider || "—" },
  { title: "Tokens in/out", num: true, cell: (r) => `${num(r.tokens.input + r.tokens.cache_read + r.tokens.cache_write_5m + r.tokens.cache_write_1h)} / ${num(r.tokens.output)}` },
  { title: "Cost", num: true, cell: (r) => (r.cost_unknown ? badge("unpriced", "warn") : usd(r.cost.total)) },
  { title: "Latency", num: true, cell: (r) => ms(r.latency_ms) },
];

export async function logsPage(ctx) {
  if (ctx.arg) return detail(ctx, decodeURIComponent(ctx.arg));
  const filters = Object.fromEntries(FILTERS.map(([k]) => [k, ctx.params.get(k) || ""]));
  const form = new Form({ label: "Filter", onSubmit: async (f) => {
    const q = Object.fromEntries(FILTERS.map(([k]) => [k, f.value(k)]));
    location.hash = "#/logs" + query(q);
  } });
  form.add(h("div", { class: "filters" }, FILTERS.map(([k, label]) =>
    form.field(k, label, { value: filters[k], type: k === "status" || k === "min_cost" ? "number" : "text", step: k === "min_cost" ? "any" : undefined }))));
  const list = h("div", {});
  const more = h("div", {});
  const stamp = h("span", { class: "live" });
  replace(ctx.root, h("div", { class: "page-head" }, h("h1", {}, "Logs"), stamp),
    section("Filters", form.el), h("section", { class: "panel" }, list, more));
  let rows = [];
  let next = null;
  const open = (r) => { location.hash = `#/logs/${encodeURIComponent(r.id)}`; };
  const draw = () => {
    replace(list, table(COLUMNS, rows, { onRow: open, empty: "No requests match.", label: "Requests" }));
    replace(more, next ? h("button", { type: "button", class: "ghost", onclick: () => page(next) }, "Load more") : null);
  };
  const stampNow = () => { stamp.textContent = `live · updated ${new Date().toLocaleTimeString()}`; };
  const page = async (cursor) => {
    const doc = await get("/logs" + query({ ...filters, limit: 50, cursor }));
    rows = cursor ? rows.concat(doc.data) : doc.data;
    next = doc.next_cursor;
    draw();
    stampNow();
  };
  try {
    await page();
  } catch (err) {
    form.showError(err);
    return;
  }
  // Live: new records are merged in at the top; pages already loaded stay.
  ctx.live(async () => {
    const doc = await get("/logs" + query({ ...filters, limit: 50 }));
    if (ctx.stopped) return;
    const known = new Set(rows.map((r) => r.id));
    const fresh = doc.data.filter((r) => !known.has(r.id));
    if (fresh.length) {
      rows = fresh.concat(rows);
      draw();
    }
    stampNow();
  });
}

function kv(pairs) {
  return h("dl", { class: "kv" }, pairs.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v ?? "—")]));
}

function body(value) {
  if (value === null || value === undefined) return h("p", { class: "muted" }, "Not stored (logging.content off for this key, or dropped).");
  return h("pre", {}, typeof value === "string" ? value : JSON.stringify(value, null, 2));
}

async function detail(ctx, id) {
  const r = await get(`/logs/${encodeURIComponent(id)}`);
  const kinds = ["input", "output", "cache_read", "cache_write_5m", "cache_write_1h", "reasoning"];
  replace(ctx.root,
    h("p", {}, h("a", { href: "#/logs" }, "← All logs")),
    h("div", { class: "page-head" }, h("h1", {}, "Request ", h("span", { class: "mono" }, r.id)), statusBadge(r.status)),
    h("div", { class: "grid two" },
      section("Request", kv([
        ["Started", when(r.started_at)], ["Key", r.vk_name], ["Team", r.team_name],
        ["Customer", r.customer_name], ["User", r.user_id], ["Session", r.session_id],
        ["Client", r.client], ["Surface", r.surface], ["Stream", r.stream ? "yes" : "no"],
        ["Latency", ms(r.latency_ms)], ["Time to first token", ms(r.ttft_ms)],
        ["Error", r.error_type ? `${r.error_type}: ${r.error_message || ""}` : null],
      ])),
      section("Route", kv([
        ["Requested model", r.requested_model], ["Served model", r.served_model],
        ["Provider", r.provider], ["Retries", num(r.retries)], ["Fallback index", num(r.fallback_index)],
        ["Partial", r.partial ? "yes (stream cut short)" : "no"], ["Cache hit", r.cache_hit ? "yes" : "no"],
      ]))),
    section("Tokens and cost by kind", table([
      { title: "Kind", cell: (k) => k },
      { title: "Tokens", num: true, cell: (k) => num(r.tokens[k]) },
      { title: "Cost", num: true, cell: (k) => usd(r.cost[k]) },
    ], kinds, { label: "Tokens and cost" }),
    h("p", {}, h("strong", {}, "Total: "), r.cost_unknown ? "unknown (no price for this model)" : usd(r.cost.total),
      h("span", { class: "muted small" }, ` (exact: $${r.cost.total})`))),
    section("Attempts", table([
      { title: "#", cell: (a) => a.index },
      { title: "Provider", cell: (a) => a.provider },
      { title: "Provider key", cell: (a) => a.key_name },
      { title: "Model", cell: (a) => a.model },
      { title: "Status", cell: (a) => statusBadge(a.status) },
      { title: "Latency", num: true, cell: (a) => ms(a.latency_ms) },
      { title: "Error", cell: (a) => a.error_type || "" },
    ], r.attempts, { empty: "No upstream attempt (refused by the gateway).", label: "Attempts" })),
    section("Request body", body(r.content && r.content.request)),
    section("Response body", body(r.content && r.content.response)));
}
