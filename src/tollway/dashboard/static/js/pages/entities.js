// Keys, Teams, Customers: list, create, edit budgets, limits and allowlists; rotate and
// revoke keys (a new secret is shown once, with copy buttons and client snippets).
import { api, get } from "../api.js";
import { badge, copy, copyBlock, h, table, toast, usd, when } from "../dom.js";
import { budgetsEditor, Form, replace, section } from "../forms.js";
import { claudeSnippet, codexSnippet } from "./overview.js";

const KINDS = {
  keys: { path: "/virtual-keys", one: "key", title: "Virtual keys" },
  teams: { path: "/teams", one: "team", title: "Teams" },
  customers: { path: "/customers", one: "customer", title: "Customers" },
};

function budgetsText(budgets) {
  if (!budgets || !budgets.length) return "—";
  return budgets.map((b) => `${usd(b.max_limit)}/${b.reset_duration}`).join(", ");
}

function limitsText(rl) {
  if (!rl) return "—";
  const parts = [];
  if (rl.request_max_limit) parts.push(`${rl.request_max_limit} req/${rl.request_reset_duration}`);
  if (rl.token_max_limit) parts.push(`${rl.token_max_limit} tok/${rl.token_reset_duration}`);
  if (rl.concurrency_max) parts.push(`${rl.concurrency_max} at once`);
  return parts.join(", ") || "—";
}

const intOrNull = (v) => (v === "" ? null : Number(v));

function rateLimitFields(form, rl = {}) {
  return h("fieldset", {}, h("legend", {}, "Rate limits (empty: none)"), h("div", { class: "row" },
    form.field("rate_limit.request_max_limit", "Requests", { type: "number", value: rl?.request_max_limit ?? "" }),
    form.field("rate_limit.request_reset_duration", "per", { value: rl?.request_reset_duration || "1m" }),
    form.field("rate_limit.token_max_limit", "Tokens", { type: "number", value: rl?.token_max_limit ?? "" }),
    form.field("rate_limit.token_reset_duration", "per", { value: rl?.token_reset_duration || "1m" }),
    form.field("rate_limit.concurrency_max", "Concurrent", { type: "number", value: rl?.concurrency_max ?? "" })));
}

function rateLimitValue(form) {
  const rl = {
    request_max_limit: intOrNull(form.value("rate_limit.request_max_limit")),
    request_reset_duration: form.value("rate_limit.request_reset_duration") || "1m",
    token_max_limit: intOrNull(form.value("rate_limit.token_max_limit")),
    token_reset_duration: form.value("rate_limit.token_reset_duration") || "1m",
    concurrency_max: intOrNull(form.value("rate_limit.concurrency_max")),
  };
  return rl.request_max_limit || rl.token_max_limit || rl.concurrency_max ? rl : null;
}

function secretPanel(record, verb) {
  const key = record.key;
  const btn = h("button", { type: "button", id: "copy-secret" }, "Copy key");
  btn.addEventListener("click", () => copy(key, btn));
  return h("section", { class: "panel secret", id: "new-secret", tabindex: "-1" },
    h("h2", {}, `Key '${record.name}' ${verb}: copy its secret now`),
    h("p", {}, "This is the only time the secret is shown; Tollway keeps only its hash."),
    h("div", { class: "copy-line" }, h("code", { id: "secret-value" }, key), btn),
    copyBlock(claudeSnippet(location.origin, key), "Claude Code"),
    copyBlock(codexSnippet(location.origin, key), "Codex CLI"));
}

async function options(path, none) {
  const rows = await get(path);
  return [["", none], ...rows.map((r) => [r.id, r.name])];
}

