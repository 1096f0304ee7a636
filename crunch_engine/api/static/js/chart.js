// Line charts on the vendored uPlot (static/vendor/uPlot.iife.min.js, MIT): time on x,
// one line per series; resized with its container; data replaced in place on refresh.

import { h } from "./dom.js";
import { EMPTY, formatTime, formatValue } from "./format.js";

const PALETTE = [
  "#2563eb",
  "#dc2626",
  "#16a34a",
  "#d97706",
  "#7c3aed",
  "#0891b2",
  "#db2777",
  "#65a30d",
  "#ea580c",
  "#4f46e5",
  "#0d9488",
  "#9333ea",
];
const DASHES = [undefined, [6, 4], [2, 3], [10, 3, 2, 3]];

export const colorFor = (index) => PALETTE[((index % PALETTE.length) + PALETTE.length) % PALETTE.length];
export const dashFor = (index) => DASHES[index % DASHES.length];

function cssVar(name, fallback) {
  const value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return value || fallback;
}

const pad = (n) => String(n).padStart(2, "0");

/** One-line local-time tick labels, as precise as the tick spacing needs. */
function timeTicks(_, splits) {
  const step = splits.length > 1 ? splits[1] - splits[0] : 3600;
  const first = new Date(splits[0] * 1000);
  const last = new Date(splits[splits.length - 1] * 1000);
  const sameDay = first.toDateString() === last.toDateString();
  return splits.map((v) => {
    const d = new Date(v * 1000);
    const day = `${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
    const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
    if (step >= 86400) return day;
    if (step < 60) return `${hm}:${pad(d.getSeconds())}`;
    return sameDay ? hm : `${day} ${hm}`;
  });
}

export class LineChart {
  /**
   * @param {HTMLElement} container  gets a `data-testid="chart"` plot area
   * @param {{height?: number, yFormat?: string|null, emptyText?: string, label?: string}} options
   */
  constructor(container, { height = 260, yFormat = null, emptyText = "No data yet", label } = {}) {
    this.height = height;
    this.yFormat = yFormat;
    this.plot = null;
    this.signature = "";
    this.area = h("div", { class: "chart-area", "data-testid": "chart", "aria-label": label || "chart" });
    this.empty = h("div", { class: "chart-empty", "data-testid": "chart-empty" }, emptyText);
    this.area.append(this.empty);
    container.append(this.area);
    this.resizer = new ResizeObserver(() => this.resize());
    this.resizer.observe(this.area);
  }

  width() {
    return Math.max(160, Math.floor(this.area.clientWidth || this.area.getBoundingClientRect().width || 320));
  }

  resize() {
    if (!this.plot) return;
    const width = this.width();
    if (Math.abs(width - this.plot.width) > 1) this.plot.setSize({ width, height: this.height });
  }

  /**
   * @param {number[]} xs  unix seconds, ascending
   * @param {{label: string, color?: string, dash?: number[], values: (number|null)[]}[]} series
   */
  update(xs, series, { emptyText } = {}) {
    if (typeof window.uPlot !== "function") throw new Error("the chart library did not load");
    const signature = series.map((s) => `${s.label}\u0000${s.color}\u0000${s.dash ?? ""}`).join("\u0001");
    const data = [xs, ...series.map((s) => s.values)];
    if (!this.plot || signature !== this.signature) {
      this.destroyPlot();
      this.plot = new window.uPlot(this.options(series), data, this.area);
      this.signature = signature;
    } else {
      this.plot.setData(data);
    }
    if (emptyText) this.empty.textContent = emptyText;
    const hasData = xs.length > 0 && series.some((s) => s.values.some((v) => v !== null && v !== undefined));
    this.empty.hidden = hasData;
  }

  options(series) {
    const text = cssVar("--muted", "#6b7280");
    const grid = cssVar("--grid", "rgba(127,127,127,0.15)");
    const yFormat = this.yFormat;
    const axis = { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
    return {
      width: this.width(),
      height: this.height,
      scales: { x: { time: true } },
      cursor: { drag: { x: true, y: false } },
      legend: { show: true, live: true },
      series: [
        { label: "time", value: (_, v) => (v === null || v === undefined ? EMPTY : formatTime(new Date(v * 1000))) },
        ...series.map((s, i) => ({
          label: s.label,
          stroke: s.color || colorFor(i),
          width: 2,
          dash: s.dash,
          spanGaps: true,
          value: (_, v) => formatValue(v, yFormat),
        })),
      ],
      axes: [
        { ...axis, space: 80, values: timeTicks },
        yFormat
          ? { ...axis, size: 64, values: (_, splits) => splits.map((v) => formatValue(v, yFormat)) }
          : { ...axis, size: 64 },
      ],
    };
  }

  destroyPlot() {
    if (this.plot) {
      this.plot.destroy();
      this.plot = null;
    }
  }

  destroy() {
    this.resizer.disconnect();
    this.destroyPlot();
    this.area.remove();
  }
}
