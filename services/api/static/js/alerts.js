/* The alerts strip: the team's firing alerts, newest first, as many as fit and "+n more". */

import { api, failed, q } from "./api.js";
import { on } from "./bus.js";
import { $, h } from "./dom.js";
import { fmtTime } from "./format.js";
import { t } from "./i18n.js";
import { state } from "./state.js";

export function renderAlerts() {
  const box = $("alerts");
  const alerts = [...state.alerts.values()]
    .filter((a) => !state.team || !a.team_id || a.team_id === state.team)
    .sort((a, b) => Date.parse(b.fired_at) - Date.parse(a.fired_at));
  if (!alerts.length) {
    box.replaceChildren(h("span", { class: "alert-ok", text: t("no_alerts") }));
    return;
  }
  const chips = alerts.map((a) =>
    h(
      "div",
      { class: "alert", "data-kind": a.kind, "data-alert-id": a.alert_id },
      h("span", { class: "kind", text: t(`k_${a.kind}`) }),
      h("span", { class: "msg", text: state.lang === "zh" ? a.message_zh : a.message_en }),
      h("span", { class: "at", text: fmtTime(new Date(a.fired_at)) }),
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

/** The team's firing alerts at start (`AlertsOut`: `{alerts: [Alert], generated_at}`); the
 * stream brings every later transition. */
export async function loadAlerts() {
  if (!state.key) return;
  try {
    const body = await api(`v1/alerts?${q({ state: "firing", team_id: state.team })}`);
    for (const a of body.alerts) state.alerts.set(a.alert_id, a);
    renderAlerts();
  } catch (error) {
    failed(error);
  }
}

on("alert", (alert) => {
  if (alert.state === "firing") state.alerts.set(alert.alert_id, alert);
  else state.alerts.delete(alert.alert_id);
  renderAlerts();
});