async function entityForm(kind, record, done) {
  const editing = Boolean(record);
  const r = record || {};
  let budgets = null;
  const form = new Form({
    label: editing ? `Save ${KINDS[kind].one}` : `Create ${KINDS[kind].one}`,
    cancel: () => done(null),
    onSubmit: async (f) => {
      const body = { name: f.value("name"), budgets: budgets.value(), rate_limit: rateLimitValue(f) };
      if (kind === "teams") body.customer_id = f.value("customer_id") || null;
      if (kind === "keys") Object.assign(body, keyFields(f, r));
      if (editing && body.name === r.name) delete body.name;
      const saved = await api(editing ? "PATCH" : "POST",
        `${KINDS[kind].path}${editing ? "/" + encodeURIComponent(r.id) : ""}`, body);
      done(saved);
    },
  });
  form.add(form.field("name", "Name", { value: r.name || "", required: true }));
  if (kind === "teams") {
    form.add(form.field("customer_id", "Customer", { value: r.customer_id || "", options: await options("/customers", "(none)") }));
  }
  if (kind === "keys") {
    const owners = [["", "(none)"], ...(await get("/teams")).map((t) => [`team:${t.id}`, `team ${t.name}`]),
      ...(await get("/customers")).map((c) => [`customer:${c.id}`, `customer ${c.name}`])];
    const owner = r.team_id ? `team:${r.team_id}` : r.customer_id ? `customer:${r.customer_id}` : "";
    const grant = (r.provider_configs || [])[0] || {};
    const providers = [["*", "any provider"], ...(await get("/providers")).map((p) => [p.name, p.name])];
    form.add(form.field("owner", "Team or customer", { value: owner, options: owners }));
    budgets = budgetsEditor(form, "budgets", r.budgets);
    form.add(budgets);
    form.add(h("fieldset", {}, h("legend", {}, "Allowed provider and models"), h("div", { class: "row" },
      form.field("provider_configs.0.provider", "Provider", { value: grant.provider || "*", options: providers }),
      form.field("provider_configs.0.allowed_models", "Models", { value: (grant.allowed_models || ["*"]).join(", ") })),
      h("span", { class: "hint" }, "Models: comma-separated; exact, *, a glob (claude-haiku-*) or regex:^gpt-5$")));
    form.add(rateLimitFields(form, r.rate_limit));
    form.add(h("div", { class: "row" },
      form.field("session_budget.max_limit", "Budget per agent session (USD)", { type: "number", step: "0.01", value: r.session_budget?.max_limit ?? "" }),
      form.field("expires_at", "Expires at (ISO 8601, optional)", { value: r.expires_at || "", placeholder: "2027-01-01T00:00:00Z" }),
      form.field("log_content", "Store request bodies", { value: r.log_content === true ? "yes" : r.log_content === false ? "no" : "", options: [["", "gateway default"], ["yes", "yes"], ["no", "no"]] })));
  } else {
    budgets = budgetsEditor(form, "budgets", r.budgets);
    form.add(budgets);
    form.add(rateLimitFields(form, r.rate_limit));
  }
  return form;
}

function keyFields(f, r) {
  const [ownerKind, ownerId] = (f.value("owner") || ":").split(":");
  const old = (r.provider_configs || [])[0] || {};
  const models = f.value("provider_configs.0.allowed_models").split(",").map((m) => m.trim()).filter(Boolean);
  const provider = f.value("provider_configs.0.provider") || "*";
  const restricted = provider !== "*" || models.some((m) => m !== "*") || (r.provider_configs || []).length;
  const session = f.value("session_budget.max_limit");
  const log = f.value("log_content");
  return {
    team_id: ownerKind === "team" ? ownerId : null,
    customer_id: ownerKind === "customer" ? ownerId : null,
    provider_configs: restricted ? [{ ...old, provider, allowed_models: models.length ? models : ["*"] },
      ...(r.provider_configs || []).slice(1)] : undefined,
    session_budget: session ? { max_limit: session } : null,
    expires_at: f.value("expires_at") || null,
    log_content: log === "" ? null : log === "yes",
  };
}

