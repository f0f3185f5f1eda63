/* The leaderboard: the team's top ten on the chosen metric, with a quality floor for ratios. */

import { api, failed, q } from "./api.js";
import { FLOORS, LEADERS_MS } from "./config.js";
import { $, h } from "./dom.js";
import { fmt } from "./format.js";
import { inSentence, kpiName, t } from "./i18n.js";
import { state } from "./state.js";
import { progressBar } from "./targets.js";

export function renderLeaders() {
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
  // Only whole rows: the ones that do not fit the panel go (a TV does not scroll).
  while (list.children.length > 1 && list.scrollHeight > list.clientHeight + 1) {
    list.lastElementChild.remove();
  }
}

export async function refreshLeaders() {
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

let lastLeaders = 0;

/** After live events: re-read the leaderboard, at most every 5 s. */
export function scheduleLeaders() {
  if (Date.now() - lastLeaders < LEADERS_MS / 2) return;
  lastLeaders = Date.now();
  setTimeout(refreshLeaders, 1500);
}
