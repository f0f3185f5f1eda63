/* Where views plug in. `on(name, fn)` hears the live stream's events by their SSE name ("kpi",
 * "alert", any name the server adds) and the page's own ones ("unauthorized", "team",
 * "window"); `emit` sends them. `addView({render, refresh})` adds a view: `render()` runs
 * whenever the whole board is redrawn (language, team, resize), `refresh()` when the board
 * (re)starts with a key and a team, and on its polling beat. */

const handlers = new Map();
const views = [];

export function on(name, fn) {
  if (!handlers.has(name)) handlers.set(name, []);
  handlers.get(name).push(fn);
}

export function emit(name, body) {
  for (const fn of handlers.get(name) || []) fn(body);
}

export function addView(view) {
  views.push(view);
}

export function renderViews() {
  for (const view of views) if (view.render) view.render();
}

export function refreshViews() {
  for (const view of views) if (view.refresh) view.refresh();
}
