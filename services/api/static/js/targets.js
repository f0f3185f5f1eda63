/* Targets and pace: a team's target combined from its reps', the progress bars and their texts. */

import { ADDITIVE } from "./config.js";
import { h } from "./dom.js";
import { fmt, fmtGoal, fmtShare } from "./format.js";
import { t } from "./i18n.js";

/** "met", "behind" (under 90 % of the pro-rata expectation) or "on_track". */
export function pace(value, target, expected) {
  if (value === null || value === undefined || !target) return null;
  if (value >= target) return "met";
  if (expected !== null && expected !== undefined && expected > 0 && value < expected * 0.9) {
    return "behind";
  }
  return "on_track";
}

/** A team's target for `kpi` over the shown window, combined from its reps' targets. */
export function teamTarget(data, kpi) {
  const rows = [];
  for (const rep of data.reps) {
    for (const tp of rep.targets || []) {
      if (tp.kpi === kpi && tp.window === data.window) rows.push(tp);
    }
  }
  if (!rows.length) return null;
  if (ADDITIVE.has(kpi)) {
    const target = rows.reduce((s, r) => s + r.target, 0);
    const value = rows.reduce((s, r) => s + (r.value || 0), 0);
    const hasExpected = rows.every((r) => r.expected !== null && r.expected !== undefined);
    const expected = hasExpected ? rows.reduce((s, r) => s + r.expected, 0) : null;
    return { target, value, expected };
  }
  // Ratios and averages: the team's own value against the reps' mean target.
  const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const expected = rows.every((r) => r.expected !== null && r.expected !== undefined)
    ? mean(rows.map((r) => r.expected))
    : null;
  return { target: mean(rows.map((r) => r.target)), value: data[kpi], expected };
}

export function repTarget(rep, kpi, window) {
  return (rep.targets || []).find((tp) => tp.kpi === kpi && tp.window === window) || null;
}

/** A bar filled to value/target, with a tick at the pro-rata expectation. */
export function progressBar(goal, cls) {
  const track = h("div", { class: cls || "bar-track" });
  if (!goal || !goal.target) {
    track.classList.add("empty");
    return track;
  }
  const fill = h("div", { class: "bar-fill" });
  fill.style.width = `${Math.min(1, Math.max(0, (goal.value || 0) / goal.target)) * 100}%`;
  track.append(fill);
  if (goal.expected > 0 && goal.expected < goal.target) {
    const mark = h("div", { class: "bar-mark", title: t("expected", { v: goal.expected }) });
    mark.style.left = `calc(${Math.min(1, goal.expected / goal.target) * 100}% - 1px)`;
    track.append(mark);
  }
  return track;
}

/** "target 600 · 94 %" under a tile; the bar's tick is the pro-rata expectation by now. */
export function targetText(kpi, goal) {
  const text = t("target_is", { t: fmtGoal(kpi, goal.target) });
  const share = goal.value === null || goal.value === undefined ? null : goal.value / goal.target;
  return share === null ? text : `${text} · ${fmtShare(share)}`;
}

export function targetTitle(kpi, goal) {
  let text = t("of_target", { v: fmt(kpi, goal.value), t: fmtGoal(kpi, goal.target) });
  if (goal.expected > 0 && goal.expected < goal.target) {
    text += ` · ${t("expected", { v: fmt(kpi, goal.expected) })}`;
  }
  return text;
}
