/* The page's own words in English and Simplified Chinese, and the KPI and window names from the
 * glossary (the names the alert messages use too). `t(name, vars, count)` picks the label. */

import { glossary, state } from "./state.js";

export const I18N = {
  en: {
    title: "callpulse wallboard", team: "Team", reps: "Reps", rep: "Rep",
    leaderboard: "Leaderboard", alerts: "Alerts", no_alerts: "No alerts firing",
    more: "+{n} more", status: "Status",
    s_idle: "Idle", s_ringing: "Ringing", s_on_call: "On call", s_wrap_up: "Wrap-up",
    live: "Live", polling: "Polling every 5 s", offline: "Offline", connecting: "Connecting…",
    updated: "Updated {t}", lag: "lag {s} s",
    of_target: "{v} of {t}", target_is: "target {t}", expected: "expected by now {v}",
    inbound_n: "{n} inbound", conversations_n: "{n} conversations", avg_n: "avg {v}",
    avg_deal_n: "avg deal {v}", responses_n: "{n} responses",
    per_connect: "of {n} connects",
    // Connects count inbound calls answered too; connect rate is outbound connects per dial.
    out_in: "{o} outbound + {i} inbound", per_dial: "{a} outbound of {b} dials",
    rep_inbound: "incl. {n} in",
    // English singulars, used when the count is 1 (`t(name, vars, count)`).
    conversations_n_one: "{n} conversation", responses_n_one: "{n} response",
    per_dial_one: "{a} outbound of {b} dial", per_connect_one: "of {n} connect",
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
    // Alert chips in words, from the alert’s KPI, window, value and threshold.
    a_threshold: "{kpi} ({w}) {v}, {op} {t}", op_below: "below", op_above: "above",
    a_pace: "behind pace on {kpi}: {v}, under {t} by now", a_idle: "no calls for {v} min",
    a_missed: "missed today’s {kpi} target: {v} of {t}", acked: "acknowledged by {who}",
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
    avg_deal_n: "客单价 {v}", responses_n: "{n} 条评价",
    per_connect: "共 {n} 个接通",
    out_in: "外呼 {o} + 呼入 {i}", per_dial: "外呼接通 {a} / 外呼 {b}",
    rep_inbound: "含呼入 {n}",
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
    a_threshold: "{kpi}（{w}）{v}，{op} {t}", op_below: "低于", op_above: "高于",
    a_pace: "{kpi}进度落后：{v}，此刻应不少于 {t}", a_idle: "{v} 分钟无通话",
    a_missed: "今日{kpi}未达标：{v} / {t}", acked: "{who} 已确认",
    lang_other: "English",
  },
};

export function t(name, vars, count) {
  const table = I18N[state.lang] || I18N.en;
  const one = count === 1 ? table[`${name}_one`] : undefined;
  let text = one ?? table[name] ?? I18N.en[name] ?? name;
  for (const [k, v] of Object.entries(vars || {})) text = text.replaceAll(`{${k}}`, String(v));
  return text;
}

/** A KPI's name from the glossary (its identifier until the glossary is loaded). */
export function kpiName(kpi) {
  const entry = glossary.kpis[kpi];
  return (entry && entry[state.lang]) || kpi;
}

/** A KPI's short name, for table columns. */
export function kpiShort(kpi) {
  const entry = glossary.kpis[kpi];
  return (entry && entry.short && entry.short[state.lang]) || kpiName(kpi);
}

export function windowName(w) {
  const entry = glossary.windows[w];
  return (entry && entry[state.lang]) || w;
}

/** A name inside an English sentence: "Connects" -> "connects"; acronyms ("CSAT") stay. */
export function inSentence(name) {
  if (state.lang !== "en" || /^.[A-Z]/.test(name)) return name;
  return name.charAt(0).toLowerCase() + name.slice(1);
}

export function locale() {
  return state.lang === "zh" ? "zh-CN" : "en-US";
}
