// The admin API through the dashboard's session: /ui/api/* is /api/* for a logged-in browser.

const csrf = document.querySelector('meta[name="csrf-token"]')?.content || "";

export class ApiError extends Error {
  constructor(status, message, fields) {
    super(message);
    this.status = status;
    this.fields = fields; // {"name": "a name is required", "budgets.0.max_limit": "..."}
  }
}

// Field errors from either shape the API uses: FastAPI's 422 `detail` list (loc + msg),
// or {"error": {"message": ..., "fields": [{"field", "message"}]}} (with `field`/`param`
// on the error itself when given).
export function parseError(status, doc) {
  const fields = {};
  let message = `HTTP ${status}`;
  const detail = doc && doc.detail;
  if (Array.isArray(detail)) {
    const msgs = [];
    for (const d of detail) {
      const loc = (d.loc || []).filter((p) => p !== "body" && p !== "query" && p !== "path");
      // A union's failed branches add their type as a last step: keep the first branch only.
      while (loc.length && /^(str|int|float|bool|decimal|none|constrained-\w+|function-\w+)$/.test(String(loc.at(-1)))) loc.pop();
      const key = loc.join(".") || "_";
      if (fields[key]) continue;
      fields[key] = d.msg;
      msgs.push(loc.length ? `${key}: ${d.msg}` : d.msg);
    }
    message = msgs.join("; ");
  } else if (doc && doc.error) {
    const e = doc.error;
    message = e.message || message;
    // The admin API's 422s carry `fields: [{field, message}]` (admin/errors.py).
    const errs = [e.fields, e.errors, e.details].find(Array.isArray) || [];
    for (const d of errs) {
      const key = Array.isArray(d.loc) ? d.loc.filter((p) => p !== "body").join(".") : d.field || d.param;
      if (key) fields[key] = d.msg || d.message;
    }
    const named = e.field || e.param;
    const m = /^([a-z_][a-z0-9_.]*(?:\[\d+\])?): (.+)$/is.exec(message);
    if (named) fields[named] = message;
    else if (m && !Object.keys(fields).length) fields[m[1]] = m[2];
  } else if (typeof detail === "string") {
    message = detail;
  }
  return new ApiError(status, message, fields);
}

export async function api(method, path, body) {
  const init = { method, credentials: "same-origin", headers: { accept: "application/json" } };
  if (method !== "GET") init.headers["x-csrf-token"] = csrf;
  if (body !== undefined) {
    init.headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const resp = await fetch("/ui/api" + path, init);
  if (resp.status === 401) {
    window.location.assign("/ui/login");
    throw new ApiError(401, "logged out", {});
  }
  if (resp.status === 204) return null;
  const text = await resp.text();
  let doc = null;
  try { doc = text ? JSON.parse(text) : null; } catch { doc = { error: { message: text } }; }
  if (!resp.ok) throw parseError(resp.status, doc);
  return doc;
}

export const get = (path) => api("GET", path);

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== "" && v !== null && v !== undefined) q.set(k, v);
  const s = q.toString();
  return s ? "?" + s : "";
}
