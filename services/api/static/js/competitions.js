/* Competitions on the wallboard: a panel per running competition of the team (a progress race:
 * rank, name, a bar to the target or the leader, score, gap), updated live from the stream's
 * `competition` events; a celebration banner for a few seconds when a rep's sale lands (a `kpi`
 * snapshot whose conversions went up), on by default and switched per team (`?celebrate=off`,
 * or the ★ button, remembered per team in this browser); and TV mode (`?tv=1`,
 * `?rotate=<seconds>`, default 15): the board shows the floor, the leaderboard and the
 * competitions in turn, full screen.
 *
 * Its words in both languages are in WORDS below (kept here, beside the view they label). */

import { api, failed, q } from "./api.js";
import { addView, on } from "./bus.js";
import { $, h } from "./dom.js";
import { fmtInt, fmtMoney } from "./format.js";
import { kpiName } from "./i18n.js";
import { params, state } from "./state.js";

const WORDS = {
  en: {
    competitions: "Competitions", leader: "Leader", target: "target {t}", gap: "−{g}",
    ranked_out: "not ranked", none: "No competition running.", sale: "{name} closed a sale",
    sale_amount: "{name} closed a sale of {amount}", ends: "ends {t}", celebrate: "Sale banners",
    period_once: "{a} – {b}", tv_floor: "Floor", tv_leaders: "Leaderboard",
    tv_competitions: "Competitions",
  },
  zh: {
    competitions: "竞赛", leader: "领先", target: "目标 {t}", gap: "−{g}",
    ranked_out: "未达门槛", none: "暂无进行中的竞赛。", sale: "{name} 成交了一单",
    sale_amount: "{name} 成交一单：{amount}", ends: "{t} 结束", celebrate: "成交横幅",
    period_once: "{a} – {b}", tv_floor: "现场", tv_leaders: "排行榜", tv_competitions: "竞赛",
  },
};
const CELEBRATE_MS = 6000;
const RACE_ROWS = 8;
const STORE = "callpulse.celebrate";

function w(name, vars) {
  let text = (WORDS[state.lang] || WORDS.en)[name] || WORDS.en[name] || name;
  for (const [k, v] of Object.entries(vars || {})) text = text.replaceAll(`{${k}}`, String(v));
  return text;
}

const board = { team: null, list: [], standings: new Map() }; // competition id -> Standings
const seen = new Map(); // rep_id -> {conversions, revenue} of today, from the last snapshot

function repName(id) {
  const rep = state.data && state.data.reps ? state.data.reps.find((r) => r.rep_id === id) : null;
  return (rep && rep.rep_name) || id;
}

function points(v) {
  return Number.isInteger(v) ? fmtInt(v) : new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 }).format(v);
}

