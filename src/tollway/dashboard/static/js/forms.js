// Forms with an error slot beside every field; API errors land next to the field they name.
import { clear, h } from "./dom.js";

let seq = 0;

export class Form {
  constructor({ submit, label, onSubmit, cancel }) {
    this.inputs = new Map(); // field name -> {control, error}
    this.formError = h("p", { class: "error", role: "alert", hidden: true });
    this.button = h("button", { type: "submit" }, label || submit || "Save");
    this.el = h("form", { class: "stack", novalidate: true, "aria-label": label });
    this.body = h("div", { class: "stack" });
    const buttons = h("div", { class: "actions" }, this.button);
    if (cancel) buttons.append(h("button", { type: "button", class: "ghost", onclick: cancel }, "Cancel"));
    this.el.append(this.body, this.formError, buttons);
    this.el.addEventListener("submit", async (e) => {
      e.preventDefault();
      this.clearErrors();
      this.button.disabled = true;
      try {
        await onSubmit(this);
      } catch (err) {
        this.showError(err);
      } finally {
        this.button.disabled = false;
      }
    });
  }

  add(node) {
    this.body.append(node);
    return this;
  }

  // A labelled control. `name` is the API's field name, so its errors find it.
  field(name, label, { type = "text", value = "", hint, options, placeholder, required, step } = {}) {
    const id = `f${++seq}-${name.replace(/[^a-z0-9]/gi, "-")}`;
    let control;
    if (options) {
      control = h("select", { id, name },
        options.map(([v, text]) => h("option", { value: v, selected: String(v) === String(value) }, text)));
    } else if (type === "checkbox") {
      control = h("input", { id, name, type, checked: Boolean(value) });
    } else if (type === "textarea") {
      control = h("textarea", { id, name, rows: 3, placeholder }, value ?? "");
    } else {
      control = h("input", { id, name, type, value: value ?? "", placeholder, required, step,
        autocomplete: "off" });
    }
    const error = h("p", { class: "error", id: id + "-error", hidden: true });
    const hintEl = hint ? h("span", { class: "hint", id: id + "-hint" }, hint) : null;
    control.setAttribute("aria-describedby", [hintEl && id + "-hint", id + "-error"].filter(Boolean).join(" "));
    const wrap = type === "checkbox"
      ? h("div", { class: "field" }, h("label", { class: "check", for: id }, control, label), hintEl, error)
      : h("div", { class: "field" }, h("label", { for: id }, label), control, hintEl, error);
    this.inputs.set(name, { control, error });
    return wrap;
  }

  value(name) {
    const c = this.inputs.get(name)?.control;
    if (!c) return undefined;
    if (c.type === "checkbox") return c.checked;
    return c.value.trim();
  }

  // Register a composite editor (e.g. budgets) so errors under its name land beside it.
  register(name, control, error) {
    this.inputs.set(name, { control, error });
  }

  clearErrors() {
    this.formError.hidden = true;
    for (const { control, error } of this.inputs.values()) {
      error.hidden = true;
      error.textContent = "";
      control.removeAttribute("aria-invalid");
      for (const el of control.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
    }
  }

  // The longest registered field name that is the error's key or a prefix of it.
  slotFor(key) {
    let best = null;
    for (const name of this.inputs.keys()) {
      if ((key === name || key.startsWith(name + ".") || key.startsWith(name + "[")) &&
          (!best || name.length > best.length)) best = name;
    }
    return best;
  }

  showError(err) {
    const fields = err.fields || {};
    let first = null;
    const loose = [];
    for (const [key, msg] of Object.entries(fields)) {
      const name = this.slotFor(key);
      if (!name) { loose.push(`${key}: ${msg}`); continue; }
      const { control, error } = this.inputs.get(name);
      const sub = key.slice(name.length + 1);
      const detail = key === name ? msg : control.describe ? control.describe(sub, msg) : `${sub}: ${msg}`;
      error.textContent = error.textContent ? `${error.textContent}; ${detail}` : detail;
      error.hidden = false;
      control.setAttribute("aria-invalid", "true");
      first = first || control;
    }
    if (!first || loose.length) {
      this.formError.textContent = loose.length ? loose.join("; ") : err.message || String(err);
      this.formError.hidden = false;
    }
    (first || this.button).focus();
  }
}

const WINDOWS = [["1d", "per day"], ["1w", "per week"], ["1M", "per month"], ["1h", "per hour"],
  ["1Q", "per quarter"], ["1Y", "per year"]];

// Budgets: rows of (USD, window, calendar-aligned). value() gives the API's list.
export function budgetsEditor(form, name, budgets = []) {
  const rows = h("div", { class: "stack" });
  const error = h("p", { class: "error", hidden: true });
  const control = h("fieldset", {}, h("legend", {}, "Budgets (USD, hard caps)"), rows);
  const addRow = (b = {}) => {
    const n = ++seq;
    const amount = h("input", { type: "number", min: "0", step: "0.01", value: b.max_limit ?? "",
      "aria-label": "Budget amount in USD", id: `b${n}-amount`, placeholder: "USD" });
    const known = WINDOWS.some(([w]) => w === b.reset_duration);
    const windowSel = h("select", { "aria-label": "Budget window", id: `b${n}-window` },
      [...WINDOWS, ...(b.reset_duration && !known ? [[b.reset_duration, b.reset_duration]] : [])]
        .map(([v, t]) => h("option", { value: v, selected: v === (b.reset_duration || "1d") }, t)));
    const cal = h("input", { type: "checkbox", checked: Boolean(b.calendar_aligned), id: `b${n}-cal` });
    const row = h("div", { class: "budget-row" }, amount, windowSel,
      h("label", { class: "check", for: `b${n}-cal` }, cal, "calendar"),
      h("button", { type: "button", class: "ghost", "aria-label": "Remove budget",
        onclick: () => row.remove() }, "Remove"));
    // An exact decimal goes as a string (no float on the way); anything else as a number,
    // for the API to refuse with its own message.
    const money = (v) => (/^\d+(\.\d+)?$/.test(v) ? v : v === "" ? "" : Number(v));
    row._value = () => ({ max_limit: money(amount.value.trim()), reset_duration: windowSel.value,
      calendar_aligned: cal.checked });
    rows.append(row);
    return amount;
  };
  budgets.forEach((b) => addRow(b));
  const add = h("button", { type: "button", class: "ghost" }, "Add budget");
  add.addEventListener("click", () => addRow().focus());
  control.append(add, error);
  form.register(name, control, error);
  control.value = () => [...rows.children].map((r) => r._value()).filter((b) => b.max_limit !== "");
  // "0.max_limit" -> "Budget 1, amount: ...", and that row's control marked invalid.
  control.describe = (sub, msg) => {
    const [index, field] = sub.split(".");
    const filled = [...rows.children].filter((r) => r._value().max_limit !== "");
    const row = filled[Number(index)];
    const names = { max_limit: "amount", reset_duration: "window", calendar_aligned: "calendar" };
    const input = row && row.querySelector(field === "reset_duration" ? "select" : "input");
    if (input) input.setAttribute("aria-invalid", "true");
    return `Budget ${Number(index) + 1}${field ? `, ${names[field] || field}` : ""}: ${msg}`;
  };
  return control;
}

export function section(title, ...children) {
  return h("section", { class: "panel" }, h("h2", {}, title), ...children);
}

export function replace(el, ...children) {
  clear(el);
  for (const c of children.flat(Infinity)) if (c) el.append(c);
  return el;
}
