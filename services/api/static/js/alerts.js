/* The alerts strip: the team's firing alerts, newest first, as many as fit and "+n more".
 *
 * A chip says who and what in words, from the alert's fields in the page's language ("Ada A.
 * connect rate (last 60 min) 3%, below 5%"); an acknowledged alert is dimmed, comes after the
 * new ones and has a tick (who saw it in its tooltip). Acknowledgements are not on the stream:
 * the list is re-read every 15 s. */

import { api, failed, q } from "./api.js";
import { on } from "./bus.js";
import { ALERTS_MS } from "./config.js";
import { $, h } from "./dom.js";
import { fmtGoal, fmtInt, fmtTime } from "./format.js";
import { inSentence, kpiName, t, windowName } from "./i18n.js";
import { glossary, state } from "./state.js";


function who(alert) {
  const rep = state.data && state.data.reps.find((r) => r.rep_id === alert.rep_id);
  return (rep && rep.rep_name) || alert.rep_id;
}

/** What the alert says, in words: from kind, KPI, window, value and threshold. */
export function alertText(a) {
  const message = state.lang === "zh" ? a.message_zh : a.message_en;
  // Alerts of other origins (a KPI the glossary does not name, such as a survey follow-up's
  // "csat") keep the server's own words.
  if (!glossary.kpis[a.kpi]) return message;
  const kpi = inSentence(kpiName(a.kpi));
  const v = fmtGoal(a.kpi, a.value);
  const th = fmtGoal(a.kpi, a.threshold);
  switch (a.kind) {
    case "threshold": {
      if (a.value === null || a.value === a.threshold) return message;
      const op = a.value > a.threshold ? "op_above" : "op_below";
      return t("a_threshold", { kpi, w: inSentence(windowName(a.window)), v, op: t(op), t: th });
    }
    case "pace":
      return t("a_pace", { kpi, v, t: th });
    case "idle":
      return t("a_idle", { v: fmtInt(a.value || 0) });
    case "missed":
      return t("a_missed", { kpi, v, t: th });
    default:
      return message;
  }
}

export function renderAlerts() {
  const box = $("alerts");
  const alerts = [...state.alerts.values()]
    .filter((a) => !state.team || !a.team_id || a.team_id === state.team)
    // New ones first; acknowledged ones after every unacknowledged one.
    .sort((a, b) => Boolean(a.acked_at) - Boolean(b.acked_at)
      || Date.parse(b.fired_at) - Date.parse(a.fired_at));
  if (!alerts.length) {
    box.replaceChildren(h("span", { class: "alert-ok", text: t("no_alerts") }));
    return;
  }
  const chips = alerts.map((a) =>
    h(
      "div",
      {
        class: a.acked_at ? "alert acked" : "alert",
        "data-kind": a.kind,
        "data-alert-id": a.alert_id,
        "data-acked": a.acked_at ? "true" : null,
        title: state.lang === "zh" ? a.message_zh : a.message_en,
      },
      h("span", { class: "kind", text: t(`k_${a.kind}`) }),
      h("span", { class: "who", text: who(a) }),
      h("span", { class: "msg", text: alertText(a) }),
      // Acknowledged: a tick (who saw it is in the tooltip) instead of the time it fired.
      a.acked_at
        ? h("span", { class: "ack", text: "✓", title: t("acked", { who: a.acked_by || "" }) })
        : h("span", { class: "at", text: fmtTime(new Date(a.fired_at)) }),
    ),
  );
  box.replaceChildren(...chips);
  // Keep what fits and say how many more there are.
  let hidden = 0;
  while (box.children.length > 1 && box.scrollWidth > box.clientWidth + 1) {
    box.lastElementChild.remove();
    hidden += 1;
  }
  if (hidden) {
    box.append(h("span", { class: "alert-more", text: t("more", { n: hidden }) }));
    while (box.children.length > 2 && box.scrollWidth > box.clientWidth + 1) {
      box.children[box.children.length - 2].remove();
      hidden += 1;
      box.lastElementChild.textContent = t("more", { n: hidden });
    }
  }
}

/** The team's firing alerts (`AlertsOut`: `{alerts: [AlertOut], generated_at}`), with their
 * acknowledgements; the stream brings transitions between two reads. */
export async function loadAlerts() {
  if (!state.key || !state.team) return;
  const generation = state.generation;
  try {
    const body = await api(`v1/alerts?${q({ state: "firing", team_id: state.team })}`);
    if (generation !== state.generation) return;
    state.alerts = new Map(body.alerts.map((a) => [a.alert_id, a]));
    renderAlerts();
  } catch (error) {
    failed(error);
  }
}

on("alert", (alert) => {
  if (alert.state === "firing") {
    const known = state.alerts.get(alert.alert_id);
    // A stream transition carries no acknowledgement: keep the one already read.
    const acked = known ? { acked_at: known.acked_at, acked_by: known.acked_by } : {};
    state.alerts.set(alert.alert_id, { ...alert, ...acked });
  } else {
    state.alerts.delete(alert.alert_id);
  }
  renderAlerts();
});

setInterval(loadAlerts, ALERTS_MS);
