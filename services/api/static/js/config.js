/* What the board shows and how often it asks: the KPI lists, the quality floors, the timings. */

export const WINDOWS = ["today", "hour", "15m", "60m", "week", "month"];
export const STATUSES = ["on_call", "ringing", "wrap_up", "idle"];
export const ADDITIVE = new Set([
  "dials", "inbound_calls", "connects", "talk_seconds", "conversations", "conversions",
  "revenue", "csat_responses",
]);
export const TILES = [
  "dials", "connects", "connect_rate", "talk_seconds",
  "conversions", "conversion_rate", "revenue", "csat_avg",
];
export const COLUMNS = [
  "dials", "connects", "connect_rate", "talk_seconds", "avg_talk_seconds",
  "conversions", "conversion_rate", "revenue", "csat_avg",
];
export const METRICS = [
  "conversions", "revenue", "dials", "connects", "talk_seconds", "conversion_rate",
  "avg_talk_seconds", "csat_avg",
];
// Quality floors for ratio leaderboards: nobody leads on one lucky call.
export const FLOORS = {
  conversion_rate: ["connects", 3],
  avg_talk_seconds: ["connects", 3],
  csat_avg: ["csat_responses", 3],
  connect_rate: ["dials", 10],
};
export const POLL_MS = 5000;
export const LIVE_REFRESH_MS = 30000; // rolling windows move even without events
export const TEAMS_MS = 60000;
export const LEADERS_MS = 10000;
export const PAGE_MS = 10000;
export const STALE_MS = 45000; // > the stream's 15 s pings and the 5 s polls
export const STREAM_IDLE_MS = 45000; // the server pings every 15 s
export const KEY_STORE = "callpulse.key";
export const PREFS_STORE = "callpulse.wallboard";
export const ALERTS_MS = 15000; // acknowledgements are not on the stream
