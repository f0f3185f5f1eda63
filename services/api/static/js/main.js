/* callpulse wallboard: plain JavaScript modules, no build step, no third-party code.
 *
 * Data: GET v1/teams/{team}/kpis (totals and a row per rep), GET v1/teams (team names),
 * GET v1/leaderboard, GET v1/alerts (with acknowledgements, every 15 s) and the live stream
 * GET v1/stream?team_id= read with fetch() (EventSource cannot send the Authorization
 * header). Every `kpi` event updates the rep's status at once and schedules a
 * re-read of the team (at most one per second); when the stream is down the page polls every
 * 5 s and reconnects with backoff. URL parameters: key, team, window, lang, sort, metric,
 * currency. Every URL is relative to the page, so the board also works behind a reverse proxy's
 * path prefix. KPI and window names come from the glossary the alerts use too
 * (schemas/glossary.py, served as static/glossary.json).
 *
 * Modules (static/js/, served as static/js/<name>.js):
 *   config.js       KPI lists, quality floors, timings, storage keys
 *   state.js        the one mutable `state`, the `glossary`, URL parameters and saved preferences
 *   i18n.js         the page's words in en and zh (`t`), KPI and window names from the glossary
 *   format.js       numbers, percentages, amounts, durations, times (Intl)
 *   dom.js          `$`, `h` (create an element), `notice`
 *   bus.js          plug-in points: `on`/`emit` (stream events by SSE name, page events) and
 *                   `addView({render, refresh})`
 *   api.js          fetch with the bearer key, `q` (query strings), `failed`, the glossary
 *   stream.js       the live stream: each SSE event is emitted on the bus under its name
 *   targets.js      pace, team targets from reps' targets, progress bars and target texts
 *   header.js       header labels, team picker, window buttons, connection state
 *   tiles.js        team totals        reps.js   the rep table
 *   leaderboard.js  the leaderboard    alerts.js the alerts strip (hears "alert" events)
 *   main.js         this file: loads the team, actions (team, window, key), timers, start-up
 *
 * To add a view (say a competition panel): write static/js/<view>.js that renders into its own
 * element of wallboard.html, reads `state` and `t`, fetches with `api`, and calls
 * `addView({render, refresh})`; hear live events with `on("<sse-event>", fn)`; add its labels
 * to both languages of I18N; then import it below. Nothing else needs to change.
 */

import { loadAlerts, renderAlerts } from "./alerts.js";
import { installCompetitions } from "./competitions.js";
import { api, failed, loadGlossary, q } from "./api.js";
import { on, refreshViews, renderViews } from "./bus.js";
import { KEY_STORE, LEADERS_MS, LIVE_REFRESH_MS, PAGE_MS, POLL_MS, STALE_MS, TEAMS_MS } from "./config.js";
import { $, notice } from "./dom.js";
import { fmtTime, since } from "./format.js";
import { renderConn, renderStatic, renderTeams } from "./header.js";
import { t } from "./i18n.js";
import { refreshLeaders, renderLeaders, scheduleLeaders } from "./leaderboard.js";
import { renderReps, showStatus } from "./reps.js";
import { params, savePrefs, state } from "./state.js";
import { closeStream, openStream } from "./stream.js";
import { fitTiles, renderTotals } from "./tiles.js";

function renderAll() {
  renderStatic();
  renderTeams();
  renderTotals();
  renderReps();
  renderLeaders();
  renderAlerts();
  renderViews();
  renderConn();
}

/** Every second: the clock, "since" counters, staleness. */
function tick() {
  $("clock").textContent = fmtTime(new Date());
  for (const el of document.querySelectorAll("[data-since]")) el.textContent = since(el.dataset.since);
  renderConn();
  if (state.lastOk && Date.now() - state.lastOk > STALE_MS && state.data) {
    notice(t("stale", { s: Math.round((Date.now() - state.lastOk) / 1000) }), "warn");
  }
}

// ---------------------------------------------------------------- the team's numbers

async function refreshTeam() {
  if (!state.key || !state.team) return;
  const generation = state.generation;
  const team = state.team;
  try {
    const data = await api(`v1/teams/${encodeURIComponent(team)}/kpis?${q({ window: state.window })}`);
    if (generation !== state.generation) return;
    state.data = data;
    state.lastOk = Date.now();
    notice(null);
    renderTotals();
    renderReps();
    renderConn();
  } catch (error) {
    if (generation !== state.generation) return;
    if (error.status === 404) {
      state.data = null;
      state.lastOk = Date.now();
      renderTotals();
      renderReps();
      notice(t("unknown_team", { t: team }), "warn");
      return;
    }
    failed(error);
  }
}

let teamsRoute = true; // false once GET v1/teams turns out to be missing (an older server)

/** The teams the roster knows, with the names set through the API (`PUT /v1/teams/{id}`). */
async function loadTeamNames() {
  if (!teamsRoute) return;
  try {
    const body = await api("v1/teams");
    const teams = Array.isArray(body) ? body : body.teams || [];
    for (const team of teams) {
      if (!team.team_id) continue;
      state.teams.add(team.team_id);
      if (team.name) state.teamNames.set(team.team_id, team.name);
    }
  } catch (error) {
    if (error.status === 404 || error.status === 405) teamsRoute = false;
    else throw error;
  }
}

/** Teams seen: the roster's named teams, and every team with a rep in the read model (the
 * leaderboard spans all teams). */
