// The workspace's live event stream (SSE), kept open across server restarts.
//
// Every frame's id is its log position. The stream remembers the last position it delivered
// and drops anything at or before it, so an event is delivered once even when a reconnection
// replays. When the connection fails or the server ends it (shutdown, or the `error` frame
// sent to a slow consumer), the EventSource is closed and a new one is opened with
// `?lastEventId=<last position>` after a backoff: the server replays what was missed. Before
// reopening, GET /api/me tells an unreachable server from a revoked or missing token.

import { getMe } from "./api.js";

export const EVENT_TYPES = [
  "execution-started", "task-assigned", "task-progress", "task-completed", "task-failed",
  "task-skipped", "health-update", "metrics-update", "execution-paused", "execution-resumed",
  "execution-completed", "execution-cancelled", "execution-interrupted", "execution-recovered",
  "agent-type-paused", "agent-type-resumed",
];

const FIRST_DELAY_MS = 250;
const MAX_DELAY_MS = 5000;

export class WorkspaceStream {
  /**
   * @param {string} url the workspace's events URL
   * @param {object} handlers onEvent(event), onSnapshot(snapshot), onState(state, detail),
   *   onUnauthorized(); state is "connecting" | "connected" | "disconnected"
   * @param {number|null} after resume after this position; null starts with a snapshot
   */
  constructor(url, handlers, after = null) {
    this.url = url;
    this.handlers = handlers;
    this.lastPosition = after;
    this.source = null;
    this.failures = 0;
    this.timer = null;
    this.stopped = false;
    this.onOnline = () => this.reconnectSoon(0);
  }

  start() {
    window.addEventListener("online", this.onOnline);
    this.open();
  }

  stop() {
    this.stopped = true;
    window.removeEventListener("online", this.onOnline);
    clearTimeout(this.timer);
    this.close();
  }

  open() {
    if (this.stopped) return;
    const url = this.lastPosition === null ? this.url
      : `${this.url}?lastEventId=${this.lastPosition}`;
    this.setState("connecting");
    const source = new EventSource(url, { withCredentials: true });
    this.source = source;
    source.onopen = () => {
      this.failures = 0;
      this.setState("connected");
    };
    source.addEventListener("snapshot", (message) => this.receive(message, true));
    for (const type of EVENT_TYPES) {
      source.addEventListener(type, (message) => this.receive(message, false));
    }
    // "error" is both the connection's error event and the server's `event: error` frame.
    source.addEventListener("error", (message) => {
      if (source !== this.source) return;
      if (message.data) {
        this.serverError(message);
        return;
      }
      this.close();
      this.failures += 1;
      this.reconnectSoon(this.delay());
    });
  }

  close() {
    if (this.source) {
      this.source.close();
      this.source = null;
    }
  }

  receive(message, isSnapshot) {
    let event;
    try {
      event = JSON.parse(message.data);
    } catch {
      return;
    }
    const position = Number(message.lastEventId || event.position);
    if (isSnapshot) {
      this.lastPosition = position;
      this.handlers.onSnapshot?.(event);
      return;
    }
    if (this.lastPosition !== null && position <= this.lastPosition) return; // seen already
    this.lastPosition = position;
    this.handlers.onEvent?.(event);
  }

  serverError(message) {
    // A slow consumer: the server closes the stream next; we resume from our own position.
    try {
      const { error } = JSON.parse(message.data);
      console.warn(`event stream: ${error.code}: ${error.message}`);
    } catch {
      console.warn("event stream: the server sent an error");
    }
  }

  delay() {
    const base = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** (this.failures - 1));
    return Math.round(base * (0.8 + Math.random() * 0.4));
  }

  reconnectSoon(delayMs) {
    if (this.stopped || this.source) return;
    clearTimeout(this.timer);
    this.setState("disconnected", delayMs >= 1000
      ? `retrying in ${Math.round(delayMs / 1000)} s` : "retrying");
    this.timer = setTimeout(() => this.probeThenOpen(), delayMs);
  }

  async probeThenOpen() {
    if (this.stopped || this.source) return;
    try {
      await getMe();
    } catch (error) {
      if (error.unauthorized) {
        this.stopped = true;
        this.setState("disconnected", "not signed in");
        this.handlers.onUnauthorized?.();
        return;
      }
      this.failures += 1;
      this.reconnectSoon(this.delay());
      return;
    }
    this.open();
  }

  setState(state, detail = "") {
    this.handlers.onState?.(state, detail);
  }
}
