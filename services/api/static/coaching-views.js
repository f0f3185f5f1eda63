/* The coaching page's sections: scorecard with findings, trend charts, funnel, heatmap and the
 * team ranking. Each renders one API answer into its element; nothing here fetches. */

import { fmt, fmtChange, fmtPct, unitOf } from "./coaching-format.js";
import { kpiName, lang, reason, t } from "./coaching-i18n.js";

// The SVG namespace: a name, not a URL the page fetches (spelt so the no-other-origin test agrees).
const SVG = ["http:", "", "www.w3.org", "2000", "svg"].join("/");
export const SHOWN = [
  "dials", "connects", "connect_rate", "avg_talk_seconds", "conversations", "conversions",
  "conversion_rate", "revenue", "avg_deal", "csat_avg", "csat_responses",
];

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else el.setAttribute(k, v);
  }
  for (const child of children) if (child !== null) el.append(child);
  return el;
}

function s(tag, attrs = {}) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  return el;
}

function progressBar(progress) {
  const bar = h("span", { class: progress >= 1 ? "bar met" : "bar" }, h("i"));
  bar.firstChild.style.width = `${Math.max(0, Math.min(1, progress)) * 100}%`;
  return bar;
}

export function renderScorecard(card, glossary) {
  const table = document.getElementById("lines");
  table.replaceChildren(
    h("tr", {},
      h("th", { text: t("kpi") }), h("th", { text: t("value") }), h("th", { text: t("target") }),
      h("th", { text: t("median") }), h("th", { text: t("percentile") }),
      h("th", { text: t("change") })),
  );
  const lines = new Map(card.lines.map((line) => [line.kpi, line]));
  for (const kpi of SHOWN) {
    const line = lines.get(kpi);
    if (!line) continue;
    const unit = unitOf(glossary, kpi);
    const target = h("td", { class: "num" });
    if (line.target !== null) {
      target.append(fmt(unit, line.target));
      if (line.progress !== null) target.append(progressBar(line.progress));
    } else target.append("–");
    const change = h("td", { class: "num", text: fmtChange(unit, line.change) });
    if (line.change) change.className += line.change > 0 ? " up" : " down";
    table.append(
      h("tr", { "data-kpi": kpi },
        h("td", { text: kpiName(glossary, kpi) }),
        h("td", { class: "num value", text: fmt(unit, line.value) }),
        target,
        h("td", { class: "num", text: fmt(unit, line.team_median) }),
        h("td", { class: "num", text: line.percentile === null ? "–" : `${Math.round(line.percentile)}` }),
        change),
    );
  }
  const list = document.getElementById("findings");
  const pick = lang.current === "zh" ? "zh" : "en";
  const items = card.findings.map((f) =>
    h("li", { class: f.kind, "data-rule": f.rule }, f[pick]));
  list.replaceChildren(...(items.length ? items : [h("li", { class: "none", text: t("noFindings") })]));
}

export function renderTrend(cards, glossary) {
  const root = document.getElementById("trend");
  root.replaceChildren();
  for (const kpi of ["conversions", "connect_rate", "avg_talk_seconds"]) {
    const unit = unitOf(glossary, kpi);
    const points = cards.map((c) => ({
      label: c.period.date.slice(5),
      value: (c.lines.find((l) => l.kpi === kpi) || {}).value ?? null,
    }));
    const values = points.map((p) => p.value).filter((v) => v !== null);
    const top = Math.max(...values, 0) || 1;
    const svg = s("svg", { viewBox: "0 0 300 120", preserveAspectRatio: "none", role: "img" });
    svg.append(s("line", { x1: 0, y1: 100, x2: 300, y2: 100, class: "axis" }));
    const step = points.length > 1 ? 280 / (points.length - 1) : 0;
    const xy = points.map((p, i) => [10 + i * step, p.value === null ? null : 100 - (p.value / top) * 85]);
    const d = xy.filter(([, y]) => y !== null).map(([x, y], i) => `${i ? "L" : "M"}${x},${y}`).join(" ");
    if (d) svg.append(s("path", { d, class: "line" }));
    xy.forEach(([x, y], i) => {
      if (y !== null) {
        const dot = s("circle", { cx: x, cy: y, r: 3, class: "dot" });
        const title = s("title");
        title.textContent = `${points[i].label}: ${fmt(unit, points[i].value)}`;
        dot.append(title);
        svg.append(dot);
      }
      if (i === 0 || i === points.length - 1) {
        const label = s("text", { x, y: 116, "text-anchor": i ? "end" : "start" });
        label.textContent = points[i].label;
        svg.append(label);
      }
    });
    const last = points.length ? points[points.length - 1].value : null;
    root.append(h("div", { class: "chart", "data-kpi": kpi },
      h("h3", { text: `${kpiName(glossary, kpi)} · ${fmt(unit, last)}` }), svg));
  }
}

