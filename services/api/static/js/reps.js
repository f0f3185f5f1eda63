/* The rep table: sortable columns, live status badges, and pages that turn by themselves when
 * the rows do not fit (on a TV nobody scrolls). */

import { COLUMNS, STATUSES } from "./config.js";
import { $, h } from "./dom.js";
import { fmt, since } from "./format.js";
import { kpiShort, t } from "./i18n.js";
import { defaultDir, savePrefs, state } from "./state.js";
import { pace, repTarget, targetTitle } from "./targets.js";

export function renderHead() {
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

function setSort(key) {
  if (state.sort.key === key) state.sort = { key, dir: -state.sort.dir };
  else state.sort = { key, dir: defaultDir(key) };
  state.page = 0;
  savePrefs();
  renderHead();
  renderReps();
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
    // A rep's connects include inbound calls; the connect rate counts outbound ones only.
    if (kpi === "connects" && rep.inbound_calls > 0) {
      td.append(h("span", { class: "in", text: t("rep_inbound", { n: rep.inbound_calls }) }));
      td.title = t("out_in", { o: rep.connects - rep.inbound_calls, i: rep.inbound_calls });
    }
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

/** A rep's new status from the live stream, shown at once (the numbers follow the re-read). */
export function showStatus(snapshot) {
  if (!state.data || snapshot.team_id !== state.team) return;
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
}

export function renderReps() {
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

/** Show as many rows as fit and turn the pages every 10 s. */
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
