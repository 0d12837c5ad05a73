// Overview: spend today and this month against budgets, daily spend charts, top spenders,
// traffic; on a first start, how to point Claude Code here.
import { get } from "../api.js";
import { days, meter, stackedDays } from "../charts.js";
import { copyBlock, h, ms, num, table, usd, when } from "../dom.js";
import { replace, section } from "../forms.js";

const DAYS = 14;

export function claudeSnippet(origin, key) {
  return `export ANTHROPIC_BASE_URL=${origin}\nexport ANTHROPIC_API_KEY=${key}\nclaude`;
}

export function codexSnippet(origin, key) {
  return `# ~/.codex/config.toml
model_provider = "tollway"

[model_providers.tollway]
name = "Tollway"
base_url = "${origin}/v1"
env_key = "TOLLWAY_API_KEY"
wire_api = "responses"

# then, in the shell:
export TOLLWAY_API_KEY=${key}
codex`;
}

function stat(label, value, extra) {
  return h("div", { class: "panel stat" }, h("div", { class: "label" }, label),
    h("div", { class: "value" }, value), extra ? h("div", { class: "muted small" }, extra) : null);
}

function firstRun(doc) {
  return h("section", { class: "panel callout", id: "first-run" },
    h("h2", {}, "No requests yet: point Claude Code here"),
    h("p", {}, doc.keys
      ? ["Use a virtual key (the 'default' key was printed once at first start; create more on ",
        h("a", { href: "#/keys" }, "Keys"), "), then in Claude Code's shell:"]
      : ["Create a virtual key on ", h("a", { href: "#/keys" }, "Keys"), ", then in Claude Code's shell:"]),
    copyBlock(claudeSnippet(location.origin, "<virtual key>"), "Claude Code"),
    h("p", { class: "muted small" }, "Requests appear here within a second of finishing."));
}

function budgetsPanel(budgets) {
  const ranked = [...budgets].sort((a, b) =>
    Number(b.spent) / (Number(b.max_limit) + Number(b.top_up)) -
    Number(a.spent) / (Number(a.max_limit) + Number(a.top_up))).slice(0, 8);
  return section("Budgets closest to their limit", table([
    { title: "Budget", cell: (b) => `${b.owner || b.scope} · ${b.budget_id.split("/").pop()}` },
    { title: "Used", cell: (b) => meter(b) },
    { title: "Spent", num: true, cell: (b) => usd(b.spent) },
    { title: "Limit", num: true, cell: (b) => usd(Number(b.max_limit) + Number(b.top_up)) },
    { title: "Resets", cell: (b) => (b.resets_at ? when(b.resets_at) : "never") },
  ], ranked, { empty: "No budgets set. Add them on Keys, Teams or Customers.", label: "Budgets" }),
  h("p", { class: "small" }, h("a", { href: "#/budgets" }, "All budgets →")));
}

function topPanel(title, rows) {
  return section(title, table([
    { title: "Name", cell: (g) => g.name || g.group },
    { title: "Requests", num: true, cell: (g) => num(g.requests) },
    { title: "Cost", num: true, cell: (g) => usd(g.cost.total) },
  ], rows, { empty: "No spend this month.", label: title }));
}

function render(root, doc) {
  const t = doc.traffic_24h;
  const dayList = days(doc.series_from, DAYS);
  const errRate = t.requests ? ((t.errors / t.requests) * 100).toFixed(1) + "%" : "—";
  replace(root,
    h("div", { class: "page-head" }, h("h1", {}, "Overview"),
      h("span", { class: "live", "aria-live": "off" }, `live · updated ${new Date().toLocaleTimeString()}`)),
    doc.first_run ? firstRun(doc) : null,
    h("div", { class: "grid stats" },
      stat("Spend today (UTC)", usd(doc.spend.today.cost.total), `${num(doc.spend.today.requests)} requests`),
      stat("Spend this month", usd(doc.spend.month.cost.total), `${num(doc.spend.month.requests)} requests`),
      stat("Requests, last 24 h", num(t.requests), `${num(t.errors)} errors (${errRate}) · ${num(t.refused_budget)} over budget · ${num(t.rate_limited)} rate-limited`),
      stat("Latency p50 / p95", `${ms(t.latency_ms.p50)} / ${ms(t.latency_ms.p95)}`, "last 24 h"),
      stat("Time to first token p50 / p95", `${ms(t.ttft_ms.p50)} / ${ms(t.ttft_ms.p95)}`, "streams, last 24 h")),
    budgetsPanel(doc.budgets),
    h("div", { class: "grid three" },
      section("Spend per day by team", stackedDays(doc.series.team, dayList, { title: "Spend per day by team", none: "no team" })),
      section("Spend per day by key", stackedDays(doc.series.key, dayList, { title: "Spend per day by key", none: "no key" })),
      section("Spend per day by model", stackedDays(doc.series.model, dayList, { title: "Spend per day by model", none: "unknown" }))),
    h("div", { class: "grid two" },
      topPanel("Top keys this month", doc.top.key), topPanel("Top teams this month", doc.top.team),
      topPanel("Top customers this month", doc.top.customer), topPanel("Top models this month", doc.top.model)));
}

export async function overviewPage(ctx) {
  const load = async () => {
    const doc = await get(`/dashboard/overview?days=${DAYS}`);
    if (!ctx.stopped) render(ctx.root, doc);
  };
  await load();
  ctx.live(load);
}
