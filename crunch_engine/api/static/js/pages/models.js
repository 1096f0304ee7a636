// Models: /control/models/health joined with /reports/models (names, crunchers).

import { get } from "../api.js";
import { h, note, replaceChildren, syncRows, tableWrap } from "../dom.js";
import { EMPTY, formatAge, formatMs, formatTime } from "../format.js";

const REFRESH_MS = 5000;

export const title = "Models";

const STATE_CLASS = {
  RUNNING: "ok",
  ACTIVE: "ok",
  STARTING: "warn",
  PENDING: "warn",
  STOPPING: "warn",
  BACKOFF: "warn",
  STOPPED: "muted",
  EXITED: "muted",
  FAILED: "bad",
  FATAL: "bad",
  CRASHED: "bad",
};

export function stateBadge(state) {
  const text = String(state ?? "unknown");
  const cls = STATE_CLASS[text.toUpperCase()] ?? (/(fail|fatal|error|crash)/i.test(text) ? "bad" : "muted");
  return h("span", { class: `badge ${cls}`, "data-testid": "state" }, text);
}

function counts(map) {
  const entries = Object.entries(map ?? {}).filter(([, n]) => Number(n) > 0);
  if (!entries.length) return EMPTY;
  return h(
    "span",
    { class: "counts" },
    entries.map(([status, n]) =>
      h("span", { class: `count ${status === "SUCCESS" ? "ok" : "bad"}`, title: status }, `${status} ${n}`),
    ),
  );
}

const HEAD = [
  ["Model"],
  ["Cruncher"],
  ["State"],
  ["Deployment"],
  ["p50", "num"],
  ["p95", "num"],
  ["Calls"],
  ["Consec. failures", "num"],
  ["Restarts", "num"],
  ["Last error"],
  ["Updated"],
];

export function mount(root, scope) {
  const { ctx } = scope;
  const status = h("div", { class: "status-line" });
  const tbody = h("tbody");
  const table = h(
    "table",
    { class: "table", "data-testid": "models-table" },
    h("thead", {}, h("tr", {}, HEAD.map(([t, cls]) => h("th", { scope: "col", class: cls ?? null }, t)))),
    tbody,
  );
  const empty = note("No models yet: they appear once the orchestrator has announced them.", "models-empty");
  empty.hidden = true;
  root.append(h("div", { class: "page-head" }, h("h1", {}, title)), status, h("div", { class: "card" }, tableWrap(table), empty));

  function row({ id, model, item }) {
    return h(
      "tr",
      { "data-testid": "model-row", "data-model-id": id },
      h(
        "td",
        { class: "model-cell" },
        h(
          "span",
          { class: "model-text" },
          h("span", { class: "model-name" }, model.model_name || item?.model_name || id),
          h("span", { class: "model-id" }, id),
        ),
      ),
      h("td", {}, model.cruncher_name || EMPTY),
      h("td", {}, item ? stateBadge(item.state) : EMPTY),
      h("td", { class: "mono" }, item?.deployment_id || model.deployment_id || EMPTY),
      h("td", { class: "num" }, item ? formatMs(item.latency_p50_ms) : EMPTY),
      h("td", { class: "num" }, item ? formatMs(item.latency_p95_ms) : EMPTY),
      h("td", {}, item ? counts(item.counts) : EMPTY),
      h("td", { class: `num${item?.consecutive_failures > 0 ? " bad-text" : ""}` }, item ? String(item.consecutive_failures ?? 0) : EMPTY),
      h("td", { class: "num" }, item ? String(item.restarts ?? 0) : EMPTY),
      h(
        "td",
        { class: "error-cell", title: item?.last_error || null },
        item?.last_error
          ? [
              h("span", { class: "error-text" }, item.last_error),
              h("span", { class: "muted small block" }, formatTime(item.last_error_at, { short: true })),
            ]
          : EMPTY,
      ),
      h("td", { title: item?.updated_at || null }, item?.updated_at ? formatAge(item.updated_at) : EMPTY),
    );
  }

  async function load(signal) {
    const models = new Map(await ctx.models());
    let health = null;
    let message = null;
    if (!(await ctx.controlReadable())) {
      message = "Model health comes from the control API, which needs the API key: enter it in the key field at the top.";
    } else {
      try {
        const list = await get("/control/models/health", null, { signal });
        health = new Map((Array.isArray(list) ? list : []).map((item) => [String(item.model_id), item]));
      } catch (error) {
        if (!error?.isAuth) throw error;
        message = `Model health is not available: the control API answered ${error.status} (${error.message}).`;
      }
    }
    const ids = [...new Set([...models.keys(), ...(health ? health.keys() : [])])];
    const items = ids.map((id) => ({ id, model: models.get(id) ?? {}, item: health?.get(id) }));
    replaceChildren(status, message ? note(message, "control-note") : null);
    syncRows(tbody, items, (x) => x.id, row);
    empty.hidden = items.length > 0;
  }

  scope.poll("models", load, REFRESH_MS);
}
