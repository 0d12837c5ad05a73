// Small DOM helpers and formatters shared by every page.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "style") for (const [p, x] of Object.entries(v)) el.style.setProperty(p, x);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (v === true) el.setAttribute(k, "");
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

// USD amounts arrive as exact decimal strings; show cents, or more digits below a cent.
export function usd(value) {
  if (value === null || value === undefined || value === "") return "—";
  const n = Number(value);
  if (n === 0) return "$0.00";
  // Below a cent an exact decimal string is shown as it is; a computed sum to 3 digits.
  if (Math.abs(n) < 0.01) {
    return "$" + (typeof value === "string" ? exact(value) : String(Number(n.toPrecision(3))));
  }
  return "$" + n.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
}

// "0.00019800" -> "0.000198": an exact decimal string without its trailing zeros.
export function exact(s) {
  return s.includes(".") ? s.replace(/0+$/, "").replace(/\.$/, "") : s;
}

export function num(n) {
  return n === null || n === undefined ? "—" : Number(n).toLocaleString("en-US");
}

export function ms(n) {
  if (n === null || n === undefined) return "—";
  return n >= 1000 ? (n / 1000).toFixed(2) + " s" : Math.round(n) + " ms";
}

export function when(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return d.toLocaleString(undefined, { year: "numeric", month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

export function ago(iso) {
  if (!iso) return "—";
  const s = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
  if (s < 60) return `${Math.max(s, 0)} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

export function badge(text, kind = "") {
  return h("span", { class: `badge ${kind}` }, text);
}

export function table(columns, rows, { onRow, empty = "Nothing yet.", label } = {}) {
  if (!rows.length) return h("p", { class: "muted" }, empty);
  const head = h("tr", {}, columns.map((c) => h("th", { class: c.num ? "num" : "", scope: "col" }, c.title)));
  const body = rows.map((r) => {
    const tr = h("tr", {}, columns.map((c) =>
      h("td", { class: c.num ? "num" : "", "data-label": c.title }, c.cell(r))));
    if (onRow) {
      tr.classList.add("clickable");
      tr.tabIndex = 0;
      tr.addEventListener("click", (e) => { if (!e.target.closest("button, a")) onRow(r); });
      tr.addEventListener("keydown", (e) => { if (e.key === "Enter") onRow(r); });
    }
    return tr;
  });
  return h("div", { class: "table-wrap" },
    h("table", { class: "responsive", "aria-label": label }, h("thead", {}, head), h("tbody", {}, body)));
}

export function toast(text) {
  const el = h("div", { class: "toast", role: "status" }, text);
  document.body.append(el);
  setTimeout(() => el.remove(), 2500);
}

export async function copy(text, button) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const area = h("textarea", {}, text);
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
  }
  if (button) {
    const old = button.textContent;
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = old; }, 1500);
  }
}

export function copyBlock(text, label) {
  const btn = h("button", { type: "button", class: "ghost", "aria-label": `Copy ${label}` }, "Copy");
  btn.addEventListener("click", () => copy(text, btn));
  return h("div", {}, h("div", { class: "page-head" }, h("h3", {}, label), btn), h("pre", {}, text));
}
