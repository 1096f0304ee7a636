// Metrics: one chart per `metrics_widgets` entry of type CHART / line, fetched from the
// widget's endpointUrl?projectIds=a,b&start=ISO&end=ISO every 30 s.

import { get } from "../api.js";
import { LineChart, colorFor, dashFor } from "../chart.js";
import { h, note, setText } from "../dom.js";
import { parseTime } from "../format.js";
import { modelName } from "../state.js";

const REFRESH_MS = 30000;
const DEFAULT_MODELS = 5;
const RANGES = [
  ["1h", 3600],
  ["6h", 6 * 3600],
  ["24h", 24 * 3600],
  ["7d", 7 * 86400],
  ["30d", 30 * 86400],
];

export const title = "Metrics";

// Kept across visits of the page (not across reloads).
const remembered = { models: null, range: "24h", series: new Map(), filters: new Map() };

function isLineChart(widget) {
  return widget?.type === "CHART" && (widget.nativeConfiguration?.type ?? "line") === "line";
}

export function mount(root, scope) {
  const { ctx } = scope;
  let models = new Map();
  let order = []; // model ids: leaderboard order, then the others
  const charts = [];

  const rangeButtons = RANGES.map(([name]) =>
    h(
      "button",
      {
        type: "button",
        class: "seg",
        "data-testid": `range-${name}`,
        "aria-pressed": String(name === remembered.range),
        on: {
          click: () => {
            remembered.range = name;
            for (const b of rangeButtons) b.setAttribute("aria-pressed", String(b.textContent === name));
            refresh();
          },
        },
      },
      name,
    ),
  );
  const pickerSummary = h("summary", { class: "picker-summary", "data-testid": "model-picker-summary" }, "Models");
  const pickerList = h("div", { class: "picker-list" });
  const pickerButtons = h(
    "div",
    { class: "picker-actions" },
    h("button", { type: "button", class: "btn small", on: { click: () => choose(order.slice(0, DEFAULT_MODELS)) } }, "Top 5"),
    h("button", { type: "button", class: "btn small", on: { click: () => choose(order) } }, "All"),
    h("button", { type: "button", class: "btn small", on: { click: () => choose([]) } }, "None"),
  );
  const picker = h(
    "details",
    { class: "picker", "data-testid": "model-picker" },
    pickerSummary,
    h("div", { class: "picker-body" }, pickerButtons, pickerList),
  );
  const chartsBox = h("div", { class: "charts" });
  const closePicker = (event) => {
    if (picker.open && !picker.contains(event.target)) picker.open = false;
  };
  document.addEventListener("click", closePicker);
  scope.onCleanup(() => document.removeEventListener("click", closePicker));

  root.append(
    h(
      "div",
      { class: "page-head" },
      h("h1", {}, title),
      h(
        "div",
        { class: "page-tools" },
        picker,
        h("div", { class: "segmented", role: "group", "aria-label": "Time range", "data-testid": "range" }, rangeButtons),
      ),
    ),
    chartsBox,
  );

  function selected() {
    return (remembered.models ?? []).filter((id) => models.has(id) || order.includes(id));
  }

  function choose(ids) {
    remembered.models = [...ids];
    renderPicker();
    refresh();
  }

  function renderPicker() {
    const chosen = new Set(remembered.models ?? []);
    setText(pickerSummary, `Models (${[...chosen].filter((id) => order.includes(id)).length}/${order.length})`);
    const boxes = order.map((id, index) => {
      const box = h("input", {
        type: "checkbox",
        value: id,
        checked: chosen.has(id),
        "data-testid": "model-option",
        on: {
          change: (event) => {
            const set = new Set(remembered.models ?? []);
            if (event.target.checked) set.add(id);
            else set.delete(id);
            remembered.models = order.filter((m) => set.has(m));
            renderPicker();
            refresh();
          },
        },
      });
      return h(
        "label",
        { class: "picker-item" },
        box,
        h("span", { class: "swatch", style: `background:${colorFor(index)}` }),
        h("span", {}, modelName(models, id)),
        h("span", { class: "model-id" }, id),
      );
    });
    pickerList.replaceChildren(...boxes);
  }

  async function loadModels(signal) {
    const [map, board] = await Promise.all([
      ctx.models(),
      get("/reports/leaderboard", null, { signal }).catch(() => []),
    ]);
    models = map;
    const ranked = (Array.isArray(board) ? board : []).map((row) => String(row.model_id));
    const rest = [...map.keys()].filter((id) => !ranked.includes(id)).sort();
    const next = [...ranked, ...rest];
    const changed = next.join("\u0000") !== order.join("\u0000");
    order = next;
    if (remembered.models === null && order.length) remembered.models = order.slice(0, DEFAULT_MODELS);
    if (changed) renderPicker();
  }

  function buildCharts(widgets) {
    const list = [...widgets].sort((a, b) => (a.order ?? 0) - (b.order ?? 0));
    if (!list.length) {
      chartsBox.append(note("The report schema defines no metrics widgets.", "metrics-empty"));
      return;
    }
    for (const widget of list) {
      const head = h("div", { class: "card-head" }, h("h2", {}, widget.displayName || `Widget ${widget.id}`));
      const card = h("section", { class: "card chart-card", "data-testid": "widget", "data-widget-id": String(widget.id) }, head);
      if (widget.tooltip) card.append(h("p", { class: "muted small" }, widget.tooltip));
      chartsBox.append(card);
      if (!isLineChart(widget)) {
        card.append(note(`Widget type ${widget.type}/${widget.nativeConfiguration?.type ?? "?"} is not shown by this UI.`));
        continue;
      }
      const cfg = widget.nativeConfiguration;
      const entry = { widget, cfg, rows: [], controls: h("div", { class: "card-tools" }) };
      head.append(entry.controls);
      const seriesDefs = Array.isArray(cfg.yAxis?.series) ? cfg.yAxis.series : [];
      if (seriesDefs.length > 1) {
        const key = String(widget.id);
        const current = remembered.series.get(key) ?? seriesDefs[0].name;
        const select = h(
          "select",
          { class: "select", "data-testid": "series-select", "aria-label": "Series" },
          seriesDefs.map((s) => h("option", { value: s.name, selected: s.name === current }, s.label || s.name)),
          h("option", { value: "*", selected: current === "*" }, "All series"),
        );
        select.value = current;
        remembered.series.set(key, current);
        select.addEventListener("change", () => {
          remembered.series.set(key, select.value);
          draw(entry);
        });
        entry.controls.append(select);
      }
      entry.filters = [];
      for (const filter of Array.isArray(cfg.filterConfig) ? cfg.filterConfig : []) {
        if (filter?.type !== "select" || !filter.property) continue;
        const select = h("select", { class: "select", "aria-label": filter.label || filter.property });
        select.addEventListener("change", () => {
          remembered.filters.set(`${widget.id}:${filter.property}`, select.value);
          draw(entry);
        });
        entry.filters.push({ filter, select });
        entry.controls.append(h("label", { class: "inline-field" }, `${filter.label || filter.property} `, select));
      }
      entry.chart = new LineChart(card, {
        yFormat: cfg.yAxis?.format ?? null,
        label: widget.displayName,
        height: 280,
      });
      charts.push(entry);
    }
  }

  function refreshFilterOptions(entry) {
    for (const { filter, select } of entry.filters) {
      const values = [...new Set(entry.rows.map((r) => r[filter.property]).filter((v) => v !== null && v !== undefined))]
        .map(String)
        .sort();
      const key = `${entry.widget.id}:${filter.property}`;
      const current = remembered.filters.get(key) ?? "";
      const signature = values.join("\u0000");
      if (select.dataset.values !== signature) {
        select.replaceChildren(h("option", { value: "" }, "All"), ...values.map((v) => h("option", { value: v }, v)));
        select.dataset.values = signature;
      }
      select.value = values.includes(current) ? current : "";
    }
  }

  function draw(entry) {
    const { widget, cfg, chart } = entry;
    const xName = cfg.xAxis?.name || "performed_at";
    const idProperty = widget.projectIdProperty || "model_id";
    const groupBy = cfg.groupByProperty || null;
    const seriesDefs = Array.isArray(cfg.yAxis?.series) && cfg.yAxis.series.length ? cfg.yAxis.series : [];
    const pick = remembered.series.get(String(widget.id)) ?? seriesDefs[0]?.name;
    const shown = pick === "*" ? seriesDefs : seriesDefs.filter((s) => s.name === pick);
    const activeFilters = entry.filters
      .map(({ filter, select }) => [filter.property, select.value])
      .filter(([, value]) => value !== "");
    const rows = entry.rows.filter((row) => activeFilters.every(([p, v]) => String(row[p]) === v));

    const xsSet = new Set();
    const points = []; // [lineKey, x, y]
    const lines = new Map(); // key -> {model, group, series, seriesIndex}
    for (const row of rows) {
      const at = parseTime(row[xName]);
      if (!at) continue;
      const x = Math.floor(at.getTime() / 1000);
      const model = String(row[idProperty] ?? "");
      const group = groupBy ? String(row[groupBy] ?? "") : "";
      shown.forEach((series, seriesIndex) => {
        const raw = row[series.name];
        const y = raw === null || raw === undefined || raw === "" ? null : Number(raw);
        const key = `${model}\u0000${group}\u0000${series.name}`;
        if (!lines.has(key)) lines.set(key, { model, group, series, seriesIndex });
        xsSet.add(x);
        points.push([key, x, Number.isFinite(y) ? y : null]);
      });
    }
    const xs = [...xsSet].sort((a, b) => a - b);
    const xIndex = new Map(xs.map((x, i) => [x, i]));
    const keys = [...lines.keys()].sort((a, b) => {
      const la = lines.get(a);
      const lb = lines.get(b);
      return order.indexOf(la.model) - order.indexOf(lb.model) || la.group.localeCompare(lb.group) || la.seriesIndex - lb.seriesIndex;
    });
    const values = new Map(keys.map((k) => [k, new Array(xs.length).fill(null)]));
    for (const [key, x, y] of points) values.get(key)[xIndex.get(x)] = y;
    const groups = [...new Set([...lines.values()].map((l) => l.group))].sort();
    const series = keys.map((key) => {
      const line = lines.get(key);
      const parts = [modelName(models, line.model)];
      if (line.group) parts.push(line.group);
      if (shown.length > 1) parts.push(line.series.label || line.series.name);
      const modelIndex = order.indexOf(line.model);
      const color = shown.length === 1 && !groupBy && line.series.color && keys.length === 1 ? line.series.color : colorFor(modelIndex < 0 ? 0 : modelIndex);
      const dash = shown.length > 1 ? dashFor(line.seriesIndex) : groupBy ? dashFor(groups.indexOf(line.group)) : undefined;
      return { label: parts.join(" · "), color, dash, values: values.get(key) };
    });
    const emptyText = selected().length ? "No data in this time range yet" : "Select at least one model";
    chart.update(xs, series, { emptyText });
  }

  async function loadWidget(entry, ids, start, end, signal) {
    if (!ids.length) {
      entry.rows = [];
    } else {
      const rows = await get(
        entry.widget.endpointUrl,
        { projectIds: ids.join(","), start: start.toISOString(), end: end.toISOString() },
        { signal },
      );
      entry.rows = Array.isArray(rows) ? rows : [];
    }
    refreshFilterOptions(entry);
    draw(entry);
  }

  let built = false;

  async function load(signal) {
    const [schema] = await Promise.all([ctx.schema(), loadModels(signal)]);
    if (!built) {
      buildCharts(Array.isArray(schema?.metrics_widgets) ? schema.metrics_widgets : []);
      built = true;
    }
    const ids = selected();
    const seconds = RANGES.find(([name]) => name === remembered.range)?.[1] ?? 86400;
    const end = new Date();
    const start = new Date(end.getTime() - seconds * 1000);
    const results = await Promise.allSettled(charts.map((entry) => loadWidget(entry, ids, start, end, signal)));
    results.forEach((result, index) => {
      const source = `chart ${charts[index].widget.displayName || charts[index].widget.id}`;
      if (result.status === "rejected") scope.report(source, result.reason);
      else scope.ok(source);
    });
  }

  const refresh = scope.poll("metrics", load, REFRESH_MS);
  scope.onCleanup(() => {
    for (const entry of charts) entry.chart.destroy();
  });
}
