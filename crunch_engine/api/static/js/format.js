// Value and time formatting shared by every page (column/widget formats of the report
// schema: percentage, integer, compact, number, decimal-N).

const EMPTY = "—";

const integerFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const numberFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 4 });
const compactFormat = new Intl.NumberFormat(undefined, {
  notation: "compact",
  maximumFractionDigits: 2,
});

function toNumber(value) {
  if (typeof value === "number") return Number.isFinite(value) ? value : null;
  if (typeof value === "string" && value.trim() !== "") {
    const n = Number(value);
    return Number.isFinite(n) ? n : null;
  }
  return null;
}

/** A cell value formatted per a column's or axis' `format` (null: shown as is). */
export function formatValue(value, format) {
  if (value === null || value === undefined || value === "") return EMPTY;
  const n = toNumber(value);
  if (n === null) {
    if (typeof value === "object") return JSON.stringify(value);
    return String(value);
  }
  const fmt = typeof format === "string" ? format.trim().toLowerCase() : "";
  if (fmt === "percentage") return `${(n * 100).toFixed(2)}%`;
  if (fmt === "integer") return integerFormat.format(Math.round(n));
  if (fmt === "compact") return compactFormat.format(n);
  if (fmt === "number") return numberFormat.format(n);
  const decimals = /^decimal-(\d{1,2})$/.exec(fmt);
  if (decimals) return n.toFixed(Number(decimals[1]));
  if (typeof value === "number" && !Number.isInteger(n)) {
    return Number(n.toPrecision(6)).toString();
  }
  return String(value);
}

/** ISO-8601 (with offset, any number of fraction digits) -> Date, or null. */
export function parseTime(iso) {
  if (iso === null || iso === undefined || iso === "") return null;
  if (iso instanceof Date) return Number.isNaN(iso.getTime()) ? null : iso;
  // Browsers differ on more than 3 fraction digits: keep milliseconds only.
  const text = String(iso).replace(/(\.\d{3})\d+/, "$1");
  const date = new Date(text);
  return Number.isNaN(date.getTime()) ? null : date;
}

const pad = (n, w = 2) => String(n).padStart(w, "0");

/** Local wall-clock time: `2026-11-23 20:40:00` (today: `20:40:00` when short). */
export function formatTime(iso, { short = false } = {}) {
  const d = parseTime(iso);
  if (!d) return EMPTY;
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  const now = new Date();
  if (
    short &&
    d.getFullYear() === now.getFullYear() &&
    d.getMonth() === now.getMonth() &&
    d.getDate() === now.getDate()
  ) {
    return time;
  }
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${time}`;
}

/** Seconds -> `45s`, `3m 05s`, `2h 07m`, `3d 04h`. */
export function formatDuration(seconds) {
  const s = toNumber(seconds);
  if (s === null) return EMPTY;
  const total = Math.max(0, Math.floor(s));
  if (total < 60) return `${total}s`;
  if (total < 3600) return `${Math.floor(total / 60)}m ${pad(total % 60)}s`;
  if (total < 86400) return `${Math.floor(total / 3600)}h ${pad(Math.floor((total % 3600) / 60))}m`;
  return `${Math.floor(total / 86400)}d ${pad(Math.floor((total % 86400) / 3600))}h`;
}

/** Age of an ISO timestamp: `12s ago`. */
export function formatAge(iso, now = Date.now()) {
  const d = parseTime(iso);
  if (!d) return EMPTY;
  const seconds = (now - d.getTime()) / 1000;
  if (seconds < 0) return "in the future";
  return `${formatDuration(seconds)} ago`;
}

/** Bytes -> `28.4 MiB`. */
export function formatBytes(bytes) {
  const n = toNumber(bytes);
  if (n === null) return EMPTY;
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

/** Milliseconds with a sensible precision. */
export function formatMs(ms) {
  const n = toNumber(ms);
  if (n === null) return EMPTY;
  if (n >= 100) return `${n.toFixed(0)} ms`;
  if (n >= 10) return `${n.toFixed(1)} ms`;
  return `${n.toFixed(2)} ms`;
}

const GRANULARITY_UNITS = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

/** `5s`, `1m`, `1h`, `1d` -> seconds (null when unknown). */
export function granularitySeconds(granularity) {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$/i.exec(String(granularity ?? ""));
  if (!match) return null;
  return Number(match[1]) * GRANULARITY_UNITS[match[2].toLowerCase()];
}

/** A feed is stale when its watermark is older than max(120 s, 6 x granularity). */
export function feedStaleness(feed, now = Date.now()) {
  const step = granularitySeconds(feed.granularity);
  const limit = Math.max(120, 6 * (step ?? 0));
  const watermark = parseTime(feed.watermark_ts);
  if (!watermark) return { stale: true, ageSeconds: null, limitSeconds: limit };
  const age = (now - watermark.getTime()) / 1000;
  return { stale: age > limit, ageSeconds: age, limitSeconds: limit };
}

// ANSI escape sequences (colours, cursor moves) in raw log lines.
// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-Z\\-_]/g;

export function stripAnsi(text) {
  return String(text ?? "").replace(ANSI, "");
}

export { EMPTY };
