/* The header: labels in the page's language, the team picker, the window buttons, the metric
 * picker and the connection state. Clicks become bus events ("window"); main.js acts on them. */

import { emit } from "./bus.js";
import { METRICS, STALE_MS, WINDOWS } from "./config.js";
import { $, h } from "./dom.js";
import { fmtClock } from "./format.js";
import { kpiName, t, windowName } from "./i18n.js";
import { renderHead } from "./reps.js";
import { state } from "./state.js";

export function renderStatic() {
  document.documentElement.lang = state.lang === "zh" ? "zh-CN" : "en";
  document.title = t("title");
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll("[data-i18n-title]")) {
    el.title = t(el.dataset.i18nTitle);
    el.setAttribute("aria-label", el.title);
  }
  const lang = $("lang");
  lang.textContent = t("lang_other");
  lang.lang = state.lang === "zh" ? "en" : "zh-CN";

  const windows = $("windows");
  windows.replaceChildren(
    ...WINDOWS.map((w) => {
      const button = h("button", {
        type: "button", role: "radio", "data-window": w,
        "aria-checked": String(w === state.window), text: windowName(w),
      });
      button.addEventListener("click", () => emit("window", w));
      return button;
    }),
  );

  const metric = $("metric");
  metric.replaceChildren(
    ...METRICS.map((m) =>
      h("option", { value: m, selected: m === state.metric, text: kpiName(m) }),
    ),
  );
  renderHead();
}

export function renderTeams() {
  const select = $("team");
  const teams = [...state.teams].sort((a, b) => a.localeCompare(b));
  if (state.team && !teams.includes(state.team)) teams.unshift(state.team);
  select.replaceChildren(
    ...teams.map((id) =>
      h("option", { value: id, selected: id === state.team, text: state.teamNames.get(id) || id }),
    ),
  );
  select.disabled = teams.length === 0;
}

export function renderConn() {
  const conn = $("conn");
  const mode = state.live ? "live" : state.lastOk ? "polling" : "connecting";
  const offline = state.lastOk && Date.now() - state.lastOk > STALE_MS;
  const shown = offline ? "offline" : mode;
  conn.dataset.state = shown;
  $("conn-text").textContent = t(shown);
  const parts = [];
  if (state.lastOk) parts.push(t("updated", { t: fmtClock(new Date(state.lastOk)) }));
  if (state.data && state.data.lag_seconds > 5) {
    parts.push(t("lag", { s: Math.round(state.data.lag_seconds) }));
  }
  $("updated").textContent = parts.join(" · ");
  $("board").classList.toggle("stale", Boolean(offline));
}
