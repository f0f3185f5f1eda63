// The wallboard's pure parts under Node's test runner (tests/unit/wallboard/test_js.py runs it):
// language tags, targets and pace, and alert chips in words in both languages.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

// What the modules read from a browser at import time; timers are not needed here.
globalThis.location = { search: "" };
globalThis.navigator = { language: "en-US" };
globalThis.localStorage = { getItem: () => null, setItem: () => {} };
globalThis.setInterval = () => 0;

const js = new URL("../../../../services/api/static/js/", import.meta.url);
const { glossary, langOf, state } = await import(new URL("state.js", js));
const { alertText } = await import(new URL("alerts.js", js));
const { fmtGoal } = await import(new URL("format.js", js));
const { pace, teamTarget } = await import(new URL("targets.js", js));
const { t } = await import(new URL("i18n.js", js));

// schemas.glossary.GLOSSARY, written by the Python side of the test.
Object.assign(glossary, JSON.parse(readFileSync(process.env.CALLPULSE_GLOSSARY_JSON, "utf8")));

function inLang(lang, fn) {
  const before = state.lang;
  state.lang = lang;
  try {
    return fn();
  } finally {
    state.lang = before;
  }
}

const alert = (fields) => ({
  alert_id: "a", state: "firing", kind: "threshold", rule: "r", rep_id: "rep-1",
  team_id: "team-1", kpi: "connect_rate", window: "60m", value: 0.03, threshold: 0.05,
  message_en: "server words", message_zh: "服务器原文", fired_at: "2026-12-02T10:00:00Z",
  ...fields,
});

test("every Chinese tag is Chinese, every English one English", () => {
  for (const tag of ["zh", "zh-CN", "zh_CN", "zh-Hans", "ZH-cn", "zh-TW"]) assert.equal(langOf(tag), "zh", tag);
  for (const tag of ["en", "en-GB", "EN_us"]) assert.equal(langOf(tag), "en", tag);
  for (const tag of ["", null, "fr", "zhx", "english"]) assert.equal(langOf(tag), null, String(tag));
});

test("a threshold alert reads in words with percentages, not raw ratios", () => {
  assert.equal(inLang("en", () => alertText(alert({}))), "connect rate (last 60 min) 3%, below 5%");
  assert.equal(inLang("zh", () => alertText(alert({}))), "接通率（近60分钟）3%，低于 5%");
  const above = alert({ kpi: "avg_talk_seconds", window: "today", value: 650, threshold: 600 });
  assert.equal(inLang("en", () => alertText(above)), "avg talk time (today) 10:50, above 10:00");
});

test("pace, idle and missed alerts read in words in both languages", () => {
  const paced = alert({ kind: "pace", kpi: "dials", window: "today", value: 12, threshold: 16.8 });
  assert.equal(inLang("en", () => alertText(paced)), "behind pace on dials: 12, under 17 by now");
  assert.equal(inLang("zh", () => alertText(paced)), "外呼量进度落后：12，此刻应不少于 17");
  const idle = alert({ kind: "idle", kpi: "dials", value: 12, threshold: 10 });
  assert.equal(inLang("en", () => alertText(idle)), "no calls for 12 min");
  const missed = alert({ kind: "missed", kpi: "conversion_rate", window: "today", value: 0.08, threshold: 0.1 });
  assert.equal(inLang("en", () => alertText(missed)), "missed today’s conversion rate target: 8% of 10%");
  assert.equal(inLang("zh", () => alertText(missed)), "今日转化率未达标：8% / 10%");
});

test("alerts the glossary cannot word keep the server's message", () => {
  const survey = alert({ kpi: "csat", window: "today", value: 2, threshold: 2 });
  assert.equal(inLang("en", () => alertText(survey)), "server words");
  assert.equal(inLang("zh", () => alertText(survey)), "服务器原文");
  const level = alert({ value: 0.05 });
  assert.equal(inLang("en", () => alertText(level)), "server words");
});

test("targets read as whole percentages where they are whole", () => {
  inLang("en", () => {
    assert.equal(fmtGoal("conversion_rate", 0.1), "10%");
    assert.equal(fmtGoal("connect_rate", 0.125), "12.5%");
    assert.equal(fmtGoal("avg_talk_seconds", 300), "5:00");
    assert.equal(fmtGoal("dials", 50), "50");
  });
});

test("pace: met, on track, or behind under 90 % of the expectation", () => {
  assert.equal(pace(50, 50, 20), "met");
  assert.equal(pace(19, 50, 20), "on_track");
  assert.equal(pace(17, 50, 20), "behind");
  assert.equal(pace(10, 50, null), "on_track");
  assert.equal(pace(null, 50, 20), null);
});

test("a team's target adds its reps' counts and averages their ratio targets", () => {
  const rep = (dials, expected) => ({
    targets: [
      { kpi: "dials", window: "today", target: 50, value: dials, expected },
      { kpi: "conversion_rate", window: "today", target: 0.1, value: 0.2, expected: null },
    ],
  });
  const data = { window: "today", conversion_rate: 0.12, reps: [rep(10, 20), rep(30, 20)] };
  assert.deepEqual(teamTarget(data, "dials"), { target: 100, value: 40, expected: 40 });
  assert.deepEqual(teamTarget(data, "conversion_rate"), { target: 0.1, value: 0.12, expected: null });
  assert.equal(teamTarget(data, "revenue"), null);
});

test("the connect captions name the same outbound connects", () => {
  inLang("en", () => {
    assert.equal(t("out_in", { o: 33, i: 9 }), "33 outbound + 9 inbound");
    assert.equal(t("per_dial", { a: 33, b: 135 }, 135), "33 outbound of 135 dials");
  });
  inLang("zh", () => {
    assert.equal(t("out_in", { o: 33, i: 9 }), "外呼 33 + 呼入 9");
    assert.equal(t("per_dial", { a: 33, b: 135 }, 135), "外呼接通 33 / 外呼 135");
  });
});
