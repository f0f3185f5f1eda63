/* The two DOM helpers every view uses, and the notice line under the header. */

export const $ = (id) => document.getElementById(id);

/** `h("div", {class: "tile", text: "…"}, child, …)`: an element; null/false attributes and
 * children are left out. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") el.className = value;
    else if (name === "text") el.textContent = value;
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Show `text` under the header (level "warn" or "error"); null hides it. */
export function notice(text, level) {
  const el = $("notice");
  el.hidden = !text;
  el.textContent = text || "";
  if (level) el.dataset.level = level;
  else delete el.dataset.level;
}
