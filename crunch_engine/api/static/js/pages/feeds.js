// Feeds: what is on the tape (/reports/feeds, staleness per the UI rule) and a live tail
// of one feed (/reports/feeds/tail, every 3 s) with a small price chart.

import { get } from "../api.js";
import { LineChart } from "../chart.js";
import { h, note, setText, syncRows, tableWrap } from "../dom.js";
import { EMPTY, feedStaleness, formatDuration, formatTime, formatValue, parseTime } from "../format.js";

const FEEDS_REFRESH_MS = 10000;
const TAIL_REFRESH_MS = 3000;
const TAIL_LIMIT = 20;
const VALUE_ORDER = ["open", "high", "low", "close", "price", "volume"];

export const title = "Feeds";

const feedKey = (f) => [f.source, f.subject, f.kind, f.granularity].join("|");

let rememberedFeed = null;

function priceOf(values) {
  if (!values || typeof values !== "object") return null;
  for (const name of ["close", "price", "mid", "value"]) {
    const n = Number(values[name]);
    if (values[name] !== null && values[name] !== undefined && Number.isFinite(n)) return n;
  }
  return null;
}

export function mount(root, scope) {
  const { ctx } = scope;
  let feeds = [];
  let selected = rememberedFeed;

  const feedsBody = h("tbody");
  const feedsTable = h(
    "table",
    { class: "table", "data-testid": "feeds-table" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ["Source", "Subject", "Kind", "Granularity", "Records", "Oldest", "Newest", "Watermark", "Age", "Status"].map((t, i) =>
          h("th", { scope: "col", class: i === 4 || i === 8 ? "num" : null }, t),
        ),
      ),
    ),
    feedsBody,
  );
  const feedsEmpty = note("No feed on the tape yet: the market-data worker is starting.", "feeds-empty");
  feedsEmpty.hidden = true;

  const tailTitle = h("h2", { "data-testid": "tail-title" }, "Tail");
  const tailHeadRow = h("tr");
  const tailBody = h("tbody");
  const tailTable = h("table", { class: "table compact", "data-testid": "tail-table" }, h("thead", {}, tailHeadRow), tailBody);
  const tailCard = h("section", { class: "card", "data-testid": "tail" }, h("div", { class: "card-head" }, tailTitle));
  const chart = new LineChart(tailCard, { height: 200, label: "price", emptyText: "No records yet" });
  tailCard.append(tableWrap(tailTable));
  tailCard.hidden = true;

  root.append(
    h("div", { class: "page-head" }, h("h1", {}, title), h("span", { class: "muted small" }, "stale: watermark older than max(120 s, 6 × granularity)")),
    h("div", { class: "card" }, tableWrap(feedsTable), feedsEmpty),
    tailCard,
  );

  function select(key) {
    selected = key;
    rememberedFeed = key;
    for (const tr of feedsBody.children) tr.classList.toggle("selected", tr.dataset.key === key);
    tailBody.replaceChildren();
    tailHeadRow.replaceChildren();
    refreshTail();
  }

  function feedRow(feed) {
    const key = feedKey(feed);
    const { stale, ageSeconds, limitSeconds } = feedStaleness(feed);
    const tr = h(
      "tr",
      {
        "data-testid": "feed-row",
        "data-feed": key,
        "data-stale": String(stale),
        class: `clickable${key === selected ? " selected" : ""}`,
        tabindex: "0",
        title: "Show the live tail of this feed",
      },
      h("td", {}, feed.source),
      h("td", {}, h("strong", {}, feed.subject)),
      h("td", {}, feed.kind),
      h("td", {}, feed.granularity),
      h("td", { class: "num" }, formatValue(feed.record_count, "integer")),
      h("td", { title: feed.oldest_ts || null }, formatTime(feed.oldest_ts)),
      h("td", { title: feed.newest_ts || null }, formatTime(feed.newest_ts)),
      h("td", { title: feed.watermark_ts || null }, formatTime(feed.watermark_ts)),
      h("td", { class: "num" }, ageSeconds === null ? EMPTY : formatDuration(ageSeconds)),
      h(
        "td",
        {},
        h(
          "span",
          { class: `badge ${stale ? "bad" : "ok"}`, "data-testid": "feed-status", title: `stale after ${formatDuration(limitSeconds)}` },
          stale ? "stale" : "live",
        ),
      ),
    );
    tr.addEventListener("click", () => select(key));
    tr.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        select(key);
      }
    });
    return tr;
  }

  async function loadFeeds(signal) {
    const list = await get("/reports/feeds", null, { signal });
    feeds = Array.isArray(list) ? list : [];
    ctx.setFeedsAvailable(feeds.length > 0);
    syncRows(feedsBody, feeds, feedKey, feedRow);
    feedsEmpty.hidden = feeds.length > 0;
    if (!feeds.some((f) => feedKey(f) === selected)) {
      selected = feeds.length ? feedKey(feeds[0]) : null;
      for (const tr of feedsBody.children) tr.classList.toggle("selected", tr.dataset.key === selected);
      refreshTail();
    }
  }

  async function loadTail(signal) {
    const feed = feeds.find((f) => feedKey(f) === selected);
    tailCard.hidden = !feed;
    if (!feed) return;
    const records = await get(
      "/reports/feeds/tail",
      { source: feed.source, subject: feed.subject, kind: feed.kind, granularity: feed.granularity, limit: TAIL_LIMIT },
      { signal },
    );
    if (feedKey(feed) !== selected) return; // the user picked another feed meanwhile
    const rows = Array.isArray(records) ? records : [];
    setText(tailTitle, `Live tail: ${feed.subject} ${feed.kind} ${feed.granularity} (${feed.source})`);
    const names = new Set();
    for (const r of rows) for (const name of Object.keys(r.values ?? {})) names.add(name);
    const valueNames = [...names].sort((a, b) => {
      const ia = VALUE_ORDER.indexOf(a);
      const ib = VALUE_ORDER.indexOf(b);
      return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || a.localeCompare(b);
    });
    const headSignature = valueNames.join("|");
    if (tailHeadRow.dataset.signature !== headSignature) {
      tailHeadRow.replaceChildren(
        h("th", { scope: "col" }, "Event time"),
        ...valueNames.map((n) => h("th", { scope: "col", class: "num" }, n)),
        h("th", { scope: "col" }, "Ingested"),
      );
      tailHeadRow.dataset.signature = headSignature;
    }
    syncRows(
      tailBody,
      rows,
      (r) => r.ts_event,
      (r) =>
        h(
          "tr",
          { "data-testid": "tail-row" },
          h("td", { title: r.ts_event }, formatTime(r.ts_event, { short: true })),
          ...valueNames.map((n) => h("td", { class: "num" }, formatValue(r.values?.[n], null))),
          h("td", { title: r.ts_ingested || null }, formatTime(r.ts_ingested, { short: true })),
        ),
    );
    const points = rows
      .map((r) => [parseTime(r.ts_event), priceOf(r.values)])
      .filter(([t, p]) => t && p !== null)
      .map(([t, p]) => [Math.floor(t.getTime() / 1000), p])
      .sort((a, b) => a[0] - b[0]);
    const label = rows.some((r) => r.values && "close" in r.values) ? `${feed.subject} close` : `${feed.subject} price`;
    chart.update(
      points.map((p) => p[0]),
      [{ label, color: "#2563eb", values: points.map((p) => p[1]) }],
    );
  }

  scope.poll("feeds", loadFeeds, FEEDS_REFRESH_MS);
  const refreshTail = scope.poll("feed tail", loadTail, TAIL_REFRESH_MS);
  scope.onCleanup(() => chart.destroy());
}
