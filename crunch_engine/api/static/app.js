// crunch-control web UI: header, nav, hash routing (#/leaderboard, #/metrics, ...).
// Plain ES modules, no build step; charts by the vendored uPlot.

import { getKey, get, onSuccess, setKey } from "./js/api.js";
import { clearError, showError } from "./js/banner.js";
import { setText } from "./js/dom.js";
import { formatTime } from "./js/format.js";
import { PageScope } from "./js/page.js";
import { AppState } from "./js/state.js";
import * as feeds from "./js/pages/feeds.js";
import * as leaderboard from "./js/pages/leaderboard.js";
import * as metrics from "./js/pages/metrics.js";
import * as models from "./js/pages/models.js";
import * as processes from "./js/pages/processes.js";

const PAGES = { leaderboard, metrics, models, feeds, processes };
const DEFAULT_PAGE = "leaderboard";
const INFO_REFRESH_MS = 30000;
const FEEDS_CHECK_MS = 15000;

const ctx = new AppState();
let current = null; // {name, scope, el}

const $ = (selector) => document.querySelector(selector);

// Anything unexpected ends in the banner, not as an uncaught error.
window.addEventListener("unhandledrejection", (event) => {
  event.preventDefault();
  showError("unexpected", event.reason);
});

function pageName() {
  const name = window.location.hash.replace(/^#\/?/, "").split(/[/?]/)[0];
  return Object.hasOwn(PAGES, name) ? name : DEFAULT_PAGE;
}

function mountPage(name) {
  if (current) {
    current.scope.destroy();
    current.el.remove();
    current = null;
  }
  const module = PAGES[name];
  const el = document.createElement("section");
  el.className = `page page-${name}`;
  el.dataset.testid = `page-${name}`;
  $("#page").append(el);
  const scope = new PageScope(ctx);
  current = { name, scope, el };
  for (const link of document.querySelectorAll("[data-page]")) {
    const active = link.dataset.page === name;
    link.classList.toggle("active", active);
    if (active) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = `${module.title} · crunch-control`;
  try {
    module.mount(el, scope);
  } catch (error) {
    showError(name, error);
  }
}

function route() {
  const name = pageName();
  if (!current || current.name !== name) mountPage(name);
}

// ---- header ------------------------------------------------------------------------
function renderInfo(info) {
  setText($("[data-testid=info-crunch-id]"), info.crunch_id ?? "—");
  setText($("[data-testid=info-pack]"), info.pack ?? "—");
  setText($("[data-testid=info-version]"), info.version ? `v${info.version}` : "—");
  const control = info.control ?? {};
  $("#key-form").hidden = !control.requires_key && !control.enabled;
}

async function refreshInfo() {
  try {
    renderInfo(await ctx.info(true));
    clearError("info");
  } catch (error) {
    showError("info", error);
  }
}

function renderKeyState() {
  const key = getKey();
  const input = $("#api-key");
  const state = $("[data-testid=key-state]");
  input.placeholder = key ? "key saved (session)" : "API key";
  setText(state, key ? "key set" : "no key");
  state.className = `badge ${key ? "ok" : "muted"}`;
  $("#key-clear").hidden = !key;
}

function setupKeyForm() {
  const form = $("#key-form");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const input = $("#api-key");
    const value = input.value.trim();
    if (!value) return;
    setKey(value);
    input.value = "";
  });
  $("#key-clear").addEventListener("click", () => setKey(""));
  window.addEventListener("crunch:key", () => {
    renderKeyState();
    if (current) mountPage(current.name); // reload the page with (or without) the key
  });
  renderKeyState();
}

// ---- feeds tab ----------------------------------------------------------------------
function showFeedsTab(available) {
  $("[data-testid=nav-feeds]").hidden = !available;
}

async function checkFeeds() {
  if (document.hidden) return;
  try {
    const list = await get("/reports/feeds");
    ctx.setFeedsAvailable(Array.isArray(list) && list.length > 0);
    clearError("feeds list");
  } catch (error) {
    showError("feeds list", error);
  }
}

// ---- start --------------------------------------------------------------------------
function start() {
  onSuccess((at) => {
    const el = $("[data-testid=last-refresh]");
    setText(el, formatTime(at, { short: true }));
    el.setAttribute("datetime", at.toISOString());
  });
  setupKeyForm();
  ctx.onFeedsAvailable(showFeedsTab);
  showFeedsTab(false);
  window.addEventListener("hashchange", route);
  refreshInfo().finally(route);
  checkFeeds();
  setInterval(refreshInfo, INFO_REFRESH_MS);
  setInterval(checkFeeds, FEEDS_CHECK_MS);
}

start();
