// Charts drawn as SVG: daily spend stacked by group. No library.
import { h, usd } from "./dom.js";

const NS = "http://www.w3.org/2000/svg";
const COLORS = ["--c1", "--c2", "--c3", "--c4", "--c5", "--c6", "--c7", "--c8"];
const MAX_GROUPS = 7;

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "style") for (const [p, x] of Object.entries(v)) el.style.setProperty(p, x);
    else el.setAttribute(k, String(v));
  }
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

export function days(fromIso, count) {
  const out = [];
  const start = new Date(fromIso);
  for (let i = 0; i < count; i++) {
    const d = new Date(Date.UTC(start.getUTCFullYear(), start.getUTCMonth(), start.getUTCDate() + i));
    out.push(d.toISOString().slice(0, 10));
  }
  return out;
}

function axisUsd(v) {
  if (v === 0) return "$0";
  if (v >= 1) return "$" + v.toLocaleString("en-US", { maximumFractionDigits: 2 });
  return "$" + Number(v.toPrecision(3));
}

function niceMax(v) {
  if (v <= 0) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

// rows: [{day, group, name, cost}] -> stacked bars, the dearest groups first, the rest "other".
export function stackedDays(rows, dayList, { title, none = "(none)" }) {
  const totals = new Map();
  const label = new Map();
  for (const r of rows) {
    const g = r.group ?? "(none)";
    totals.set(g, (totals.get(g) || 0) + Number(r.cost));
    label.set(g, r.name || r.group || none);
  }
  const ranked = [...totals.entries()].sort((a, b) => b[1] - a[1]).map(([g]) => g);
  const shown = ranked.slice(0, MAX_GROUPS);
  const groups = ranked.length > MAX_GROUPS ? [...shown, "__other"] : shown;
  label.set("__other", "other");
  const cell = new Map();
  for (const r of rows) {
    const g = shown.includes(r.group ?? "(none)") ? r.group ?? "(none)" : "__other";
    const k = r.day + "|" + g;
    cell.set(k, (cell.get(k) || 0) + Number(r.cost));
  }
  const dayTotals = dayList.map((d) => groups.reduce((a, g) => a + (cell.get(d + "|" + g) || 0), 0));
  const top = niceMax(Math.max(0, ...dayTotals));
  const W = 480, H = 200, L = 70, B = 24, T = 8, R = 8;
  const bw = (W - L - R) / dayList.length;
  const y = (v) => T + (H - T - B) * (1 - v / top);
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title });
  svg.append(s("title", {}, title));
  for (let i = 0; i <= 4; i++) {
    const v = (top * i) / 4;
    svg.append(s("line", { class: "gridline", x1: L, x2: W - R, y1: y(v), y2: y(v) }));
    svg.append(s("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end" }, axisUsd(v)));
  }
  dayList.forEach((d, i) => {
    let base = 0;
    groups.forEach((g, gi) => {
      const v = cell.get(d + "|" + g) || 0;
      if (v <= 0) return;
      const rect = s("rect", { x: L + i * bw + bw * 0.15, width: Math.max(bw * 0.7, 1),
        y: y(base + v), height: Math.max(y(base) - y(base + v), 0.5),
        style: { fill: `var(${COLORS[gi % COLORS.length]})` } });
      rect.append(s("title", {}, `${d} · ${label.get(g)}: ${usd(v)}`));
      svg.append(rect);
      base += v;
    });
    const every = Math.ceil(dayList.length / 8);
    if ((dayList.length - 1 - i) % every === 0) {
      svg.append(s("text", { x: L + i * bw + bw / 2, y: H - 6, "text-anchor": "middle" }, d.slice(5)));
    }
  });
  svg.append(s("line", { class: "axis", x1: L, x2: W - R, y1: y(0), y2: y(0) }));
  const legend = h("div", { class: "legend" }, groups.map((g, gi) =>
    h("span", { style: { "--swatch": `var(${COLORS[gi % COLORS.length]})` } },
      `${label.get(g)} ${usd(totals.get(g) ?? ranked.slice(MAX_GROUPS).reduce((a, x) => a + totals.get(x), 0))}`)));
  const wrap = h("div", { class: "chart" });
  wrap.append(svg);
  if (!groups.length) wrap.append(h("p", { class: "muted small" }, "No spend in this period."));
  else wrap.append(legend);
  return wrap;
}

// One budget as a bar: spent, then reserved, out of the limit plus top-ups.
export function meter(b) {
  const cap = Number(b.max_limit) + Number(b.top_up || 0);
  const spent = Number(b.spent), reserved = Number(b.reserved);
  const pct = (v) => (cap > 0 ? Math.min(100, (v / cap) * 100) : 0);
  const el = h("div", { class: "meter" + (spent >= cap ? " over" : ""), role: "meter",
    "aria-valuemin": 0, "aria-valuemax": cap, "aria-valuenow": spent,
    "aria-label": `spent ${usd(spent)} of ${usd(cap)}` },
    h("div", { class: "spent", style: { width: `${pct(spent)}%` } }),
    h("div", { class: "reserved", style: { width: `${pct(reserved)}%` } }));
  return el;
}
