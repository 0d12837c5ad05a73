// Providers: list (key values never shown), add, edit (keys left empty keep their value),
// remove.
import { api, get } from "../api.js";
import { h, table, toast } from "../dom.js";
import { Form, replace, section } from "../forms.js";

function keysEditor(form, keys) {
  const rows = h("div", { class: "stack" });
  const error = h("p", { class: "error", hidden: true });
  const control = h("fieldset", {}, h("legend", {}, "Provider API keys"), rows);
  let n = 0;
  const addRow = (k = {}) => {
    const i = ++n;
    const name = h("input", { value: k.name || (i === 1 ? "main" : `key${i}`), "aria-label": "Key name", id: `pk${i}-name` });
    const value = h("input", { type: "password", autocomplete: "off", id: `pk${i}-value`,
      "aria-label": "Key value", placeholder: k.name ? "leave empty to keep the stored value" : "sk-... or env.NAME" });
    const weight = h("input", { type: "number", step: "any", min: "0", value: k.weight ?? 1, "aria-label": "Weight", id: `pk${i}-weight` });
    const row = h("div", { class: "budget-row" }, name, value, weight,
      h("button", { type: "button", class: "ghost", onclick: () => row.remove(), "aria-label": "Remove key" }, "Remove"));
    row._value = () => ({ name: name.value.trim(), weight: Number(weight.value || 1), value: value.value.trim() || null });
    rows.append(row);
    return name;
  };
  (keys.length ? keys : [{}]).forEach((k) => addRow(k.name ? k : {}));
  control.append(h("button", { type: "button", class: "ghost", onclick: () => addRow().focus() }, "Add key"), error);
  form.register("keys", control, error);
  control.value = () => [...rows.children].map((r) => r._value()).filter((k) => k.name);
  return control;
}

function providerForm(p, done) {
  const r = p || {};
  let keys = null;
  const form = new Form({
    label: p ? `Save provider` : "Add provider",
    cancel: () => done(false),
    onSubmit: async (f) => {
      const name = p ? p.name : f.value("name");
      if (!name) throw Object.assign(new Error("name: a name is required"), { fields: { name: "a name is required" } });
      const models = f.value("models").split(",").map((m) => m.trim()).filter(Boolean);
      const body = { type: f.value("type") || null, base_url: f.value("base_url") || null, models, keys: keys.value() };
      const timeout = f.value("timeout_s");
      if (timeout) body.timeout_s = Number(timeout);
      await api("PUT", `/dashboard/providers/${encodeURIComponent(name)}`, body);
      done(true);
    },
  });
  if (!p) form.add(form.field("name", "Name", { hint: "anthropic, openai, or your own (e.g. groq) with a type" }));
  form.add(h("div", { class: "row" },
    form.field("type", "Type", { value: r.type || "", options: [["", "from the name"], ["anthropic", "anthropic"], ["openai", "openai (or compatible)"], ["simulated", "simulated"]] }),
    form.field("base_url", "Base URL", { value: r.base_url || "", placeholder: "https://api.anthropic.com" }),
    form.field("timeout_s", "Timeout (s)", { type: "number", value: r.timeout_s ?? "" })));
  form.add(form.field("models", "Models it serves (bare names, comma-separated)", { value: (r.models || []).join(", ") }));
  keys = keysEditor(form, r.keys || []);
  form.add(keys);
  return form;
}

export async function providersPage(ctx) {
  const top = h("div", {});
  const list = h("div", {});
  const refresh = async () => {
    const rows = await get("/providers");
    replace(list, table([
      { title: "Name", cell: (p) => h("strong", {}, p.name) },
      { title: "Type", cell: (p) => p.type },
      { title: "Base URL", cell: (p) => h("span", { class: "mono" }, p.base_url || "default") },
      { title: "Models", cell: (p) => (p.models.length ? p.models.join(", ") : "catalog") },
      { title: "Keys", cell: (p) => p.keys.map((k) => `${k.name} (${k.value}, weight ${k.weight})`).join("; ") || "none" },
      { title: "Actions", cell: (p) => h("div", { class: "actions" },
        h("button", { type: "button", class: "ghost", "aria-label": `Edit ${p.name}`, onclick: () => open(p) }, "Edit"),
        h("button", { type: "button", class: "danger", "aria-label": `Remove ${p.name}`, onclick: async () => {
          if (!confirm(`Remove provider '${p.name}'? New requests stop routing to it.`)) return;
          try { await api("DELETE", `/dashboard/providers/${encodeURIComponent(p.name)}`); } catch (e) { toast(e.message); }
          await refresh();
        } }, "Remove")) },
    ], rows, { label: "Providers", empty: "No providers." }));
  };
  const open = (p) => {
    const form = providerForm(p, async (saved) => {
      replace(top);
      if (saved) toast("Providers saved: new requests use them at once");
      await refresh();
    });
    replace(top, section(p ? `Edit provider '${p.name}'` : "New provider", form.el));
    form.el.querySelector("input, select")?.focus();
  };
  replace(ctx.root, h("div", { class: "page-head" }, h("h1", {}, "Providers"),
    h("button", { type: "button", id: "new-provider", onclick: () => open(null) }, "New provider")),
    h("p", { class: "muted" }, "Provider keys are stored by the gateway and never shown again."),
    top, h("section", { class: "panel" }, list));
  await refresh();
}
