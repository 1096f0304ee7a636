// The lifetime of a mounted page: its pollers, its aborted requests, its cleanups.

import { clearError, showError } from "./banner.js";
import { isAbort } from "./api.js";

export class PageScope {
  constructor(ctx) {
    this.ctx = ctx;
    this.alive = true;
    this.controller = new AbortController();
    this.timers = [];
    this.cleanups = [];
    this.ticks = [];
    this.sources = new Set();
    this.onVisible = () => {
      if (!document.hidden) for (const tick of this.ticks) tick();
    };
    document.addEventListener("visibilitychange", this.onVisible);
  }

  get signal() {
    return this.controller.signal;
  }

  /**
   * Run `fn(signal)` now and every `ms` milliseconds, never overlapping, skipped while
   * the tab is hidden. A failure shows in the banner under `source`; a success clears
   * it. Returns a function that refreshes now (or right after the running call).
   */
  poll(source, fn, ms) {
    this.sources.add(source);
    let running = false;
    let again = false;
    const tick = async () => {
      if (!this.alive || document.hidden) return;
      if (running) {
        again = true;
        return;
      }
      running = true;
      try {
        await fn(this.signal);
        if (this.alive) clearError(source);
      } catch (error) {
        if (this.alive && !isAbort(error)) showError(source, error);
      } finally {
        running = false;
      }
      if (again && this.alive) {
        again = false;
        tick();
      }
    };
    this.ticks.push(tick);
    this.timers.push(setInterval(tick, ms));
    tick();
    return tick;
  }

  /** Run once, reporting failures like `poll`. */
  async run(source, fn) {
    this.sources.add(source);
    try {
      const result = await fn(this.signal);
      if (this.alive) clearError(source);
      return result;
    } catch (error) {
      if (this.alive && !isAbort(error)) showError(source, error);
      return undefined;
    }
  }

  /** Show an error in the banner; it is cleared when the page goes away. */
  report(source, error) {
    this.sources.add(source);
    if (this.alive && !isAbort(error)) showError(source, error);
  }

  ok(source) {
    clearError(source);
  }

  onCleanup(fn) {
    this.cleanups.push(fn);
  }

  destroy() {
    this.alive = false;
    for (const timer of this.timers) clearInterval(timer);
    this.controller.abort();
    document.removeEventListener("visibilitychange", this.onVisible);
    for (const source of this.sources) clearError(source);
    for (const fn of this.cleanups.splice(0)) {
      try {
        fn();
      } catch {
        // a cleanup never stops the others
      }
    }
  }
}
