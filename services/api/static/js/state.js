/* The page's one mutable state, the glossary it names things by, and the URL and stored
 * preferences it starts from. Modules read and write `state` directly; views re-render from it. */

import { COLUMNS, METRICS, PREFS_STORE, WINDOWS } from "./config.js";

/** `schemas.glossary.Glossary`: {kpis: {dials: {en, zh, short: {en, zh}, unit}}, windows}.
 * Filled in place once static/glossary.json arrives (identifiers are shown until then). */
export const glossary = { kpis: {}, windows: {} };

export const params = new URLSearchParams(location.search);

export function pick(value, allowed) {
  return allowed.includes(value) ? value : null;
}

/** `?sort=dials` (highest first), `?sort=dials:asc`, `?sort=rep_id` (A to Z). */
export function parseSort(value) {
  if (!value) return null;
  const [key, order] = value.split(":");
  if (key !== "rep_id" && key !== "status" && !COLUMNS.includes(key)) return null;
  const dir = order === "asc" ? 1 : order === "desc" ? -1 : defaultDir(key);
  return { key, dir };
}

function validSort(sort) {
  if (!sort || (sort.dir !== 1 && sort.dir !== -1)) return null;
  return parseSort(String(sort.key)) ? { key: sort.key, dir: sort.dir } : null;
}

/** +1 ascending, -1 descending: names A to Z, numbers highest first. */
export function defaultDir(key) {
  return key === "rep_id" ? 1 : -1;
}

/** `?lang=`: "zh", "zh-CN", "zh_CN", "zh-Hans"... are Chinese; "en", "en-GB"... English. */
export function langOf(value) {
  const tag = String(value || "").toLowerCase();
  if (/^zh([-_]|$)/.test(tag)) return "zh";
  if (/^en([-_]|$)/.test(tag)) return "en";
  return null;
}

function browserLang() {
  return (navigator.language || "").toLowerCase().startsWith("zh") ? "zh" : "en";
}

function loadPrefs() {
  try {
    return JSON.parse(localStorage.getItem(PREFS_STORE) || "{}") || {};
  } catch {
    return {};
  }
}

export function savePrefs() {
  const { lang, team, window, metric, sort } = state;
  try {
    localStorage.setItem(PREFS_STORE, JSON.stringify({ lang, team, window, metric, sort }));
  } catch {
    /* private mode: preferences live only as long as the page */
  }
}

const prefs = loadPrefs();

export const state = {
  key: null,
  lang: langOf(params.get("lang")) || langOf(prefs.lang) || browserLang(),
  team: params.get("team") || prefs.team || null,
  window: pick(params.get("window"), WINDOWS) || prefs.window || "today",
  metric: pick(params.get("metric"), METRICS) || prefs.metric || "conversions",
  sort: parseSort(params.get("sort")) || validSort(prefs.sort) || { key: "conversions", dir: -1 },
  currency: (params.get("currency") || "").toUpperCase() || null,
  teams: new Set(),
  teamNames: new Map(), // team_id -> the name set through the API
  data: null, // the last TeamKpisOut
  leaders: null, // the last LeaderboardOut
  alerts: new Map(), // alert_id -> Alert (firing only)
  lastOk: 0,
  live: false,
  page: 0,
  rowsPerPage: Infinity,
  stream: null, // AbortController of the open stream
  backoff: 1000, // the stream's next reconnect delay
  timers: {},
  generation: 0, // bumped on team change: late answers for the old team are dropped
};
