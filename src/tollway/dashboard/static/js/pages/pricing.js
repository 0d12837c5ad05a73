// Pricing: every model's price and where it came from.
import { get } from "../api.js";
import { badge, h, table } from "../dom.js";
import { replace, section } from "../forms.js";

const RATES = ["input", "output", "cache_read", "cache_write_5m", "cache_write_1h"];

function rate(p, k) {
  const v = p[k] ?? (p.rates && p.rates[k]);
  return v === null || v === undefined ? "—" : `$${v}`;
}

function origin(p, doc) {
  const src = p.source || p.origin || (p.overridden ? "override (config or API)" : doc.source);
  return h("span", {}, p.overridden ? badge("override", "warn") : null, " ", String(src ?? "—"),
    p.as_of || p.source_date ? h("span", { class: "muted small" }, ` (${p.as_of || p.source_date})`) : null,
    p.assumption ? h("div", { class: "muted small" }, `assumption: ${p.assumption}`) : null,
    p.note ? h("div", { class: "muted small" }, p.note) : null);
}

export async function pricingPage(ctx) {
  const doc = await get("/pricing");
  let filter = "";
  const list = h("div", {});
  const draw = () => {
    const rows = doc.data.filter((p) => !filter || (p.model || p.name || "").toLowerCase().includes(filter));
    replace(list, table([
      { title: "Model", cell: (p) => h("span", { class: "mono" }, p.model || p.name) },
      { title: "Provider", cell: (p) => p.provider || "—" },
      ...RATES.map((k) => ({ title: k.replace(/_/g, " "), num: true, cell: (p) => rate(p, k) })),
      { title: "Where it came from", cell: (p) => origin(p, doc) },
    ], rows, { label: "Prices", empty: "No model matches." }));
  };
  const search = h("input", { type: "search", id: "price-filter", placeholder: "claude-sonnet", "aria-label": "Filter models" });
  search.addEventListener("input", () => { filter = search.value.trim().toLowerCase(); draw(); });
  replace(ctx.root, h("h1", {}, "Pricing"),
    h("p", { class: "muted" }, `USD per million tokens. Table: ${doc.source || "built in"}, as of ${doc.as_of || "—"}. `,
      "Override a price with PUT /api/pricing/{model} or the config's pricing section."),
    section("Prices", h("div", { class: "field" }, h("label", { for: "price-filter" }, "Filter"), search), list));
  draw();
}
