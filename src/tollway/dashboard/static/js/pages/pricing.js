// Pricing: every model's price and where it came from.
import { get } from "../api.js";
import { badge, h, table } from "../dom.js";
import { replace, section } from "../forms.js";

const RATES = ["input", "output", "cache_read", "cache_write_5m", "cache_write_1h"];

function rate(p, k) {
  const v = p[k] ?? (p.rates && p.rates[k]);
  return v === null || v === undefined ? "—" : `$${v}`;
}

function link(url) {
  return url ? h("a", { href: url, rel: "noreferrer noopener", target: "_blank" }, new URL(url).host) : null;
}

// Where a price came from: its own `source` (layer, name, url, checked) when the API gives
// one, else the table's sources for its provider; overrides are marked.
function origin(p, doc) {
  const src = p.source && typeof p.source === "object" ? p.source : null;
  const layer = p.layer || (src && src.layer) || (p.overridden ? "override" : "built-in table");
  const parts = [badge(layer, p.overridden || ["api", "config"].includes(layer) ? "warn" : ""), " "];
  if (src) {
    const name = src.name || "";
    parts.push(name, src.version && !name.includes(src.version.split(":").pop()) ? ` ${src.version}` : "", " ", link(src.url),
      src.checked ? h("span", { class: "muted small" }, ` checked ${src.checked}`) : null);
  } else if (typeof p.source === "string") {
    parts.push(p.source);
  } else if (!p.overridden && doc.source && typeof doc.source === "object") {
    const urls = doc.source[p.provider] || [];
    urls.forEach((u, i) => parts.push(i ? ", " : "", link(u)));
    parts.push(h("span", { class: "muted small" }, ` as of ${doc.as_of || "—"}`));
  }
  if (p.assumption) parts.push(h("div", { class: "muted small" }, `assumption: ${p.assumption}`));
  if (p.note) parts.push(h("div", { class: "muted small" }, p.note));
  return h("span", {}, parts);
}

function tableSource(doc) {
  if (doc.base && doc.base.package) return `${doc.base.package} ${doc.base.version || ""}, as of ${doc.as_of || "—"}`;
  if (typeof doc.source === "string") return `${doc.source}, as of ${doc.as_of || "—"}`;
  return `the packaged price table, as of ${doc.as_of || "—"}`;
}

const SHOWN = 150;

export async function pricingPage(ctx) {
  const doc = await get("/pricing");
  let filter = "";
  let provider = "";
  const list = h("div", {});
  const count = h("p", { class: "muted small", "aria-live": "polite" });
  const draw = () => {
    const rows = doc.data.filter((p) => (!filter || (p.key || p.model || p.name || "").toLowerCase().includes(filter))
      && (!provider || p.provider === provider));
    count.textContent = rows.length > SHOWN
      ? `Showing ${SHOWN} of ${rows.length} prices: type part of a model name to narrow.`
      : `${rows.length} price${rows.length === 1 ? "" : "s"}.`;
    replace(list, table([
      { title: "Model", cell: (p) => h("span", { class: "mono" }, p.key || p.model || p.name) },
      { title: "Provider", cell: (p) => p.provider || "—" },
      ...RATES.map((k) => ({ title: k.replace(/_/g, " "), num: true, cell: (p) => rate(p, k) })),
      { title: "Where it came from", cell: (p) => origin(p, doc) },
    ], rows.slice(0, SHOWN), { label: "Prices", empty: "No model matches." }));
  };
  const search = h("input", { type: "search", id: "price-filter", placeholder: "claude-sonnet" });
  search.addEventListener("input", () => { filter = search.value.trim().toLowerCase(); draw(); });
  const providers = [...new Set(doc.data.map((p) => p.provider).filter(Boolean))].sort();
  const pick = h("select", { id: "price-provider" }, h("option", { value: "" }, "all"),
    providers.map((p) => h("option", { value: p }, p)));
  pick.addEventListener("change", () => { provider = pick.value; draw(); });
  replace(ctx.root, h("h1", {}, "Pricing"),
    h("p", { class: "muted" }, `USD per million tokens. Prices from ${tableSource(doc)}. `,
      "Override a price with PUT /api/pricing/{model} or the config's pricing section."),
    section("Prices", h("div", { class: "filters" },
      h("div", { class: "field" }, h("label", { for: "price-filter" }, "Model"), search),
      h("div", { class: "field" }, h("label", { for: "price-provider" }, "Provider"), pick)), count, list));
  draw();
}
