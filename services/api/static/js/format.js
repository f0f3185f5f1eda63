/* Numbers, amounts, durations and times in the page's language (Intl, no library). */

import { locale } from "./i18n.js";
import { state } from "./state.js";

export function fmtInt(n) {
  return new Intl.NumberFormat(locale(), { maximumFractionDigits: 0 }).format(n);
}

export function fmtPct(r) {
  return r === null || r === undefined
    ? "–"
    : new Intl.NumberFormat(locale(), {
      style: "percent", minimumFractionDigits: 1, maximumFractionDigits: 1,
    }).format(r);
}

export function fmtShare(r) {
  return new Intl.NumberFormat(locale(), { style: "percent", maximumFractionDigits: 0 }).format(r);
}

export function fmtMoney(v) {
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

export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const s = Math.max(0, Math.round(seconds));
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return hh > 0 ? `${hh}:${String(mm).padStart(2, "0")}:${ss}` : `${mm}:${ss}`;
}

/** A KPI's value as the board shows it: rates in %, durations m:ss, amounts, CSAT 4.5. */
export function fmt(kpi, value) {
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

/** A target or threshold: like `fmt`, but rates as whole percentages where they are ("10%"). */
export function fmtGoal(kpi, value) {
  if (value === null || value === undefined) return "–";
  if (kpi === "connect_rate" || kpi === "conversion_rate") {
    return new Intl.NumberFormat(locale(), { style: "percent", maximumFractionDigits: 1 }).format(value);
  }
  return fmt(kpi, value);
}

export function fmtTime(date) {
  return date.toLocaleTimeString(locale(), { hour: "2-digit", minute: "2-digit", hour12: false });
}

export function fmtClock(date) {
  return date.toLocaleTimeString(locale(), {
    hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
  });
}

/** How long since `iso`, as m:ss (h:mm:ss past an hour); "" without a time. */
export function since(iso) {
  if (!iso) return "";
  const ms = Date.now() - Date.parse(iso);
  return Number.isFinite(ms) ? fmtDuration(Math.max(0, ms / 1000)) : "";
}
