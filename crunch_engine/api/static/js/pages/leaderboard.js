// Leaderboard: columns from /reports/schema, rows from /reports/leaderboard every 5 s,
// updated in place (rows keyed by model_id, cells rewritten only when they change).

import { get } from "../api.js";
import { flash, h, note, setText, tableWrap } from "../dom.js";
import { formatTime, formatValue } from "../format.js";
import { modelName } from "../state.js";

const REFRESH_MS = 5000;

export const title = "Leaderboard";

function isLive(value) {
  if (value === true) return true;
  return typeof value === "string" && value.toLowerCase() === "active";
}

function isModelColumn(column) {
  return column.type === "PROJECT" || column.type === "MODEL";
}

function rankChange(change) {
  const n = Number(change);
  if (change === null || change === undefined || !Number.isFinite(n) || n === 0) {
    return { text: "–", cls: "rank-change same", title: "no change" };
  }
  if (n > 0) return { text: `▲${n}`, cls: "rank-change up", title: `up ${n}` };
  return { text: `▼${-n}`, cls: "rank-change down", title: `down ${-n}` };
}

export function mount(root, scope) {
  const { ctx } = scope;
  let boardKey = null;
  let columns = null;
  let hasRankColumn = false;
  const rowsById = new Map();

  const keySelect = h("select", { class: "select", "data-testid": "lb-key", "aria-label": "Leaderboard" });
  const keyLabel = h("label", { class: "inline-field", hidden: true }, "Board ", keySelect);
  const updated = h("span", { class: "muted", "data-testid": "lb-updated" });
  const thead = h("thead");
  const tbody = h("tbody");
  const table = h("table", { class: "table leaderboard", "data-testid": "leaderboard-table" }, thead, tbody);
  const empty = note("No leaderboard yet: the first snapshot appears once predictions are scored.", "lb-empty");
  empty.hidden = true;

  root.append(
    h("div", { class: "page-head" }, h("h1", {}, title), h("div", { class: "page-tools" }, keyLabel, updated)),
    h("div", { class: "card" }, tableWrap(table), empty),
  );

  keySelect.addEventListener("change", () => {
    boardKey = keySelect.value || null;
    for (const row of rowsById.values()) row.tr.remove();
    rowsById.clear();
    refresh();
  });

  scope.run("info", async () => {
    const info = await ctx.info();
    const keys = Array.isArray(info?.leaderboards) ? info.leaderboards : [];
    if (keys.length > 1) {
      keySelect.replaceChildren(...keys.map((k) => h("option", { value: k }, k)));
      boardKey = boardKey ?? keys[0];
      keySelect.value = boardKey;
      keyLabel.hidden = false;
    }
  });

  function buildHead(schemaColumns) {
    columns = [...schemaColumns].sort((a, b) => (a.order ?? 0) - (b.order ?? 0));
    hasRankColumn = columns.some((c) => c.property === "rank");
    const cells = [];
    if (!hasRankColumn) cells.push(h("th", { class: "num rank-col", scope: "col" }, "#"));
    for (const column of columns) {
      const numeric = !isModelColumn(column) && column.type !== "USERNAME";
      cells.push(
        h(
          "th",
          { scope: "col", class: numeric ? "num" : null, title: column.tooltip || null, "data-property": column.property },
          column.displayName || column.property,
        ),
      );
    }
    thead.replaceChildren(h("tr", {}, cells));
  }

  function createRow(modelId) {
    const tr = h("tr", { "data-testid": "lb-row", "data-model-id": modelId });
    const cells = [];
    let rank = null;
    if (!hasRankColumn) {
      rank = rankCell();
      cells.push(rank);
    }
    for (const column of columns) {
      if (isModelColumn(column)) cells.push(modelCell());
      else if (column.property === "rank") cells.push((rank = rankCell()));
      else cells.push({ td: h("td", { class: column.type === "USERNAME" ? "" : "num" }) });
    }
    for (const cell of cells) tr.append(cell.td);
    return { tr, cells, fresh: true };
  }

  function rankCell() {
    const value = h("span", { class: "rank" });
    const change = h("span", { class: "rank-change same", "data-testid": "lb-rank-change" });
    return { td: h("td", { class: "num rank-col" }, value, " ", change), value, change, kind: "rank" };
  }

  function modelCell() {
    const pulse = h("span", { class: "pulse", "aria-hidden": "true" });
    const name = h("span", { class: "model-name", "data-testid": "lb-model-name" });
    const id = h("span", { class: "model-id" });
    const td = h("td", { class: "model-cell" }, pulse, h("span", { class: "model-text" }, name, id));
    return { td, pulse, name, id, kind: "model" };
  }

  function fill(entry, row, models) {
    const { cells } = entry;
    let i = 0;
    const changed = [];
    const put = (el, text) => {
      if (setText(el, text) && !entry.fresh) changed.push(el);
    };
    const fillRank = (cell) => {
      put(cell.value, formatValue(row.rank, "integer"));
      const change = rankChange(row.rank_change);
      setText(cell.change, change.text);
      cell.change.className = change.cls;
      cell.change.title = change.title;
    };
    if (!hasRankColumn) fillRank(cells[i++]);
    for (const column of columns) {
      const cell = cells[i++];
      if (cell.kind === "model") {
        const id = String(row[column.property] ?? row.model_id ?? "");
        put(cell.name, modelName(models, id, row));
        setText(cell.id, id);
        const statusProperty = column.nativeConfiguration?.statusProperty;
        const status = statusProperty ? row[statusProperty] : undefined;
        const live = isLive(status);
        cell.pulse.classList.toggle("live", live);
        cell.pulse.title = statusProperty ? `${statusProperty}: ${status ?? "unknown"}` : "";
        cell.pulse.hidden = !statusProperty;
      } else if (cell.kind === "rank") {
        fillRank(cell);
      } else if (column.type === "USERNAME") {
        const model = models.get(String(row.model_id));
        put(cell.td, row[column.property] || model?.cruncher_name || row.cruncher_name || "—");
      } else {
        put(cell.td, formatValue(row[column.property], column.format));
      }
    }
    for (const el of changed) flash(el);
    entry.fresh = false;
  }

  async function load(signal) {
    const [schema, models, rows] = await Promise.all([
      ctx.schema(),
      ctx.models().catch(() => new Map()),
      get("/reports/leaderboard", { key: boardKey }, { signal }),
    ]);
    if (!columns) buildHead(schema?.leaderboard_columns ?? []);
    const list = Array.isArray(rows) ? rows : [];
    const seen = new Set();
    list.forEach((row, index) => {
      const id = String(row.model_id);
      seen.add(id);
      let entry = rowsById.get(id);
      if (!entry) {
        entry = createRow(id);
        rowsById.set(id, entry);
      }
      fill(entry, row, models);
      // Move only the rows that are out of place (no re-render: no flicker).
      if (tbody.children[index] !== entry.tr) tbody.insertBefore(entry.tr, tbody.children[index] ?? null);
    });
    for (const [id, entry] of rowsById) {
      if (!seen.has(id)) {
        entry.tr.remove();
        rowsById.delete(id);
      }
    }
    empty.hidden = list.length > 0;
    setText(updated, list.length ? `snapshot ${formatTime(list[0].updated_at, { short: true })}` : "");
    updated.title = list.length ? String(list[0].updated_at ?? "") : "";
  }

  const refresh = scope.poll("leaderboard", load, REFRESH_MS);
}
