/* The team's totals: a tile per KPI with its caption, progress bar and target. */

import { TILES } from "./config.js";
import { $, h } from "./dom.js";
import { fmt, fmtDuration, fmtInt, fmtMoney } from "./format.js";
import { kpiName, t } from "./i18n.js";
import { state } from "./state.js";
import { pace, progressBar, targetText, targetTitle, teamTarget } from "./targets.js";

export function renderTotals() {
  const data = state.data;
  const tiles = TILES.map((kpi) => {
    const value = data ? data[kpi] : null;
    const goal = data ? teamTarget(data, kpi) : null;
    const p = goal ? pace(goal.value, goal.target, goal.expected) : null;
    const tile = h(
      "div",
      { class: "tile", "data-kpi": kpi, "data-pace": p },
      h("div", { class: "label", text: kpiName(kpi) }),
      h("div", { class: "value", "data-value": value ?? "", text: fmt(kpi, value) }),
      h("div", { class: "sub", text: data ? tileSub(kpi, data) : "" }),
      progressBar(goal),
      h("div", {
        class: "target", text: goal ? targetText(kpi, goal) : "", title: goal ? targetTitle(kpi, goal) : null,
      }),
    );
    return tile;
  });
  $("totals").replaceChildren(...tiles);
  fitTiles();
}

/** Shrink every tile's big number until it fits (long durations and amounts), never clip it;
 * the labels share one size, the largest at which every one of them fits ("CONVERSION RATE"
 * in a narrow tile), so none is cut and the row stays even. */
export function fitTiles() {
  for (const el of document.querySelectorAll(".tile .value")) fitText(el);
  const labels = [...document.querySelectorAll(".tile .label")];
  for (const el of labels) el.style.fontSize = "";
  if (!labels.length) return;
  let size = parseFloat(getComputedStyle(labels[0]).fontSize);
  while (size > 12 && labels.some((el) => el.scrollWidth > el.clientWidth + 1)) {
    size *= 0.95;
    for (const el of labels) el.style.fontSize = `${size}px`;
  }
}

function fitText(el) {
  el.style.fontSize = "";
  let size = parseFloat(getComputedStyle(el).fontSize);
  while (el.scrollWidth > el.clientWidth + 1 && size > 12) {
    size *= 0.92;
    el.style.fontSize = `${size}px`;
  }
}

function tileSub(kpi, d) {
  switch (kpi) {
    case "dials":
      return t("inbound_n", { n: fmtInt(d.inbound_calls) });
    // Connects include inbound calls answered; connect rate is outbound connects per dial: both
    // captions name the outbound connects, so the two numbers visibly agree.
    case "connects":
      return t("out_in", { o: fmtInt(d.connects - d.inbound_calls), i: fmtInt(d.inbound_calls) });
    case "connect_rate":
      return t("per_dial", { a: fmtInt(d.connects - d.inbound_calls), b: fmtInt(d.dials) }, d.dials);
    case "talk_seconds":
      return `${t("avg_n", { v: fmtDuration(d.avg_talk_seconds) })} · ${t(
        "conversations_n", { n: fmtInt(d.conversations) }, d.conversations,
      )}`;
    case "conversion_rate":
      return t("per_connect", { n: fmtInt(d.connects) }, d.connects);
    case "revenue":
      return t("avg_deal_n", { v: fmtMoney(d.avg_deal) });
    case "csat_avg":
      return t("responses_n", { n: fmtInt(d.csat_responses) }, d.csat_responses);
    default:
      return "";
  }
}
