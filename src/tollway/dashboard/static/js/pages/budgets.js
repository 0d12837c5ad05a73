// Budgets: every key's budgets (its own, provider, team, customer) and whether it can
// start a request now.
import { get } from "../api.js";
import { meter } from "../charts.js";
import { badge, h, table, usd, when } from "../dom.js";
import { replace, section } from "../forms.js";

function keyPanel(k) {
  const status = k.can_request ? badge("can make a request now", "ok")
    : badge("refused now", "bad");
  return h("section", { class: "panel", "data-key": k.name },
    h("div", { class: "page-head" }, h("h2", {}, k.name, " ", h("span", { class: "muted small mono" }, k.key_hint)), status),
    k.blocked_because ? h("p", { class: "error" }, k.blocked_because) : null,
    table([
      { title: "Budget", cell: (b) => `${b.owner || b.scope} · ${b.budget_id.split("/").pop()}` },
      { title: "Used", cell: (b) => meter(b) },
      { title: "Spent", num: true, cell: (b) => usd(b.spent) },
      { title: "Reserved", num: true, cell: (b) => usd(b.reserved) },
      { title: "Remaining", num: true, cell: (b) => usd(b.remaining) },
      { title: "Limit", num: true, cell: (b) => usd(Number(b.max_limit) + Number(b.top_up)) },
      { title: "Resets", cell: (b) => (b.resets_at ? when(b.resets_at) : "never") },
    ], k.budgets, { empty: "No budgets apply to this key: it is limited only by rate limits.", label: `Budgets of ${k.name}` }),
    h("p", { class: "muted small" }, `${k.in_flight} request(s) in flight`));
}

export async function budgetsPage(ctx) {
  const load = async () => {
    const keys = await get("/dashboard/budgets");
    if (ctx.stopped) return;
    replace(ctx.root,
      h("div", { class: "page-head" }, h("h1", {}, "Budgets"),
        h("span", { class: "live" }, `live · updated ${new Date().toLocaleTimeString()}`)),
      h("p", { class: "muted" }, "Spent is settled cost; reserved is held by requests in flight (their worst case). ",
        "A key can start a request while it is active and every budget over it has money left."),
      keys.length ? keys.map(keyPanel) : section("No keys", h("p", {}, "Create one on ", h("a", { href: "#/keys" }, "Keys"), ".")));
  };
  await load();
  ctx.live(load);
}
