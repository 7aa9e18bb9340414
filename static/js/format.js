// How values read on the page: statuses, health bands, times and durations.

import { h } from "./dom.js";

export const FINISHED = new Set(["completed", "failed", "cancelled"]);

/** Which commands each execution status allows (as the server's aggregate does). */
export const ALLOWED = {
  pause: new Set(["pending", "running"]),
  resume: new Set(["paused"]),
  cancel: new Set(["pending", "running", "paused"]),
  retry: new Set(["failed", "running"]), // and only while some task has failed for good
};

const STATUS_ICONS = {
  pending: "○", running: "▶", paused: "Ⅱ", completed: "✓", failed: "✕", cancelled: "⊘",
  assigned: "◔", in_progress: "◑", skipped: "↷",
};

export const statusIcon = (status) => STATUS_ICONS[status] || "•";

/** A status badge: its colour and icon (drawn by CSS) say what its text says. */
export function statusBadge(status, attributes = {}) {
  return h("span", { class: `badge status-${status}`, ...attributes }, status);
}

/** An execution's status, and beside it, while a graceful stop of the engine has left it
 * unfinished and no engine has taken it up, the plain mark that it is not running now. */
export function executionStatus(execution) {
  const badge = statusBadge(execution.status);
  if (!execution.interruptedAt) return [badge];
  const when = formatDateTime(execution.interruptedAt);
  return [badge, h("span", {
    class: "badge interrupted", dataset: { testid: "interrupted" },
    title: `The engine stopped at ${when} while this execution was ${execution.status}; `
      + "nothing runs it until the server starts again, which takes it up.",
  }, `engine stopped ${when}`)];
}

/** The band of a 0-100 score: 80+ Excellent, 60+ Good, 40+ Degraded, else Critical. */
export function bandOf(score) {
  if (score === null || score === undefined) return null;
  if (score >= 80) return "Excellent";
  if (score >= 60) return "Good";
  if (score >= 40) return "Degraded";
  return "Critical";
}

/** How a finished execution ended badly ("failed" or "cancelled"), else null: its health
 * then reads as that outcome, never as the band of its last score. */
export function badOutcome(status, health = {}) {
  const outcome = health.outcome ?? status;
  return outcome === "failed" || outcome === "cancelled" ? outcome : null;
}

/** The health of an execution as a badge: its band, or how it ended if it ended badly. */
export function healthBadge(score, band, status = null) {
  const outcome = badOutcome(status);
  if (outcome) return statusBadge(outcome, { title: score === null ? "" : `last score ${score}` });
  if (score === null || score === undefined) {
    return h("span", { class: "muted" }, "not assessed");
  }
  const name = band || bandOf(score);
  return h("span", { class: `badge band-${name.toLowerCase()}` },
    h("strong", {}, String(score)), ` ${name}`);
}

const timeFormat = new Intl.DateTimeFormat(undefined, {
  hour: "2-digit", minute: "2-digit", second: "2-digit",
});
const dateTimeFormat = new Intl.DateTimeFormat(undefined, {
  year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
  second: "2-digit",
});

export const formatTime = (iso) => (iso ? timeFormat.format(new Date(iso)) : "");

/** A precise 24-hour clock time, HH:MM:SS.mmm, for the timeline. */
export function formatClock(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  const two = (n) => String(n).padStart(2, "0");
  return `${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())}`
    + `.${String(date.getMilliseconds()).padStart(3, "0")}`;
}

export function formatDateTime(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  const today = new Date();
  return date.toDateString() === today.toDateString()
    ? `today ${timeFormat.format(date)}` : dateTimeFormat.format(date);
}

/** 850 ms, 12.3 s, 4 min 05 s, 2 h 03 min. */
export function formatDuration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "—";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const seconds = ms / 1000;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${String(Math.floor(seconds % 60)).padStart(2, "0")} s`;
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, "0")} min`;
}

/** A cost in the currency of the prices set (none is named): 12.35, 0.0045. */
export function formatCost(cost) {
  return cost >= 1 ? cost.toFixed(2) : cost.toLocaleString("en", { maximumSignificantDigits: 3 });
}

/** How long an execution has run: to its end, or to now while it runs. */
function elapsed(startedAt, finishedAt) {
  if (!startedAt) return null;
  const end = finishedAt ? new Date(finishedAt) : new Date();
  return Math.max(0, end - new Date(startedAt));
}

/** "about 1 min 20 s (p90 2 min 05 s)" from an `eta` of the status answer; "" if none. */
export function formatEta(eta) {
  if (!eta || typeof eta.seconds !== "number") return "";
  const p90 = typeof eta.p90Seconds === "number" && eta.p90Seconds > eta.seconds
    ? ` (p90 ${formatDuration(1000 * eta.p90Seconds)})` : "";
  return `about ${formatDuration(1000 * eta.seconds)}${p90}`;
}

/** How long an execution took, has run, or (paused) has been open: "paused" never reads
 * "running for". `until` is the end to measure to while it is unfinished (default now). */
export function durationText(status, startedAt, finishedAt, until = null) {
  const length = formatDuration(elapsed(startedAt, finishedAt || until));
  if (finishedAt) return `took ${length}`;
  return status === "paused" ? `paused, ${length} since it started` : `running for ${length}`;
}

export function percent(part, whole) {
  return whole ? Math.floor((100 * part) / whole) : 0;
}

export function plural(count, one, many = `${one}s`) {
  return `${count} ${count === 1 ? one : many}`;
}
