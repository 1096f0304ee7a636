// Non-blocking error banner: one message per source, replaced when the source fails
// again, cleared when it succeeds, dismissable, auto-hidden after a while.

import { h } from "./dom.js";

const AUTO_HIDE_MS = 20000;
const entries = new Map(); // source -> {el, timer}

function container() {
  return document.getElementById("banner");
}

function describe(error) {
  if (error === null || error === undefined) return "unknown error";
  if (typeof error === "string") return error;
  if (error.status) return `${error.status} ${error.message}`;
  return error.message || String(error);
}

/** Show (or replace) the message of `source`. */
export function showError(source, error, { level = "error" } = {}) {
  const root = container();
  if (!root) return;
  const text = `${source}: ${describe(error)}`;
  let entry = entries.get(source);
  if (!entry) {
    const message = h("span", { class: "banner-text" });
    const close = h(
      "button",
      { type: "button", class: "banner-close", "aria-label": "Dismiss", title: "Dismiss" },
      "×",
    );
    const el = h("div", { class: "banner-item", "data-testid": "banner-item", role: "alert" }, message, close);
    entry = { el, message, timer: null };
    close.addEventListener("click", () => clearError(source));
    entries.set(source, entry);
    root.append(el);
  }
  entry.el.dataset.level = level;
  entry.message.textContent = text;
  entry.el.title = text;
  clearTimeout(entry.timer);
  entry.timer = setTimeout(() => clearError(source), AUTO_HIDE_MS);
}

/** Remove the message of `source` (its request succeeded again). */
export function clearError(source) {
  const entry = entries.get(source);
  if (!entry) return;
  clearTimeout(entry.timer);
  entry.el.remove();
  entries.delete(source);
}