/** When the period ends, on the competition's clock (its time zone, not the browser's). */
function ends(period, timeZone) {
  if (!period) return "";
  const end = new Date(period.end);
  const options = { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" };
  let when;
  try {
    when = end.toLocaleString(state.lang === "zh" ? "zh-CN" : "en-GB", { ...options, timeZone });
  } catch {
    when = end.toLocaleString(state.lang === "zh" ? "zh-CN" : "en-GB", options);
  }
  return w("ends", { t: when });
}

/** The bar of a racer (and its target mark), sized through CSSOM: the page's policy allows no
 * style attributes. */
function track(r, top) {
  const bar = h("span", { class: "bar" });
  bar.style.width = `${Math.max(1, (100 * Math.max(0, r.score)) / top)}%`;
  const el = h("span", { class: "track" }, bar);
  if (r.target) {
    const goal = h("span", { class: "goal", title: w("target", { t: points(r.target) }) });
    goal.style.left = `${Math.min(100, (100 * r.target) / top)}%`;
    el.append(goal);
  }
  return el;
}

function race(standings) {
  const rows = standings.rows.slice(0, RACE_ROWS);
  const top = Math.max(1, ...rows.map((r) => Math.max(r.score, r.target || 0)));
  return h(
    "ol",
    { class: "race" },
    rows.map((r) =>
      h(
        "li",
        {
          class: `racer${r.rank === 1 ? " lead" : ""}${r.qualified ? "" : " out"}`,
          "data-participant": r.participant_id,
          "data-score": r.score,
          "data-rank": r.rank ?? "",
        },
        h("span", { class: "rank", text: r.rank ?? "–" }),
        h("span", { class: "who", text: repName(r.participant_id) }),
        track(r, top),
        h("span", { class: "score", text: points(r.score) }),
        h("span", {
          class: "gap",
          text: !r.qualified ? w("ranked_out") : r.gap_to_leader ? w("gap", { g: points(r.gap_to_leader) }) : w("leader"),
        }),
      ),
    ),
  );
}

function render() {
  const panel = $("competitions");
  if (!panel) return;
  $("competitions-title").textContent = w("competitions");
  const body = $("competitions-body");
  body.replaceChildren();
  const running = board.list
    .map((c) => [c, board.standings.get(c.id)])
    .filter(([, s]) => s && s.period && s.rows.length);
  panel.hidden = !running.length && !tv.on;
  if (!running.length) body.append(h("p", { class: "empty", text: w("none") }));
  for (const [c, s] of running) {
    const formula = c.score.map((t) => `${t.weight === 1 ? "" : `${points(t.weight)} × `}${kpiName(t.kpi)}`).join(" + ");
    body.append(
      h(
        "article",
        { class: "competition", "data-competition-id": c.id },
        h("header", {}, h("h3", { text: c.name }), h("span", { class: "formula", text: formula }), h("span", { class: "ends", text: ends(s.period, c.timezone) })),
        race(s),
      ),
    );
  }
  const toggle = $("celebrate-toggle");
  if (toggle) {
    toggle.title = w("celebrate");
    toggle.setAttribute("aria-label", w("celebrate"));
    toggle.setAttribute("aria-pressed", String(celebrating()));
  }
}

async function refresh() {
  if (!state.key || !state.team) return;
  const team = state.team;
  if (board.team !== team) {
    board.team = team;
    board.list = [];
    board.standings.clear();
    seen.clear();
  }
  try {
    const list = await api(`v1/competitions?${q({ team_id: team })}`);
    if (team !== state.team) return;
    board.list = list;
    await Promise.all(
      list.map(async (c) => board.standings.set(c.id, await api(`v1/competitions/${c.id}/standings?${q({ limit: RACE_ROWS })}`))),
    );
    render();
  } catch (error) {
    if (error.status === 404) return; // a server without competitions
    failed(error);
  }
}

on("competition", (standings) => {
  if (!board.list.some((c) => c.id === standings.competition_id)) {
    refresh();
    return;
  }
  board.standings.set(standings.competition_id, standings);
  render();
});

// ---------------------------------------------------------------- celebrations

function celebrating() {
  const param = (params.get("celebrate") || "").toLowerCase();
  if (param === "off" || param === "0" || param === "false") return false;
  try {
    const stored = JSON.parse(localStorage.getItem(STORE) || "{}");
    return stored[state.team] !== false;
  } catch {
    return true;
  }
}

function toggleCelebrations() {
  let stored = {};
  try {
    stored = JSON.parse(localStorage.getItem(STORE) || "{}") || {};
  } catch {
    /* start afresh */
  }
  stored[state.team] = !celebrating();
  try {
    localStorage.setItem(STORE, JSON.stringify(stored));
  } catch {
    /* private mode */
  }
  render();
}

let hideTimer = null;

export function celebrate(name, amount) {
  const banner = $("celebration");
  if (!banner) return;
  banner.replaceChildren(
    h("span", { class: "burst", "aria-hidden": "true", text: "★" }),
    h("span", { class: "text", text: amount ? w("sale_amount", { name, amount: fmtMoney(amount) }) : w("sale", { name }) }),
  );
  banner.hidden = false;
  banner.classList.remove("show");
  void banner.offsetWidth; // restart the animation
  banner.classList.add("show");
  clearTimeout(hideTimer);
  hideTimer = setTimeout(() => {
    banner.hidden = true;
  }, CELEBRATE_MS);
}

on("kpi", (snapshot) => {
  const today = snapshot.windows && snapshot.windows.today;
  if (!today || snapshot.team_id !== state.team) return;
  const before = seen.get(snapshot.rep_id);
  seen.set(snapshot.rep_id, { conversions: today.conversions, revenue: today.revenue });
  if (!before || today.conversions <= before.conversions || !celebrating()) return;
  const amount = Math.max(0, (today.revenue || 0) - (before.revenue || 0));
  celebrate(snapshot.rep_name || repName(snapshot.rep_id), amount);
});


// ---------------------------------------------------------------- TV mode

const tv = {
  on: ["1", "true", "on"].includes((params.get("tv") || "").toLowerCase()),
  views: ["floor", "leaders", "competitions"],
  index: 0,
};

function showTv() {
  const view = tv.views[tv.index % tv.views.length];
  document.body.dataset.tv = view;
  const label = $("tv-label");
  if (label) label.textContent = w(`tv_${view}`);
}

function startTv() {
  if (!tv.on) return;
  document.body.classList.add("tv");
  const seconds = Math.max(3, Number(params.get("rotate")) || 15);
  const start = (params.get("tv_view") || "").toLowerCase();
  if (tv.views.includes(start)) tv.index = tv.views.indexOf(start);
  showTv();
  setInterval(() => {
    tv.index += 1;
    showTv();
  }, seconds * 1000);
}

/** Called once by main.js at start-up: the ★ switch and TV mode. */
export function installCompetitions() {
  const toggle = $("celebrate-toggle");
  if (toggle) toggle.addEventListener("click", toggleCelebrations);
  startTv();
}

addView({ render, refresh });
