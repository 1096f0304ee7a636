// Processes and logs: the supervisor's workers (/control/processes), start/stop/restart
// when control is enabled, and a live log view per process or merged.
// Logs: /control/logs then the SSE stream; when reads need the key (EventSource cannot
// send headers) /control/logs is polled with the X-API-Key header every 2 s.

import { buildUrl, get, getKey, post } from "../api.js";
import { h, note, replaceChildren, setText, syncRows, tableWrap } from "../dom.js";
import { EMPTY, formatAge, formatBytes, formatDuration, formatTime, stripAnsi } from "../format.js";
import { stateBadge } from "./models.js";

const PROCESSES_REFRESH_MS = 5000;
const LOG_POLL_MS = 2000;
const LOG_LIMIT = 200;
const MAX_LINES = 2000;
const FAILED_STATES = new Set(["backoff", "exited", "fatal"]);

export const title = "Processes";

const remembered = { process: "", follow: true };

function isFailed(info) {
  if (info.state === "fatal" || info.state === "backoff") return true;
  return FAILED_STATES.has(info.state) && info.last_exit_code !== null && info.last_exit_code !== undefined && info.last_exit_code !== 0;
}

function actionsFor(state) {
  const running = ["running", "starting", "backoff"].includes(state);
  return {
    start: !running && state !== "stopping",
    stop: running,
    restart: state !== "stopping",
  };
}

