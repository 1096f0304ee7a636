// Tiny DOM helpers. Text is always set through text nodes / textContent, never HTML.

/**
 * h("td", {class: "num", title: "x", dataset: {modelId: "a"}, on: {click: fn}}, "text", node)
 * Attribute values are set as attributes (strings); children strings become text nodes.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "on") {
      for (const [event, handler] of Object.entries(value)) el.addEventListener(event, handler);
    } else if (key === "text") el.textContent = String(value);
    else if (key === "hidden") el.hidden = Boolean(value);
    else if (key === "checked" || key === "value" || key === "disabled" || key === "selected") {
      el[key] = value;
    } else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Set textContent only when it changed; returns true when it did. */
export function setText(el, text) {
  const value = String(text ?? "");
  if (el.textContent === value) return false;
  el.textContent = value;
  return true;
}

/** Replace an element's children. */
export function replaceChildren(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

/** A horizontally scrollable wrapper for tables (small screens). */
export function tableWrap(table) {
  return h("div", { class: "table-wrap" }, table);
}

/** A muted note (empty states, missing key, ...). */
export function note(text, testid = "note") {
  return h("p", { class: "note", "data-testid": testid }, text);
}

/** Briefly highlight an element whose value changed (no re-render, no flicker). */
export function flash(el) {
  el.classList.remove("flash");
  // Restart the CSS animation.
  void el.offsetWidth;
  el.classList.add("flash");
}

/**
 * Bring `tbody` to `items` in place: rows keyed by `keyOf(item)`, rebuilt by
 * `buildRow(item)` but swapped in only when their markup changed, moved only when out
 * of place. Scroll position, selection and unchanged rows are left alone.
 */
export function syncRows(tbody, items, keyOf, buildRow) {
  const existing = new Map();
  for (const tr of tbody.children) existing.set(tr.dataset.key, tr);
  items.forEach((item, index) => {
    const key = String(keyOf(item));
    const fresh = buildRow(item);
    fresh.dataset.key = key;
    let tr = existing.get(key);
    if (!tr) {
      tr = fresh;
    } else {
      existing.delete(key);
      if (tr.outerHTML !== fresh.outerHTML) {
        tr.replaceWith(fresh);
        tr = fresh;
      }
    }
    if (tbody.children[index] !== tr) tbody.insertBefore(tr, tbody.children[index] ?? null);
  });
  for (const tr of existing.values()) tr.remove();
}