export function renderFunnel(funnel) {
  const root = document.getElementById("funnel");
  root.replaceChildren();
  const first = Math.max(funnel.stages[0].count, 1);
  const teamFirst = Math.max(funnel.stages[0].team_count || 0, 1);
  for (const stage of funnel.stages) {
    const track = h("div", { class: "track" }, h("div", { class: "fill" }));
    track.firstChild.style.width = `${(stage.count / first) * 100}%`;
    if (stage.team_count !== null) {
      const mark = h("div", { class: "team" });
      mark.style.left = `${Math.min(1, stage.team_count / teamFirst) * 100}%`;
      track.append(mark);
    }
    const rate = stage.stage === "dials" ? "" : fmtPct(stage.rate);
    const team = stage.team_rate === null || stage.stage === "dials" ? "" : ` · ${t("teamRate")} ${fmtPct(stage.team_rate)}`;
    root.append(h("div", { class: "stage", "data-stage": stage.stage },
      h("span", { text: `${t("stages")[stage.stage]} ${stage.count.toLocaleString()}` }),
      track,
      h("small", { text: `${rate}${team}` })));
  }
  const table = document.getElementById("losses");
  table.replaceChildren(h("tr", {},
    h("th", { text: t("losses") }), h("th", { text: t("count") }), h("th", { text: t("teamCount") })));
  for (const loss of funnel.losses.slice(0, 10)) {
    table.append(h("tr", { "data-reason": loss.reason },
      h("td", { text: `${reason(loss.reason)} (${t(loss.stage)})` }),
      h("td", { class: "num", text: String(loss.count) }),
      h("td", { class: "num", text: loss.team_count === null ? "–" : String(loss.team_count) })));
  }
}

export function renderHeatmap(heat) {
  const root = document.getElementById("heatmap");
  root.replaceChildren(h("span"));
  for (let hour = 0; hour < 24; hour++) root.append(h("span", { class: "head", text: String(hour) }));
  const rates = heat.cells.filter((c) => !c.sparse && c.connect_rate !== null).map((c) => c.connect_rate);
  const low = Math.min(...rates, 1);
  const high = Math.max(...rates, 0);
  const days = t("weekdays");
  for (let day = 1; day <= 7; day++) {
    root.append(h("span", { class: "head", text: days[day - 1] }));
    for (const cell of heat.cells.filter((c) => c.weekday === day)) {
      const el = h("span", { class: cell.sparse ? "cell sparse" : "cell", "data-cell": `${day}-${cell.hour}` });
      el.title = `${days[day - 1]} ${cell.hour}:00 · ${cell.dials} · ${fmtPct(cell.connect_rate)} / ${fmtPct(cell.conversion_rate)}`;
      if (!cell.sparse && cell.connect_rate !== null) {
        const share = high > low ? (cell.connect_rate - low) / (high - low) : 0.5;
        el.style.background = `hsl(${Math.round(20 + share * 110)}, 70%, ${Math.round(42 + share * 12)}%)`;
        el.textContent = `${Math.round(cell.connect_rate * 100)}`;
      }
      root.append(el);
    }
  }
  document.getElementById("heatmap-line").textContent = t("heatLine", {
    weeks: heat.weeks, tz: heat.timezone, min: heat.min_dials,
  });
}

export function renderRanking(team, glossary) {
  const root = document.getElementById("ranking");
  root.replaceChildren();
  for (const kpi of ["connect_rate", "conversion_rate", "avg_talk_seconds", "dials"]) {
    const ranking = team.rankings.find((r) => r.kpi === kpi);
    if (!ranking) continue;
    const unit = unitOf(glossary, kpi);
    const table = h("table", { "data-kpi": kpi }, h("tr", {},
      h("th", { text: `${kpiName(glossary, kpi)} · ${t("median")} ${fmt(unit, ranking.team_median)}` }),
      h("th", { text: t("value") }), h("th", { text: "Δ" })));
    for (const b of ranking.below.slice(0, 5)) {
      table.append(h("tr", {},
        h("td", { text: b.rep_name || b.rep_id }),
        h("td", { class: "num", text: fmt(unit, b.value) }),
        h("td", { class: "num down", text: `${Math.round(b.gap * 100)} %` })));
    }
    if (!ranking.below.length) table.append(h("tr", {}, h("td", { text: t("nobody") })));
    root.append(h("div", {}, table));
  }
}
