// Sessions: cost and requests per agent session (X-Claude-Code-Session-Id, Codex session-id).
import { get } from "../api.js";
import { ago, h, num, table, usd, when } from "../dom.js";
import { replace, section } from "../forms.js";

export async function sessionsPage(ctx) {
  const doc = await get("/dashboard/sessions?limit=200");
  replace(ctx.root, h("h1", {}, "Sessions"),
    h("p", { class: "muted" }, "One row per agent session, most recently active first. Open one to see its requests."),
    section("Agent sessions", table([
      { title: "Session", cell: (s) => h("span", { class: "mono" }, s.session_id) },
      { title: "Key", cell: (s) => s.key_name || "—" },
      { title: "Client", cell: (s) => s.client || "—" },
      { title: "Started", cell: (s) => when(s.first_at) },
      { title: "Last request", cell: (s) => ago(s.last_at) },
      { title: "Requests", num: true, cell: (s) => num(s.requests) },
      { title: "Errors", num: true, cell: (s) => num(s.errors) },
      { title: "Tokens in/out", num: true, cell: (s) => `${num(s.tokens.input + s.tokens.cache_read)} / ${num(s.tokens.output)}` },
      { title: "Cost", num: true, cell: (s) => usd(s.cost) },
    ], doc.data, {
      label: "Agent sessions",
      empty: "No agent sessions yet: Claude Code and Codex send a session id with every request.",
      onRow: (s) => { location.hash = `#/logs?session=${encodeURIComponent(s.session_id)}`; },
    })));
}
