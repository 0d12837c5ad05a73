// Budgets: every key's budgets (its own, provider, team, customer) and whether it can
// start a request now; reset a window or top it up once (recorded with who did it).
import { api, get } from "../api.js";
import { meter } from "../charts.js";
import { badge, h, table, toast, usd, when } from "../dom.js";
import { Form, replace, section } from "../forms.js";

const label = (b) => `${b.owner || b.scope} · ${b.budget_id.split("/").pop()}`;

function actions(b, ui) {
  const path = `/budgets/${encodeURI(b.budget_id)}`;
  const topUp = h("button", { type: "button", class: "ghost", "aria-label": `Top up ${label(b)}`,
    onclick: () => ui.open(b, path) }, "Top up");
  const reset = h("button", { type: "button", class: "ghost", "aria-label": `Reset ${label(b)}`,
    onclick: async () => {
      if (!confirm(`Reset ${label(b)}? Its spend in this window goes back to $0.`)) return;
      await api("POST", `${path}/reset`, { actor: "dashboard" });
      toast(`Reset ${label(b)}`);
      await ui.reload();
    } }, "Reset");
  return h("div", { class: "actions" }, topUp, reset);
}

function keyPanel(k, ui) {
  const status = k.can_request ? badge("can make a request now", "ok") : badge("refused now", "bad");
  return h("section", { class: "panel", "data-key": k.name },
    h("div", { class: "page-head" }, h("h2", {}, k.name, " ", h("span", { class: "muted small mono" }, k.key_hint)), status),
    k.blocked_because ? h("p", { class: "error" }, k.blocked_because) : null,
    table([
      { title: "Budget", cell: label },
      { title: "Used", cell: (b) => meter(b) },
      { title: "Spent", num: true, cell: (b) => usd(b.spent) },
      { title: "Reserved", num: true, cell: (b) => usd(b.reserved) },
      { title: "Remaining", num: true, cell: (b) => usd(b.remaining) },
      { title: "Limit", num: true, cell: (b) => usd(Number(b.max_limit) + Number(b.top_up)) },
      { title: "Resets", cell: (b) => (b.resets_at ? when(b.resets_at) : "never") },
      { title: "", cell: (b) => actions(b, ui) },
    ], k.budgets, { empty: "No budgets apply to this key: it is limited only by rate limits.", label: `Budgets of ${k.name}` }),
    h("p", { class: "muted small" }, `${k.in_flight} request(s) in flight`));
}

export async function budgetsPage(ctx) {
  const top = h("div", {});
  const list = h("div", {});
  const stamp = h("span", { class: "live" });
  let editing = false; // live refresh waits while a top-up form is open
  const ui = {
    reload: async () => {
      const keys = await get("/dashboard/budgets");
      if (ctx.stopped) return;
      replace(list, keys.length ? keys.map((k) => keyPanel(k, ui))
        : section("No keys", h("p", {}, "Create one on ", h("a", { href: "#/keys" }, "Keys"), ".")));
      stamp.textContent = `live · updated ${new Date().toLocaleTimeString()}`;
    },
    open: (b, path) => {
      editing = true;
      const close = () => { editing = false; replace(top); };
      const form = new Form({ label: "Top up", cancel: close, onSubmit: async (f) => {
        await api("POST", `${path}/top-up`, { amount: f.value("amount"), actor: "dashboard" });
        close();
        toast(`Topped up ${label(b)}`);
        await ui.reload();
      } });
      form.add(form.field("amount", "Amount (USD), added to the current window only",
        { type: "number", step: "0.01", required: true }));
      replace(top, section(`Top up ${label(b)}`, form.el));
      form.el.querySelector("input").focus();
    },
  };
  replace(ctx.root,
    h("div", { class: "page-head" }, h("h1", {}, "Budgets"), stamp),
    h("p", { class: "muted" }, "Spent is settled cost; reserved is held by requests in flight (their worst case). ",
      "A key can start a request while it is active and every budget over it has money left."),
    top, list);
  await ui.reload();
  ctx.live(async () => { if (!editing) await ui.reload(); });
}