async function refreshTeams() {
  if (!state.key) return;
  try {
    await loadTeamNames();
    const lb = await api(`v1/leaderboard?${q({ metric: "dials", window: "month", limit: 5000 })}`);
    for (const row of lb.rows) if (row.team_id) state.teams.add(row.team_id);
    if (!state.team && state.teams.size) {
      setTeam([...state.teams].sort((a, b) => a.localeCompare(b))[0]);
      return;
    }
    renderTeams();
    if (!state.team) notice(t("no_teams"), "warn");
  } catch (error) {
    failed(error);
  }
}

let refreshQueued = null;
let lastRefresh = 0;

/** Re-read the team soon: at most once a second, however many events arrive. */
function scheduleRefresh() {
  if (refreshQueued) return;
  const wait = Math.max(0, 1000 - (Date.now() - lastRefresh));
  refreshQueued = setTimeout(() => {
    refreshQueued = null;
    lastRefresh = Date.now();
    refreshTeam();
  }, wait);
}

on("kpi", (snapshot) => {
  const mine = Boolean(state.data) && snapshot.team_id === state.team;
  showStatus(snapshot);
  scheduleRefresh();
  if (mine) scheduleLeaders();
});

/** The polling loop: every 5 s without the stream, every 30 s with it. */
function pollLoop() {
  clearTimeout(state.timers.poll);
  const due = state.live ? LIVE_REFRESH_MS : POLL_MS;
  state.timers.poll = setTimeout(async () => {
    await refreshTeam();
    if ($("key-dialog").open) return; // the key was refused: wait for a new one (start())
    if (!state.live) refreshLeaders();
    pollLoop();
  }, due);
}

// ---------------------------------------------------------------- actions

function updateUrl() {
  const search = new URLSearchParams(location.search);
  search.delete("key");
  if (state.team) search.set("team", state.team);
  if (search.has("window")) search.set("window", state.window);
  const query = search.toString();
  history.replaceState(null, "", `${location.pathname}${query ? `?${query}` : ""}${location.hash}`);
}

function setTeam(team) {
  if (team === state.team && state.data) return;
  state.team = team;
  state.generation += 1;
  state.data = null;
  state.leaders = null;
  state.page = 0;
  state.rowsPerPage = Infinity;
  savePrefs();
  updateUrl();
  renderAll();
  start();
}

function setWindow(w) {
  state.window = w;
  state.generation += 1;
  state.page = 0;
  savePrefs();
  updateUrl();
  renderStatic();
  refreshTeam();
  refreshLeaders();
}

function askKey(refused) {
  closeStream();
  clearTimeout(state.timers.poll);
  clearTimeout(state.timers.reconnect);
  const dialog = $("key-dialog");
  $("key-error").hidden = !refused;
  $("key-error").textContent = refused ? t("key_bad") : "";
  if (dialog.open) return; // keep what is being typed
  $("key-input").value = "";
  dialog.showModal();
  $("key-input").focus();
}

on("window", setWindow);
on("unauthorized", () => askKey(true));

function start() {
  if (!state.key) {
    askKey(false);
    return;
  }
  refreshTeams();
  if (!state.team) return;
  refreshTeam();
  refreshLeaders();
  loadAlerts();
  refreshViews();
  openStream();
  pollLoop();
}

function bind() {
  $("team").addEventListener("change", (e) => setTeam(e.target.value));
  $("metric").addEventListener("change", (e) => {
    state.metric = e.target.value;
    savePrefs();
    refreshLeaders();
  });
  $("lang").addEventListener("click", () => {
    state.lang = state.lang === "zh" ? "en" : "zh";
    savePrefs();
    renderAll();
  });
  $("key-button").addEventListener("click", () => askKey(false));
  $("key-dialog").addEventListener("cancel", (e) => {
    if (!state.key) e.preventDefault(); // nothing to show without a key
  });
  $("key-form").addEventListener("submit", (e) => {
    const key = $("key-input").value.trim();
    if (!key) {
      e.preventDefault();
      return;
    }
    state.key = key;
    try {
      localStorage.setItem(KEY_STORE, key);
    } catch {
      /* kept for this page only */
    }
    start();
  });
  // Re-fit on any size change (a TV's resolution, the header wrapping, the alerts strip).
  const sizes = new Map();
  const observer = new ResizeObserver((entries) => {
    let changed = false;
    for (const entry of entries) {
      const size = `${entry.contentRect.width}x${entry.contentRect.height}`;
      if (sizes.get(entry.target) !== size) changed = true;
      sizes.set(entry.target, size);
    }
    if (!changed) return;
    fitTiles();
    state.rowsPerPage = Infinity;
    renderReps();
    renderLeaders();
    renderAlerts();
  });
  observer.observe($("reps-wrap"));
  observer.observe($("totals"));
  observer.observe($("alerts"));
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") refreshTeam();
  });
}

async function init() {
  await loadGlossary(renderAll);
  const fromUrl = params.get("key");
  let stored = null;
  try {
    stored = localStorage.getItem(KEY_STORE);
    if (fromUrl) localStorage.setItem(KEY_STORE, fromUrl);
  } catch {
    /* no storage: the URL key still works for this page */
  }
  state.key = fromUrl || stored;
  if (fromUrl) updateUrl(); // the key leaves the address bar (and screenshots of it)
  bind();
  installCompetitions();
  renderAll();
  tick();
  setInterval(tick, 1000);
  setInterval(() => {
    state.page += 1;
    renderReps();
  }, PAGE_MS);
  setInterval(refreshTeams, TEAMS_MS);
  setInterval(() => state.live && refreshLeaders(), LEADERS_MS * 3);
  start();
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
else init();