function columns(kind, act) {
  const cols = [{ title: "Name", cell: (r) => h("strong", {}, r.name) }];
  if (kind === "keys") {
    cols.push({ title: "Key", cell: (r) => h("span", { class: "mono" }, r.key_hint) });
    cols.push({ title: "State", cell: (r) => (r.revoked_at ? badge("revoked", "bad") : r.is_active ? badge("active", "ok") : badge("disabled", "warn")) });
  }
  cols.push({ title: "Budgets", cell: (r) => budgetsText(r.budgets) },
    { title: "Rate limits", cell: (r) => limitsText(r.rate_limit) });
  if (kind === "keys") cols.push({ title: "Models", cell: (r) => (r.provider_configs || []).map((g) => `${g.provider}: ${g.allowed_models.join(", ")}`).join("; ") || "any" });
  cols.push({ title: "Updated", cell: (r) => when(r.updated_at) },
    { title: "Actions", cell: (r) => act(r) });
  return cols;
}

function entitiesPage(kind) {
  return async function page(ctx) {
    const meta = KINDS[kind];
    const top = h("div", {});
    const list = h("div", {});
    const refresh = async () => {
      const rows = await get(meta.path);
      replace(list, table(columns(kind, actions), rows, { label: meta.title,
        empty: `No ${meta.title.toLowerCase()} yet.` }));
    };
    const openForm = async (record) => {
      const form = await entityForm(kind, record, async (saved) => {
        if (saved && saved.key) {
          replace(top, secretPanel(saved, record ? "rotated" : "created"));
          top.firstChild.focus();
        } else {
          replace(top);
          if (saved) toast(`Saved ${meta.one} '${saved.name}'`);
        }
        await refresh();
      });
      replace(top, section(record ? `Edit ${meta.one} '${record.name}'` : `New ${meta.one}`, form.el));
      form.el.querySelector("input, select")?.focus();
    };
    function actions(r) {
      const box = h("div", { class: "actions" });
      const managed = r.managed_by_config ? badge("config", "warn") : null;
      box.append(h("button", { type: "button", class: "ghost", onclick: () => openForm(r), "aria-label": `Edit ${r.name}` }, "Edit"));
      if (kind === "keys" && !r.revoked_at) {
        box.append(h("button", { type: "button", class: "ghost", "aria-label": `Rotate ${r.name}`, onclick: async () => {
          if (!confirm(`Rotate '${r.name}'? The old secret stops working at once.`)) return;
          const saved = await api("POST", `${meta.path}/${encodeURIComponent(r.id)}/rotate`);
          replace(top, secretPanel(saved, "rotated"));
          top.firstChild.focus();
          await refresh();
        } }, "Rotate"));
        box.append(h("button", { type: "button", class: "danger", "aria-label": `Revoke ${r.name}`, onclick: async () => {
          if (!confirm(`Revoke '${r.name}'? It stops working at once; its records stay.`)) return;
          await api("DELETE", `${meta.path}/${encodeURIComponent(r.id)}`);
          toast(`Revoked '${r.name}'`);
          await refresh();
        } }, "Revoke"));
      }
      if (kind !== "keys") {
        box.append(h("button", { type: "button", class: "danger", "aria-label": `Delete ${r.name}`, onclick: async () => {
          if (!confirm(`Delete ${meta.one} '${r.name}'?`)) return;
          try {
            await api("DELETE", `${meta.path}/${encodeURIComponent(r.id)}`);
          } catch (err) {
            toast(err.message);
            return;
          }
          await refresh();
        } }, "Delete"));
      }
      if (managed) box.append(managed);
      return box;
    }
    const create = h("button", { type: "button", id: `new-${meta.one}`, onclick: () => openForm(null) }, `New ${meta.one}`);
    replace(ctx.root, h("div", { class: "page-head" }, h("h1", {}, meta.title), create), top, h("section", { class: "panel" }, list));
    await refresh();
    if (ctx.arg === "new") await openForm(null);
  };
}

export const keysPage = entitiesPage("keys");
export const teamsPage = entitiesPage("teams");
export const customersPage = entitiesPage("customers");
