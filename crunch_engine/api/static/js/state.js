// Data shared by the pages, cached: /info, /reports/schema, /reports/models.

import { get, getKey } from "./api.js";

const MODELS_TTL_MS = 10000;

export class AppState {
  constructor() {
    this.infoValue = null;
    this.schemaPromise = null;
    this.modelsCache = null; // {at, promise}
    this.feedsAvailable = false;
    this.feedListeners = new Set();
  }

  async info(force = false) {
    if (force || !this.infoValue) this.infoValue = await get("/info");
    return this.infoValue;
  }

  /** The column and widget configuration (fetched once; retried after a failure). */
  schema() {
    if (!this.schemaPromise) {
      this.schemaPromise = get("/reports/schema").catch((error) => {
        this.schemaPromise = null;
        throw error;
      });
    }
    return this.schemaPromise;
  }

  /** `/reports/models` as a Map model_id -> model (cached a few seconds). */
  models() {
    const now = Date.now();
    if (!this.modelsCache || now - this.modelsCache.at > MODELS_TTL_MS) {
      const promise = get("/reports/models").then(
        (list) => new Map((Array.isArray(list) ? list : []).map((m) => [String(m.model_id), m])),
      );
      this.modelsCache = { at: now, promise };
      promise.catch(() => {
        if (this.modelsCache && this.modelsCache.promise === promise) this.modelsCache = null;
      });
    }
    return this.modelsCache.promise;
  }

  /** Control reads possible: no key configured, or the user entered one. */
  async controlReadable() {
    const info = await this.info();
    return !info?.control?.requires_key || Boolean(getKey());
  }

  setFeedsAvailable(available) {
    if (available === this.feedsAvailable) return;
    this.feedsAvailable = available;
    for (const listener of this.feedListeners) listener(available);
  }

  onFeedsAvailable(listener) {
    this.feedListeners.add(listener);
  }
}

/** Model display name from the /reports/models map, the row, or the id. */
export function modelName(models, modelId, row) {
  const model = models?.get(String(modelId));
  return model?.model_name || row?.model_name || String(modelId ?? "");
}