export function mount(root, scope) {
  const { ctx } = scope;
  const processes = new Map(); // name -> ProcessInfo
  let controlEnabled = false;
  let stopLogs = () => {};
  const busy = new Set();

  // ---- processes table -------------------------------------------------------------
  const gate = h("div", { class: "status-line" });
  const headRow = h("tr");
  const tbody = h("tbody");
  const table = h("table", { class: "table", "data-testid": "processes-table" }, h("thead", {}, headRow), tbody);
  const procEmpty = note("No worker runs in this API process.", "processes-empty");
  procEmpty.hidden = true;
  const procCard = h("div", { class: "card" }, tableWrap(table), procEmpty);

  // ---- logs ------------------------------------------------------------------------
  const logSelect = h("select", { class: "select", "data-testid": "log-process", "aria-label": "Process" }, h("option", { value: "" }, "All processes"));
  const follow = h("input", { type: "checkbox", checked: remembered.follow, "data-testid": "log-follow" });
  const modeBadge = h("span", { class: "badge muted", "data-testid": "log-mode" }, "…");
  const clearButton = h("button", { type: "button", class: "btn small" }, "Clear");
  const view = h("div", { class: "logview", "data-testid": "log-view", role: "log", "aria-live": "off", tabindex: "0" });
  const seen = new Set();
  const logCard = h(
    "section",
    { class: "card", "data-testid": "logs" },
    h(
      "div",
      { class: "card-head" },
      h("h2", {}, "Logs"),
      h(
        "div",
        { class: "card-tools" },
        logSelect,
        h("label", { class: "inline-field" }, follow, " follow"),
        clearButton,
        modeBadge,
      ),
    ),
    view,
  );

  root.append(h("div", { class: "page-head" }, h("h1", {}, title)), gate, procCard, logCard);

  follow.addEventListener("change", () => {
    remembered.follow = follow.checked;
    if (follow.checked) view.scrollTop = view.scrollHeight;
  });
  clearButton.addEventListener("click", () => {
    view.replaceChildren();
    // keep `seen`: cleared lines do not come back with the next poll
  });
  logSelect.addEventListener("change", () => {
    remembered.process = logSelect.value;
    startLogs();
  });

  // ---- rendering -------------------------------------------------------------------
  function renderHead() {
    const names = ["Name", "State", "PID", "Uptime", "Restarts", "Exit code", "CPU %", "RSS", "Heartbeat", ""];
    if (controlEnabled) names.push("Actions");
    const signature = names.join("|");
    if (headRow.dataset.signature === signature) return;
    headRow.dataset.signature = signature;
    headRow.replaceChildren(
      ...names.map((t, i) => h("th", { scope: "col", class: [2, 3, 4, 5, 6, 7].includes(i) ? "num" : null }, t)),
    );
  }

  function actionButtons(info) {
    const allowed = actionsFor(info.state);
    return ["start", "stop", "restart"].map((action) =>
      h(
        "button",
        {
          type: "button",
          class: `btn small ${action === "stop" ? "danger" : ""}`,
          "data-testid": `action-${action}`,
          "data-process": info.name,
          disabled: !allowed[action] || busy.has(info.name),
          on: { click: () => act(info.name, action) },
        },
        action,
      ),
    );
  }

  function processRows(info) {
    const failed = isFailed(info);
    const cells = [
      h("td", {}, h("strong", {}, info.name)),
      h("td", {}, stateBadge(info.state)),
      h("td", { class: "num mono" }, info.pid ?? EMPTY),
      h("td", { class: "num", title: info.started_at ? `started ${formatTime(info.started_at)}` : null }, info.uptime_seconds === null || info.uptime_seconds === undefined ? EMPTY : formatDuration(info.uptime_seconds)),
      h("td", { class: "num" }, String(info.restarts ?? 0)),
      h("td", { class: `num${info.last_exit_code ? " bad-text" : ""}` }, info.last_exit_code ?? EMPTY),
      h("td", { class: "num" }, typeof info.cpu_percent === "number" ? info.cpu_percent.toFixed(1) : EMPTY),
      h("td", { class: "num" }, formatBytes(info.rss_bytes)),
      h("td", { title: info.heartbeat_at || null }, info.heartbeat_at ? formatAge(info.heartbeat_at) : EMPTY),
      h(
        "td",
        {},
        h(
          "button",
          { type: "button", class: "btn small link", "data-testid": "show-logs", on: { click: () => showLogsOf(info.name) } },
          "logs",
        ),
      ),
    ];
    if (controlEnabled) cells.push(h("td", { class: "actions" }, actionButtons(info)));
    return h("tr", { "data-testid": "process-row", "data-process": info.name, "data-state": info.state, class: failed ? "failed" : null }, cells);
  }

  function stderrRow(info) {
    const pre = h("pre", { class: "stderr-lines", "data-testid": "last-stderr" });
    pre.textContent = (info.last_stderr ?? []).map(stripAnsi).join("\n");
    return h(
      "tr",
      { class: "detail-row" },
      h("td", { colspan: String(controlEnabled ? 11 : 10) }, h("div", { class: "muted small" }, `last stderr of ${info.name}`), pre),
    );
  }

  function renderProcesses() {
    renderHead();
    const items = [];
    for (const info of processes.values()) {
      items.push({ key: `p:${info.name}`, build: () => processRows(info) });
      if (isFailed(info) && info.last_stderr?.length) items.push({ key: `e:${info.name}`, build: () => stderrRow(info) });
    }
    syncRows(tbody, items, (x) => x.key, (x) => x.build());
    procEmpty.hidden = processes.size > 0;
    const names = [...processes.keys()];
    const signature = names.join("|");
    if (logSelect.dataset.signature !== signature) {
      logSelect.replaceChildren(h("option", { value: "" }, "All processes"), ...names.map((n) => h("option", { value: n }, n)));
      logSelect.dataset.signature = signature;
      logSelect.value = names.includes(remembered.process) ? remembered.process : "";
    }
  }

  function updateProcess(info) {
    if (!info || typeof info.name !== "string") return;
    processes.set(info.name, info);
    renderProcesses();
  }

  function showLogsOf(name) {
    logSelect.value = name;
    remembered.process = name;
    startLogs();
    logCard.scrollIntoView({ behavior: "smooth", block: "start" });
  }

  async function act(name, action) {
    if (!getKey()) {
      scope.report("control", "enter the API key (at the top) to start, stop or restart workers");
      return;
    }
    busy.add(name);
    renderProcesses();
    try {
      const info = await post(`/control/processes/${encodeURIComponent(name)}/${action}`, { signal: scope.signal });
      scope.ok("control");
      if (scope.alive) updateProcess(info);
    } catch (error) {
      scope.report(`${action} ${name}`, error);
    } finally {
      busy.delete(name);
      if (scope.alive) renderProcesses();
    }
  }

  // ---- logs --------------------------------------------------------------------------
  function lineEl(line) {
    const raw = stripAnsi(line.line);
    const text = h("span", { class: "log-text" });
    text.textContent = raw;
    const level = /\b(ERROR|CRITICAL|FATAL|Traceback)\b/.test(raw) ? "lvl-error" : /\bWARN(ING)?\b/.test(raw) ? "lvl-warn" : "";
    const el = h(
      "div",
      {
        class: `logline ${level}`,
        "data-testid": "log-line",
        "data-process": String(line.process ?? ""),
        "data-stream": String(line.stream ?? ""),
      },
      h("span", { class: "log-ts", title: String(line.ts ?? "") }, formatTime(line.ts, { short: true })),
      h("span", { class: "log-proc" }, String(line.process ?? "")),
      text,
    );
    return el;
  }

  function addLines(lines) {
    if (!Array.isArray(lines) || !lines.length) return;
    const wanted = remembered.process;
    const nearBottom = view.scrollHeight - view.scrollTop - view.clientHeight < 40;
    const fragment = document.createDocumentFragment();
    for (const line of lines) {
      if (!line || (wanted && line.process !== wanted)) continue;
      const key = `${line.process}\u0000${line.seq}\u0000${line.ts}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const el = lineEl(line);
      el.dataset.key = key;
      fragment.append(el);
    }
    view.append(fragment);
    while (view.childElementCount > MAX_LINES) {
      seen.delete(view.firstElementChild.dataset.key);
      view.firstElementChild.remove();
    }
    if (seen.size > MAX_LINES * 4) {
      // lines cleared by the user: forget the oldest keys
      const keep = new Set([...view.children].map((el) => el.dataset.key));
      for (const key of seen) if (!keep.has(key)) seen.delete(key);
    }
    if (follow.checked && nearBottom) view.scrollTop = view.scrollHeight;
  }

  function setMode(mode, text) {
    modeBadge.dataset.mode = mode;
    modeBadge.className = `badge ${mode === "stream" ? "ok" : mode === "polling" ? "warn" : "muted"}`;
    setText(modeBadge, text);
  }

  async function fetchLogs(signal) {
    const lines = await get("/control/logs", { process: remembered.process || null, limit: LOG_LIMIT }, { signal });
    if (scope.alive) addLines(lines);
  }

  function startPolling() {
    setMode("polling", `polling every ${LOG_POLL_MS / 1000} s`);
    let running = false;
    const controller = new AbortController();
    const abort = () => controller.abort();
    scope.signal.addEventListener("abort", abort);
    const tick = async () => {
      if (running || document.hidden || !scope.alive) return;
      running = true;
      try {
        await fetchLogs(controller.signal);
        scope.ok("logs");
      } catch (error) {
        scope.report("logs", error);
      } finally {
        running = false;
      }
    };
    tick();
    const timer = setInterval(tick, LOG_POLL_MS);
    return () => {
      clearInterval(timer);
      controller.abort();
      scope.signal.removeEventListener("abort", abort);
    };
  }

  function startStream() {
    const controller = new AbortController();
    let source = null;
    let fellBack = null;
    let stopped = false;
    const url = buildUrl("/control/logs/stream", { process: remembered.process || null });
    setMode("connecting", "connecting…");
    const backfill = () =>
      fetchLogs(controller.signal).then(
        () => scope.ok("logs"),
        (error) => {
          scope.report("logs", error);
        },
      );
    backfill().then(() => {
      if (stopped) return;
      source = new EventSource(url);
      let dropped = false;
      source.addEventListener("open", () => {
        setMode("stream", "live stream");
        scope.ok("log stream");
        if (dropped) backfill(); // fill the gap of the disconnection
        dropped = false;
      });
      source.addEventListener("log", (event) => {
        try {
          addLines([JSON.parse(event.data)]);
        } catch {
          // a malformed event is skipped
        }
      });
      source.addEventListener("state", (event) => {
        try {
          updateProcess(JSON.parse(event.data));
        } catch {
          // a malformed event is skipped
        }
      });
      source.addEventListener("error", () => {
        if (stopped) return;
        dropped = true;
        if (source.readyState === EventSource.CLOSED) {
          // The browser gave up (an HTTP error): poll instead.
          source.close();
          scope.report("log stream", "the log stream was refused; polling /control/logs instead");
          fellBack = startPolling();
        } else {
          setMode("connecting", "reconnecting…");
        }
      });
    });
    return () => {
      stopped = true;
      controller.abort();
      if (source) source.close();
      if (fellBack) fellBack();
    };
  }

  function startLogs() {
    stopLogs();
    view.replaceChildren();
    seen.clear();
    const info = ctx.infoValue;
    const keyed = Boolean(info?.control?.requires_key);
    stopLogs = keyed || typeof EventSource !== "function" ? startPolling() : startStream();
  }

  scope.onCleanup(() => stopLogs());

  // ---- start -------------------------------------------------------------------------
  async function loadProcesses(signal) {
    const list = await get("/control/processes", null, { signal });
    const names = new Set();
    for (const info of Array.isArray(list) ? list : []) {
      names.add(info.name);
      processes.set(info.name, info);
    }
    for (const name of [...processes.keys()]) if (!names.has(name)) processes.delete(name);
    renderProcesses();
  }

  scope.run("processes", async (signal) => {
    const info = await ctx.info();
    controlEnabled = Boolean(info?.control?.enabled);
    if (info?.control?.available === false) {
      replaceChildren(gate, note("This API runs without workers: there is no process and no log to show.", "control-note"));
      procCard.hidden = true;
      logCard.hidden = true;
      return;
    }
    if (!(await ctx.controlReadable())) {
      replaceChildren(
        gate,
        note("Processes and logs come from the control API, which needs the API key: enter it in the key field at the top.", "control-note"),
      );
      procCard.hidden = true;
      logCard.hidden = true;
      return;
    }
    try {
      await loadProcesses(signal);
    } catch (error) {
      if (error?.isAuth) {
        replaceChildren(gate, note(`The control API answered ${error.status} (${error.message}). Check the API key.`, "control-note"));
        procCard.hidden = true;
        logCard.hidden = true;
        return;
      }
      throw error;
    }
    scope.poll("processes", loadProcesses, PROCESSES_REFRESH_MS);
    startLogs();
  });
}
