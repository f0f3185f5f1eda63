/* Numbers as the coaching page shows them, by the KPI's unit (the glossary's). */

export function unitOf(glossary, kpi) {
  return (glossary.kpis && glossary.kpis[kpi] && glossary.kpis[kpi].unit) || "count";
}

export function fmt(unit, value) {
  if (value === null || value === undefined) return "–";
  if (unit === "ratio") return `${(value * 100).toFixed(1)} %`;
  if (unit === "seconds") {
    const s = Math.round(value);
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const rest = String(s % 60).padStart(2, "0");
    return h ? `${h}:${String(m).padStart(2, "0")}:${rest}` : `${m}:${rest}`;
  }
  if (unit === "currency") return value.toLocaleString(undefined, { maximumFractionDigits: 0 });
  if (unit === "score") return value.toFixed(2);
  return Number.isInteger(value) ? value.toLocaleString() : value.toFixed(1);
}

export function fmtChange(unit, change) {
  if (change === null || change === undefined) return "–";
  const sign = change > 0 ? "+" : change < 0 ? "−" : "±";
  return `${sign}${fmt(unit, Math.abs(change))}`;
}

export function fmtPct(r) {
  return r === null || r === undefined ? "–" : `${(r * 100).toFixed(1)} %`;
}
