/* The coaching page: a rep's scorecard with findings and weekly trend, the funnel, the team's
 * heatmap and who is below the team. `?key=` (kept in localStorage, as the wallboard does),
 * `team`, `rep`, `period`, `date` and `lang=zh` come from the URL; a `rep` key sees its own
 * scorecard and trend only. `document.body.dataset.ready` is set once everything rendered. */


import { lang, t, translate } from "./coaching-i18n.js";
import {
  h, renderFunnel, renderHeatmap, renderRanking, renderScorecard, renderTrend,
} from "./coaching-views.js";

const KEY_STORE = "callpulse.key";
const TREND_WEEKS = 8;
const params = new URLSearchParams(location.search);
const state = {
  key: params.get("key") || localStorage.getItem(KEY_STORE) || "",
  team: params.get("team") || "",
  rep: params.get("rep") || "",
  period: params.get("period") || "week",
  date: params.get("date") || new Date().toISOString().slice(0, 10),
  campaign: params.get("campaign") || "",
  glossary: {},
};
lang.current = (params.get("lang") || navigator.language || "en").startsWith("zh") ? "zh" : "en";

if (params.get("key")) {
  localStorage.setItem(KEY_STORE, state.key);
  params.delete("key");
  history.replaceState(null, "", `${location.pathname}?${params}`);
}

class HttpError extends Error {}

async function api(path) {
  const response = await fetch(path, {
    headers: { Authorization: `Bearer ${state.key}`, Accept: "application/json" },
    cache: "no-store",
  });
  if (!response.ok) {
    const error = new HttpError(`HTTP ${response.status}`);
    error.status = response.status;
    throw error;
  }
  return response.json();
}

function query(values) {
  const search = new URLSearchParams();
  for (const [k, v] of Object.entries(values)) if (v) search.set(k, v);
  return search.toString();
}

function notice(text) {
  const el = document.getElementById("notice");
  el.textContent = text;
  el.hidden = !text;
}

function shiftDays(iso, days) {
  const d = new Date(`${iso}T12:00:00Z`);
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
}

function syncUrl() {
  const shown = query({ team: state.team, rep: state.rep, period: state.period, date: state.date,
    campaign: state.campaign, lang: lang.current === "zh" ? "zh" : "" });
  history.replaceState(null, "", `${location.pathname}?${shown}`);
}

async function loadGlossary() {
  try {
    const response = await fetch("static/glossary.json");
    if (response.ok) state.glossary = await response.json();
  } catch {
    /* names fall back to identifiers */
  }
}

async function load() {
  document.body.dataset.ready = "";
  translate(document);
  document.getElementById("lang").textContent = t("lang");
  notice("");
  const who = await api("v1/coaching/whoami");
  const restricted = who.role === "rep";
  if (restricted) state.rep = who.rep_id;
  for (const el of document.querySelectorAll(".team-only")) el.hidden = restricted;
  document.getElementById("team").disabled = restricted;
  document.getElementById("rep").disabled = restricted;

  const when = { period: state.period, date: state.date };
  let team = null;
  if (!restricted && state.team) {
    team = await api(`v1/teams/${encodeURIComponent(state.team)}/scorecard?${query(when)}`);
    if (!state.rep && team.reps.length) state.rep = team.reps[0].rep_id;
  }
  if (!state.rep) throw new HttpError(t("rep"));
  const rep = encodeURIComponent(state.rep);
  const card = await api(`v1/reps/${rep}/scorecard?${query(when)}`);
  state.team = card.team_id || state.team;
  if (!restricted && !team && state.team) {
    team = await api(`v1/teams/${encodeURIComponent(state.team)}/scorecard?${query(when)}`);
  }
  const select = document.getElementById("rep");
  const reps = team ? team.reps : [card];
  select.replaceChildren(...reps.map((r) => h("option", { value: r.rep_id, text: r.rep_name || r.rep_id })));
  select.value = state.rep;
  document.getElementById("team").value = state.team;
  document.getElementById("period").value = state.period;
  document.getElementById("date").value = state.date;
  document.getElementById("subject").textContent =
    `${card.rep_name || card.rep_id}${card.team_id ? ` · ${card.team_id}` : ""}`;
  const p = card.period;
  document.getElementById("period-line").textContent = t("periodLine", {
    start: p.start.slice(0, 10), end: shiftDays(p.end.slice(0, 10), -1), tz: p.timezone, n: card.team_size,
  });
  renderScorecard(card, state.glossary);

  const weeks = [];
  for (let i = TREND_WEEKS - 1; i >= 0; i--) weeks.push(shiftDays(state.date, -7 * i));
  const trend = await Promise.all(
    weeks.map((d) => api(`v1/reps/${rep}/scorecard?${query({ period: "week", date: d })}`)),
  );
  renderTrend(trend, state.glossary);

  if (!restricted) {
    const campaign = state.campaign;
    const [funnel, heat, campaigns] = await Promise.all([
      api(`v1/reports/funnel?${query({ rep_id: state.rep, campaign_id: campaign, ...when })}`),
      api(`v1/reports/heatmap?${query({
        team_id: state.team, campaign_id: campaign, weeks: TREND_WEEKS, date: state.date,
      })}`),
      api(`v1/reports/campaigns?${query({ team_id: state.team, ...when })}`),
    ]);
    const choice = document.getElementById("campaign");
    choice.replaceChildren(
      h("option", { value: "", text: t("allCampaigns") }),
      ...campaigns.campaigns.map((c) => h("option", { value: c.campaign_id, text: c.campaign_id })),
    );
    choice.value = campaign;
    renderFunnel(funnel);
    renderHeatmap(heat);
    if (team) renderRanking(team, state.glossary);
  }
  syncUrl();
  document.body.dataset.ready = "1";
}

async function show() {
  try {
    await load();
  } catch (error) {
    if (error.status === 401 || !state.key) {
      document.getElementById("login").hidden = false;
      document.getElementById("main").hidden = true;
    } else if (error.status === 403) notice(t("forbidden"));
    else notice(t("error", { e: error.message }));
    document.body.dataset.ready = "error";
  }
}

function wire() {
  document.getElementById("controls").addEventListener("change", (event) => {
    const { name, value } = event.target;
    if (!name) return;
    state[name] = value;
    if (name === "team") state.rep = "";
    show();
  });
  document.getElementById("controls").addEventListener("submit", (event) => event.preventDefault());
  document.getElementById("lang").addEventListener("click", () => {
    lang.current = lang.current === "zh" ? "en" : "zh";
    show();
  });
  document.getElementById("login").addEventListener("submit", (event) => {
    event.preventDefault();
    state.key = document.getElementById("key").value.trim();
    localStorage.setItem(KEY_STORE, state.key);
    document.getElementById("login").hidden = true;
    document.getElementById("main").hidden = false;
    show();
  });
}

wire();
loadGlossary().then(show);

