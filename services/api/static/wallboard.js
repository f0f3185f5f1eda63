/* callpulse wallboard: plain JavaScript, no build step, no third-party code.
 *
 * Data: GET /v1/teams/{team}/kpis (totals and a row per rep), GET /v1/leaderboard, and the live
 * stream GET /v1/stream?team_id= read with fetch() (EventSource cannot send the Authorization
 * header). Every `kpi` event updates the rep's status at once and schedules a re-read of the team
 * (at most one per second); when the stream is down the page polls every 5 s and reconnects with
 * backoff. URL parameters: key, team, window, lang, sort, metric, currency. Every URL is
 * relative to the page, so the board also works behind a reverse proxy's path prefix.
 *
 * KPI and window names come from the glossary the alerts use too (schemas/glossary.py, served as
 * static/glossary.json), so the board and its alert messages call each number by one name.
 */
"use strict";

(() => {
  const WINDOWS = ["today", "hour", "15m", "60m", "week", "month"];
  const STATUSES = ["on_call", "ringing", "wrap_up", "idle"];
  const ADDITIVE = new Set([
    "dials", "inbound_calls", "connects", "talk_seconds", "conversations", "conversions",
    "revenue", "csat_responses",
  ]);
  const TILES = [
    "dials", "connects", "connect_rate", "talk_seconds",
    "conversions", "conversion_rate", "revenue", "csat_avg",
  ];
  const COLUMNS = [
    "dials", "connects", "connect_rate", "talk_seconds", "avg_talk_seconds",
    "conversions", "conversion_rate", "revenue", "csat_avg",
  ];
  const METRICS = [
    "conversions", "revenue", "dials", "connects", "talk_seconds", "conversion_rate",
    "avg_talk_seconds", "csat_avg",
  ];
  // Quality floors for ratio leaderboards: nobody leads on one lucky call.
  const FLOORS = {
    conversion_rate: ["connects", 3],
    avg_talk_seconds: ["connects", 3],
    csat_avg: ["csat_responses", 3],
    connect_rate: ["dials", 10],
  };
  const POLL_MS = 5000;
  const LIVE_REFRESH_MS = 30000; // rolling windows move even without events
  const TEAMS_MS = 60000;
  const LEADERS_MS = 10000;
  const PAGE_MS = 10000;
  const STALE_MS = 45000; // > the stream's 15 s pings and the 5 s polls
  const STREAM_IDLE_MS = 45000; // the server pings every 15 s
  const KEY_STORE = "callpulse.key";
  const PREFS_STORE = "callpulse.wallboard";

  const I18N = {
    en: {
      title: "callpulse wallboard", team: "Team", reps: "Reps", rep: "Rep",
      leaderboard: "Leaderboard", alerts: "Alerts", no_alerts: "No alerts firing",
      more: "+{n} more", status: "Status",
      s_idle: "Idle", s_ringing: "Ringing", s_on_call: "On call", s_wrap_up: "Wrap-up",
      live: "Live", polling: "Polling every 5 s", offline: "Offline", connecting: "Connecting…",
      updated: "Updated {t}", lag: "lag {s} s",
      of_target: "{v} of {t}", target_is: "target {t}", expected: "expected by now {v}",
      inbound_n: "{n} inbound", conversations_n: "{n} conversations", avg_n: "avg {v}",
      avg_deal_n: "avg deal {v}", responses_n: "{n} responses", per_dial: "{a} of {b} dials",
      per_connect: "of {n} connects",
      // English singulars, used when the count is 1 (`t(name, vars, count)`).
      conversations_n_one: "{n} conversation", responses_n_one: "{n} response",
      per_dial_one: "{a} of {b} dial", per_connect_one: "of {n} connect",
      key_title: "API key",
      key_help: "Enter an API key of this callpulse (the viewer role is enough). " +
        "It is kept in this browser only.",
      key_save: "Save", key_bad: "That key was refused. Check it and try again.",
      change_key: "Change API key",
      no_teams: "No teams yet: reps appear once events carry a team_id or the roster " +
        "puts them in a team.",
      unknown_team: "Team “{t}” has no data yet.",
      no_reps: "No reps in this team yet.", no_leaders: "Nobody ranked yet.",
      floor: "Ranked from {n} {kpi}.", page: "{a} / {b}",
      stale: "No fresh data for {s} s: showing the last numbers received.",
      error: "The server did not answer ({e}); retrying.",
      k_threshold: "threshold", k_pace: "pace", k_idle: "idle", k_missed: "missed",
      lang_other: "中文",
    },
    zh: {
      title: "callpulse 实时看板", team: "团队", reps: "坐席", rep: "坐席",
      leaderboard: "排行榜", alerts: "告警", no_alerts: "当前无告警",
      more: "另有 {n} 条", status: "状态",
      s_idle: "空闲", s_ringing: "振铃", s_on_call: "通话中", s_wrap_up: "话后处理",
      live: "实时", polling: "每 5 秒刷新", offline: "离线", connecting: "连接中…",
      updated: "更新于 {t}", lag: "延迟 {s} 秒",
      of_target: "{v} / 目标 {t}", target_is: "目标 {t}", expected: "此刻应达 {v}",
      inbound_n: "呼入 {n}", conversations_n: "有效通话 {n}", avg_n: "平均 {v}",
      avg_deal_n: "客单价 {v}", responses_n: "{n} 条评价", per_dial: "{a} / {b} 外呼",
      per_connect: "共 {n} 个接通",
      key_title: "API 密钥",
      key_help: "请输入本系统的 API 密钥（viewer 角色即可）。密钥只保存在本浏览器中。",
      key_save: "保存", key_bad: "密钥被拒绝，请检查后重试。",
      change_key: "更换 API 密钥",
      no_teams: "暂无团队：通话事件带有 team_id，或名册把坐席分入团队后即会显示。",
      unknown_team: "团队“{t}”暂无数据。",
      no_reps: "该团队暂无坐席。", no_leaders: "暂无排名。",
      floor: "至少 {n} 个{kpi}才参与排名。", page: "{a} / {b}",
      stale: "已 {s} 秒未收到新数据：显示的是最后一次的数字。",
      error: "服务器未响应（{e}），正在重试。",
      k_threshold: "阈值", k_pace: "进度", k_idle: "空闲", k_missed: "未达标",
      lang_other: "English",
    },
  };

  // ---------------------------------------------------------------- state

  /** `schemas.glossary.Glossary`: {kpis: {dials: {en, zh, short: {en, zh}, unit}}, windows}. */
  let glossary = { kpis: {}, windows: {} };

  const params = new URLSearchParams(location.search);
  const prefs = loadPrefs();
  const state = {
    key: null,
    lang: pick(params.get("lang"), ["en", "zh"]) || prefs.lang || browserLang(),
    team: params.get("team") || prefs.team || null,
    window: pick(params.get("window"), WINDOWS) || prefs.window || "today",
    metric: pick(params.get("metric"), METRICS) || prefs.metric || "conversions",
    sort: parseSort(params.get("sort")) || validSort(prefs.sort) || { key: "conversions", dir: -1 },
    currency: (params.get("currency") || "").toUpperCase() || null,
    teams: new Set(),
    data: null, // the last TeamKpisOut
    leaders: null, // the last LeaderboardOut
    alerts: new Map(), // alert_id -> Alert (firing only)
    lastOk: 0,
    live: false,
    page: 0,
    rowsPerPage: Infinity,
    stream: null, // AbortController of the open stream
    timers: {},
    generation: 0, // bumped on team change: late answers for the old team are dropped
  };

  // ---------------------------------------------------------------- helpers

  const $ = (id) => document.getElementById(id);

  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "class") el.className = value;
      else if (name === "text") el.textContent = value;
      else el.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }

  function t(name, vars, count) {
    const table = I18N[state.lang] || I18N.en;
    const one = count === 1 ? table[`${name}_one`] : undefined;
    let text = one ?? table[name] ?? I18N.en[name] ?? name;
    for (const [k, v] of Object.entries(vars || {})) text = text.replaceAll(`{${k}}`, String(v));
    return text;
  }

  /** A KPI's name from the glossary (its identifier until the glossary is loaded). */
  function kpiName(kpi) {
    const entry = glossary.kpis[kpi];
    return (entry && entry[state.lang]) || kpi;
  }

  /** A KPI's short name, for table columns. */
  function kpiShort(kpi) {
    const entry = glossary.kpis[kpi];
    return (entry && entry.short && entry.short[state.lang]) || kpiName(kpi);
  }

  function windowName(w) {
    const entry = glossary.windows[w];
    return (entry && entry[state.lang]) || w;
  }

  /** A name inside an English sentence: "Connects" -> "connects"; acronyms ("CSAT") stay. */
  function inSentence(name) {
    if (state.lang !== "en" || /^.[A-Z]/.test(name)) return name;
    return name.charAt(0).toLowerCase() + name.slice(1);
  }

  function pick(value, allowed) {
    return allowed.includes(value) ? value : null;
  }

  /** `?sort=dials` (highest first), `?sort=dials:asc`, `?sort=rep_id` (A to Z). */
  function parseSort(value) {
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
  function defaultDir(key) {
    return key === "rep_id" ? 1 : -1;
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

  function savePrefs() {
    const { lang, team, window, metric, sort } = state;
    try {
      localStorage.setItem(PREFS_STORE, JSON.stringify({ lang, team, window, metric, sort }));
    } catch {
      /* private mode: preferences live only as long as the page */
    }
  }

  function locale() {
    return state.lang === "zh" ? "zh-CN" : "en-US";
  }

  function fmtInt(n) {
    return new Intl.NumberFormat(locale(), { maximumFractionDigits: 0 }).format(n);
  }

  function fmtPct(r) {
    return r === null || r === undefined
      ? "–"
      : new Intl.NumberFormat(locale(), {
        style: "percent", minimumFractionDigits: 1, maximumFractionDigits: 1,
      }).format(r);
  }

  function fmtShare(r) {
    return new Intl.NumberFormat(locale(), { style: "percent", maximumFractionDigits: 0 }).format(r);
  }

  function fmtMoney(v) {
    if (v === null || v === undefined) return "–";
    const digits = Math.abs(v) >= 1000 ? 0 : 2;
    const options = { minimumFractionDigits: 0, maximumFractionDigits: digits };
    if (state.currency) {
      try {
        return new Intl.NumberFormat(locale(), {
          ...options, style: "currency", currency: state.currency,
        }).format(v);
      } catch {
        /* an unknown currency code: plain number */
      }
    }
    return new Intl.NumberFormat(locale(), options).format(v);
  }

  function fmtDuration(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    const s = Math.max(0, Math.round(seconds));
    const hh = Math.floor(s / 3600);
    const mm = Math.floor((s % 3600) / 60);
    const ss = String(s % 60).padStart(2, "0");
    return hh > 0 ? `${hh}:${String(mm).padStart(2, "0")}:${ss}` : `${mm}:${ss}`;
  }

  function fmt(kpi, value) {
    if (value === null || value === undefined) return "–";
    switch (kpi) {
      case "connect_rate":
      case "conversion_rate":
        return fmtPct(value);
      case "talk_seconds":
      case "avg_talk_seconds":
        return fmtDuration(value);
      case "revenue":
      case "avg_deal":
        return fmtMoney(value);
      case "csat_avg":
        return new Intl.NumberFormat(locale(), {
          minimumFractionDigits: 1, maximumFractionDigits: 1,
        }).format(value);
      default:
        return fmtInt(value);
    }
  }

  function fmtTime(date) {
    return date.toLocaleTimeString(locale(), { hour: "2-digit", minute: "2-digit", hour12: false });
  }

  function fmtClock(date) {
    return date.toLocaleTimeString(locale(), {
      hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
    });
  }

  function since(iso) {
    if (!iso) return "";
    const ms = Date.now() - Date.parse(iso);
    return Number.isFinite(ms) ? fmtDuration(Math.max(0, ms / 1000)) : "";
  }

  // ---------------------------------------------------------------- targets and pace

  /** "met", "behind" (under 90 % of the pro-rata expectation) or "on_track". */
  function pace(value, target, expected) {
    if (value === null || value === undefined || !target) return null;
    if (value >= target) return "met";
    if (expected !== null && expected !== undefined && expected > 0 && value < expected * 0.9) {
      return "behind";
    }
    return "on_track";
  }

  /** A team's target for `kpi` over the shown window, combined from its reps' targets. */
  function teamTarget(data, kpi) {
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

  function repTarget(rep, kpi, window) {
    return (rep.targets || []).find((tp) => tp.kpi === kpi && tp.window === window) || null;
  }

  function progressBar(goal, cls) {
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

  // ---------------------------------------------------------------- rendering

  function renderStatic() {
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
        button.addEventListener("click", () => setWindow(w));
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

  function renderTeams() {
    const select = $("team");
    const teams = [...state.teams].sort((a, b) => a.localeCompare(b));
    if (state.team && !teams.includes(state.team)) teams.unshift(state.team);
    select.replaceChildren(
      ...teams.map((id) => h("option", { value: id, selected: id === state.team, text: id })),
    );
    select.disabled = teams.length === 0;
  }

  function renderTotals() {
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
    for (const el of document.querySelectorAll(".tile .value")) fitText(el);
  }

  /** Shrink a big number until it fits its tile (long durations and amounts), never clip it. */
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
      case "connects":
        return t("conversations_n", { n: fmtInt(d.conversations) }, d.conversations);
      case "connect_rate":
        return t("per_dial", { a: fmtInt(d.connects - d.inbound_calls), b: fmtInt(d.dials) }, d.dials);
      case "talk_seconds":
        return t("avg_n", { v: fmtDuration(d.avg_talk_seconds) });
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

  /** "target 600 · 94 %" under a tile; the bar's tick is the pro-rata expectation by now. */
  function targetText(kpi, goal) {
    const text = t("target_is", { t: fmt(kpi, goal.target) });
    const share = goal.value === null || goal.value === undefined ? null : goal.value / goal.target;
    return share === null ? text : `${text} · ${fmtShare(share)}`;
  }

  function targetTitle(kpi, goal) {
    let text = t("of_target", { v: fmt(kpi, goal.value), t: fmt(kpi, goal.target) });
    if (goal.expected > 0 && goal.expected < goal.target) {
      text += ` · ${t("expected", { v: fmt(kpi, goal.expected) })}`;
    }
    return text;
  }

  function renderHead() {
    const head = $("reps-head");
    const cols = [
      ["rank", "#", "rank"],
      ["rep_id", t("rep"), "l"],
      ["status", t("status"), "l"],
      ...COLUMNS.map((c) => [c, kpiShort(c), ""]),
    ];
    head.replaceChildren(
      ...cols.map(([key, label, cls]) => {
        const th = h("th", { class: cls || null, scope: "col", "data-sort": key, text: label });
        if (key === state.sort.key) {
          th.setAttribute("aria-sort", state.sort.dir === 1 ? "ascending" : "descending");
        }
        if (key !== "rank") th.addEventListener("click", () => setSort(key));
        return th;
      }),
    );
  }

  function sortedReps() {
    const reps = state.data ? [...state.data.reps] : [];
    const { key, dir } = state.sort;
    // Status: the more active, the higher (on call > ringing > wrap-up > idle).
    const value = (rep) => (key === "status" ? STATUSES.length - STATUSES.indexOf(rep.status) : rep[key]);
    reps.sort((a, b) => {
      if (key === "rep_id") return dir * repLabel(a).localeCompare(repLabel(b));
      const va = value(a);
      const vb = value(b);
      if (va !== vb) {
        if (va === null || va === undefined) return 1; // no value: last, either way
        if (vb === null || vb === undefined) return -1;
        return dir * (va - vb);
      }
      return (b.dials - a.dials) || a.rep_id.localeCompare(b.rep_id);
    });
    return reps;
  }

  function repLabel(rep) {
    return rep.rep_name || rep.rep_id;
  }

  function repRow(rep, rank, window) {
    const behind = (rep.targets || []).some(
      (tp) => tp.window === window && pace(tp.value, tp.target, tp.expected) === "behind",
    );
    const nameCell = h(
      "td",
      { class: "l" },
      h("span", { class: "name", text: repLabel(rep) }),
      rep.rep_name && rep.rep_name !== rep.rep_id ? h("span", { class: "rid", text: rep.rep_id }) : null,
    );
    const cells = COLUMNS.map((kpi) => {
      const value = rep[kpi];
      const goal = repTarget(rep, kpi, window);
      const td = h("td", {
        class: value === null || value === undefined ? "n null" : "n",
        "data-kpi": kpi,
        "data-value": value ?? "",
        text: fmt(kpi, value),
      });
      if (goal) {
        const bar = h("div", {
          class: "cell-bar",
          "data-pace": pace(goal.value, goal.target, goal.expected),
          title: targetTitle(kpi, goal),
        });
        const fill = h("span");
        fill.style.width = `${Math.min(1, (goal.value || 0) / goal.target) * 100}%`;
        bar.append(fill);
        td.append(bar);
      }
      return td;
    });
    return h(
      "tr",
      { "data-rep-id": rep.rep_id, "data-status": rep.status, class: behind ? "behind" : null },
      h("td", { class: "rank", text: rank }),
      nameCell,
      h("td", { class: "l" }, statusBadge(rep.status, rep.status_since)),
      cells,
    );
  }

  function statusBadge(status, sinceIso) {
    return h(
      "span",
      { class: "badge", "data-status": status },
      t(`s_${status}`),
      sinceIso ? h("span", { class: "since", "data-since": sinceIso, text: since(sinceIso) }) : null,
    );
  }

  function renderReps() {
    const body = $("reps-body");
    const data = state.data;
    if (!data) {
      body.replaceChildren();
      $("page").textContent = "";
      $("status-counts").replaceChildren();
      return;
    }
    const reps = sortedReps();
    if (!reps.length) {
      body.replaceChildren(
        h("tr", {}, h("td", { class: "empty", colspan: COLUMNS.length + 3, text: t("no_reps") })),
      );
      return;
    }
    const per = Math.max(1, state.rowsPerPage);
    const pages = Math.max(1, Math.ceil(reps.length / per));
    if (state.page >= pages) state.page = 0;
    const start = pages > 1 ? state.page * per : 0;
    const shown = pages > 1 ? reps.slice(start, start + per) : reps;
    body.replaceChildren(...shown.map((rep, i) => repRow(rep, start + i + 1, data.window)));
    $("page").textContent = pages > 1 ? t("page", { a: state.page + 1, b: pages }) : "";

    const counts = data.status_counts || {};
    $("status-counts").replaceChildren(
      ...STATUSES.filter((s) => counts[s]).map((s) =>
        h("span", { class: "badge", "data-status": s }, t(`s_${s}`), " ", h("b", { text: counts[s] })),
      ),
    );
    fitPage(reps.length);
  }

  /** On a TV nobody scrolls: show as many rows as fit and turn the pages every 10 s. */
  function fitPage(total) {
    const wrap = $("reps-wrap");
    if (getComputedStyle(wrap).overflowY !== "hidden") {
      if (state.rowsPerPage !== Infinity) {
        state.rowsPerPage = Infinity;
        renderReps();
      }
      return;
    }
    const row = $("reps-body").querySelector("tr");
    const head = $("reps-head");
    if (!row || !row.offsetHeight) return;
    const fits = Math.max(1, Math.floor((wrap.clientHeight - head.offsetHeight) / row.offsetHeight));
    const want = fits >= total ? Infinity : fits;
    if (want !== state.rowsPerPage) {
      state.rowsPerPage = want;
      renderReps();
    }
  }

  function renderLeaders() {
    const list = $("leaders");
    const lb = state.leaders;
    const floor = FLOORS[state.metric];
    $("floor-note").textContent = floor
      ? t("floor", { n: floor[1], kpi: inSentence(kpiName(floor[0])) })
      : "";
    if (!lb || !lb.rows.length) {
      list.replaceChildren(h("li", { class: "empty", text: lb ? t("no_leaders") : "" }));
      return;
    }
    const top = Math.max(...lb.rows.map((r) => r.value), 0);
    list.replaceChildren(
      ...lb.rows.map((row) =>
        h(
          "li",
          { "data-rank": row.rank, "data-rep-id": row.rep_id },
          h("span", { class: "rank", text: row.rank }),
          h(
            "span",
            { class: "who" },
            h("span", { class: "name", text: row.rep_name || row.rep_id }),
            progressBar(top > 0 ? { value: row.value, target: top, expected: null } : null),
          ),
          h("span", { class: "value", text: fmt(lb.metric, row.value) }),
        ),
      ),
    );
  }

  function renderAlerts() {
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

  function renderConn() {
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

  function notice(text, level) {
    const el = $("notice");
    el.hidden = !text;
    el.textContent = text || "";
    if (level) el.dataset.level = level;
    else delete el.dataset.level;
  }

  function renderAll() {
    renderStatic();
    renderTeams();
    renderTotals();
    renderReps();
    renderLeaders();
    renderAlerts();
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

  // ---------------------------------------------------------------- HTTP

  class Unauthorized extends Error {}

  async function api(path) {
    const response = await fetch(path, {
      headers: { Authorization: `Bearer ${state.key}`, Accept: "application/json" },
      cache: "no-store",
    });
    if (response.status === 401) throw new Unauthorized();
    if (!response.ok) {
      const error = new Error(`HTTP ${response.status}`);
      error.status = response.status;
      throw error;
    }
    return response.json();
  }

  function q(values) {
    const search = new URLSearchParams();
    for (const [k, v] of Object.entries(values)) if (v !== null && v !== undefined) search.set(k, v);
    return search.toString();
  }

  function failed(error) {
    if (error instanceof Unauthorized) {
      askKey(true);
      return;
    }
    if (error && error.name === "AbortError") return;
    notice(t("error", { e: error && error.message ? error.message : String(error) }), "error");
  }

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

  async function refreshLeaders() {
    if (!state.key || !state.team) return;
    const generation = state.generation;
    const floor = FLOORS[state.metric];
    const query = {
      metric: state.metric, window: state.window, team_id: state.team, limit: 10,
    };
    if (floor) query[`min_${floor[0]}`] = floor[1];
    try {
      const lb = await api(`v1/leaderboard?${q(query)}`);
      if (generation !== state.generation) return;
      state.leaders = lb;
      renderLeaders();
    } catch (error) {
      if (generation === state.generation) failed(error);
    }
  }

  /** Teams seen: every team with a rep in the read model (the leaderboard spans all teams). */
  async function refreshTeams() {
    if (!state.key) return;
    try {
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

  /** The team's firing alerts at start (`AlertsOut`: `{alerts: [Alert], generated_at}`); the
   * stream brings every later transition. */
  async function loadAlerts() {
    if (!state.key) return;
    try {
      const body = await api(`v1/alerts?${q({ state: "firing", team_id: state.team })}`);
      for (const a of body.alerts) state.alerts.set(a.alert_id, a);
      renderAlerts();
    } catch (error) {
      failed(error);
    }
  }

  /** The KPI and window names; until they arrive (or after a failure, retried every 5 s) the
   * board shows identifiers. */
  async function loadGlossary() {
    try {
      const response = await fetch("static/glossary.json", {
        headers: { Accept: "application/json" },
        // Never hold the board on it: without the glossary it still shows every number.
        signal: AbortSignal.timeout ? AbortSignal.timeout(POLL_MS) : undefined,
      });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      glossary = await response.json();
      return true;
    } catch {
      setTimeout(async () => {
        if (await loadGlossary()) renderAll();
      }, POLL_MS);
      return false;
    }
  }

  // ---------------------------------------------------------------- live stream

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

  let lastLeaders = 0;
  function scheduleLeaders() {
    if (Date.now() - lastLeaders < LEADERS_MS / 2) return;
    lastLeaders = Date.now();
    setTimeout(refreshLeaders, 1500);
  }

  function onKpi(snapshot) {
    if (!state.data || snapshot.team_id !== state.team) {
      scheduleRefresh();
      return;
    }
    const rep = state.data.reps.find((r) => r.rep_id === snapshot.rep_id);
    if (rep && (rep.status !== snapshot.status || rep.status_since !== snapshot.status_since)) {
      rep.status = snapshot.status;
      rep.status_since = snapshot.status_since;
      const row = document.querySelector(`tr[data-rep-id="${CSS.escape(rep.rep_id)}"]`);
      if (row) {
        row.dataset.status = rep.status;
        row.children[2].replaceChildren(statusBadge(rep.status, rep.status_since));
      }
    }
    scheduleRefresh();
    scheduleLeaders();
  }

  function onAlert(alert) {
    if (alert.state === "firing") state.alerts.set(alert.alert_id, alert);
    else state.alerts.delete(alert.alert_id);
    renderAlerts();
  }

  function dispatch(event, data) {
    if (!data) return;
    let body;
    try {
      body = JSON.parse(data);
    } catch {
      return;
    }
    if (event === "kpi") onKpi(body);
    else if (event === "alert") onAlert(body);
  }

  async function openStream() {
    closeStream();
    if (!state.key || !state.team || !window.ReadableStream || !window.TextDecoderStream) return;
    const controller = new AbortController();
    state.stream = controller;
    let idle = null;
    const watchdog = () => {
      clearTimeout(idle);
      idle = setTimeout(() => controller.abort(), STREAM_IDLE_MS);
    };
    try {
      const response = await fetch(`v1/stream?${q({ team_id: state.team })}`, {
        headers: { Authorization: `Bearer ${state.key}`, Accept: "text/event-stream" },
        cache: "no-store",
        signal: controller.signal,
      });
      if (response.status === 401) throw new Unauthorized();
      if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
      state.live = true;
      state.backoff = 1000;
      renderConn();
      watchdog();
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      let event = "message";
      let data = [];
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        watchdog();
        state.lastOk = Date.now(); // data or the server's ping: the numbers are current
        buffer += value;
        const lines = buffer.split(/\r\n|\r|\n/);
        buffer = lines.pop();
        for (const line of lines) {
          if (line === "") {
            dispatch(event, data.join("\n"));
            event = "message";
            data = [];
          } else if (line.startsWith(":")) {
            continue; // a comment: the server's keep-alive ping
          } else {
            const colon = line.indexOf(":");
            const field = colon < 0 ? line : line.slice(0, colon);
            let val = colon < 0 ? "" : line.slice(colon + 1);
            if (val.startsWith(" ")) val = val.slice(1);
            if (field === "event") event = val;
            else if (field === "data") data.push(val);
          }
        }
      }
    } catch (error) {
      if (error instanceof Unauthorized) {
        failed(error);
        return;
      }
    } finally {
      clearTimeout(idle);
    }
    if (state.stream !== controller) return; // replaced on purpose (team change)
    state.stream = null;
    state.live = false;
    renderConn();
    // Poll meanwhile; reconnect with backoff.
    const delay = state.backoff || 1000;
    state.backoff = Math.min(delay * 2, 30000);
    clearTimeout(state.timers.reconnect);
    state.timers.reconnect = setTimeout(openStream, delay);
  }

  function closeStream() {
    const controller = state.stream;
    state.stream = null;
    state.live = false;
    if (controller) controller.abort();
  }

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

  function setSort(key) {
    if (state.sort.key === key) state.sort = { key, dir: -state.sort.dir };
    else state.sort = { key, dir: defaultDir(key) };
    state.page = 0;
    savePrefs();
    renderHead();
    renderReps();
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
      for (const el of document.querySelectorAll(".tile .value")) fitText(el);
      state.rowsPerPage = Infinity;
      renderReps();
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
    await loadGlossary();
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
})();
