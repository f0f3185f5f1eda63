/* HTTP: the API with the page's bearer key, relative URLs (the board also works behind a
 * reverse proxy's path prefix), and the glossary. A refused key emits "unauthorized". */

import { emit } from "./bus.js";
import { POLL_MS } from "./config.js";
import { notice } from "./dom.js";
import { t } from "./i18n.js";
import { glossary, state } from "./state.js";

export class Unauthorized extends Error {}

export async function api(path) {
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

/** A query string from the values that are set. */
export function q(values) {
  const search = new URLSearchParams();
  for (const [k, v] of Object.entries(values)) if (v !== null && v !== undefined) search.set(k, v);
  return search.toString();
}

/** Report a failed request: a refused key asks for another, an abort is nothing. */
export function failed(error) {
  if (error instanceof Unauthorized) {
    emit("unauthorized");
    return;
  }
  if (error && error.name === "AbortError") return;
  notice(t("error", { e: error && error.message ? error.message : String(error) }), "error");
}

/** The KPI and window names; until they arrive (or after a failure, retried every 5 s) the
 * board shows identifiers. `late()` runs when a retry succeeds. */
export async function loadGlossary(late) {
  try {
    const response = await fetch("static/glossary.json", {
      headers: { Accept: "application/json" },
      // Never hold the board on it: without the glossary it still shows every number.
      signal: AbortSignal.timeout ? AbortSignal.timeout(POLL_MS) : undefined,
    });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    Object.assign(glossary, await response.json());
    return true;
  } catch {
    setTimeout(async () => {
      if (await loadGlossary(late)) late();
    }, POLL_MS);
    return false;
  }
}
