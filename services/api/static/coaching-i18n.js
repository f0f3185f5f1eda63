/* The coaching page's words in English and Simplified Chinese; KPI names come from the
 * glossary (static/glossary.json), the findings from the API in both languages. */

const WORDS = {
  en: {
    title: "Coaching", campaign: "Campaign", allCampaigns: "All", team: "Team", rep: "Rep", period: "Period", date: "Date", day: "Day",
    week: "Week", month: "Month", key: "API key", open: "Open", scorecard: "Scorecard",
    findings: "Findings", trend: "Trend over weeks", funnel: "Sales funnel",
    heatmap: "Best time to call", ranking: "Below the team", kpi: "KPI", value: "Value",
    target: "Target", median: "Team median", percentile: "Percentile", change: "vs previous",
    noFindings: "Nothing stands out: on par with the team.", teamRate: "team",
    losses: "Lost dials", reason: "Reason", count: "Count", teamCount: "Team",
    not_connected: "not answered", connected: "answered", none: "no outcome", open: "open",
    periodLine: "{start} – {end} ({tz}), compared with the period before; {n} reps in the team",
    heatLine: "Connect rate by local weekday and hour over {weeks} weeks ({tz}); hatched: fewer than {min} dials",
    weekdays: ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"], lang: "中文",
    stages: { dials: "Dials", connects: "Connects", conversations: "Conversations", conversions: "Conversions" },
    nobody: "Nobody below the median.", error: "Could not load: {e}", forbidden: "This key may not read that.",
  },
  zh: {
    title: "辅导", campaign: "活动", allCampaigns: "全部", team: "团队", rep: "坐席", period: "周期", date: "日期", day: "日", week: "周",
    month: "月", key: "API 密钥", open: "打开", scorecard: "成绩单", findings: "辅导要点",
    trend: "周趋势", funnel: "销售漏斗", heatmap: "最佳拨打时段", ranking: "低于团队",
    kpi: "指标", value: "数值", target: "目标", median: "团队中位数", percentile: "百分位",
    change: "较上期", noFindings: "表现与团队持平，暂无要点。", teamRate: "团队",
    losses: "流失外呼", reason: "原因", count: "数量", teamCount: "团队",
    not_connected: "未接通", connected: "已接通", none: "无结果", open: "未结束",
    periodLine: "{start} – {end}（{tz}），与上一周期对比；团队共 {n} 名坐席",
    heatLine: "近 {weeks} 周按本地星期和小时的接通率（{tz}）；斜纹：外呼少于 {min} 次",
    weekdays: ["周一", "周二", "周三", "周四", "周五", "周六", "周日"], lang: "English",
    stages: { dials: "外呼", connects: "接通", conversations: "有效通话", conversions: "成交" },
    nobody: "无人低于中位数。", error: "加载失败：{e}", forbidden: "此密钥无权查看。",
  },
};

const REASONS = {
  en: { no_answer: "no answer", busy: "busy", voicemail: "voicemail", failed: "failed",
    canceled: "canceled", not_interested: "not interested", callback: "callback",
    wrong_number: "wrong number" },
  zh: { no_answer: "无人接听", busy: "忙线", voicemail: "语音信箱", failed: "失败", canceled: "已取消",
    not_interested: "不感兴趣", callback: "约回电", wrong_number: "号码错误" },
};

export const lang = { current: "en" };

export function t(key, values = {}) {
  const text = WORDS[lang.current][key] ?? WORDS.en[key] ?? key;
  if (typeof text !== "string") return text;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(values[name] ?? ""));
}

export function reason(code) {
  return REASONS[lang.current][code] ?? t(code);
}

export function kpiName(glossary, kpi) {
  const entry = glossary.kpis && glossary.kpis[kpi];
  if (!entry) return kpi;
  return lang.current === "zh" ? entry.zh : entry.en;
}

/** Translate every element marked `data-t`. */
export function translate(root) {
  for (const el of root.querySelectorAll("[data-t]")) el.textContent = t(el.dataset.t);
  document.documentElement.lang = lang.current === "zh" ? "zh-CN" : "en";
  document.title = `callpulse · ${t("title")}`;
}
