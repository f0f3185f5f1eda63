/* The live stream GET v1/stream?team_id= read with fetch() (EventSource cannot send the
 * Authorization header). Each server-sent event goes to the bus under its SSE name; when the
 * stream drops, it reconnects with backoff (main.js polls meanwhile). */

import { Unauthorized, failed, q } from "./api.js";
import { emit } from "./bus.js";
import { STREAM_IDLE_MS } from "./config.js";
import { renderConn } from "./header.js";
import { state } from "./state.js";

function dispatch(event, data) {
  if (!data) return;
  let body;
  try {
    body = JSON.parse(data);
  } catch {
    return;
  }
  emit(event, body);
}

export async function openStream() {
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

export function closeStream() {
  const controller = state.stream;
  state.stream = null;
  state.live = false;
  if (controller) controller.abort();
}
