// The execution's events as people read them: the timeline (newest first, capped) and the
// log of failed attempts. Live stream events and the audit history (GET .../history, used
// to fill both for what happened before the page opened) share one shape: the stream's.

import { h } from "./dom.js";
import { formatClock, formatDuration, formatTime, plural } from "./format.js";
import { isInterruption } from "./model.js";

export const TIMELINE_CAP = 200;

const HISTORY_TYPES = {
  "Execution.Started": (d) => ["execution-started",
    { strategyName: d.strategyName, totalTasks: (d.tasks || []).length }],
  "Execution.TaskAssigned": (d) => ["task-assigned", { taskId: d.taskId, attempt: d.attempt }],
  "Execution.TaskStarted": (d) => ["task-progress",
    { taskId: d.taskId, attempt: d.attempt, progress: 0 }],
  "Execution.TaskProgressed": (d) => ["task-progress",
    { taskId: d.taskId, attempt: d.attempt, progress: d.progress, message: d.message }],
  "Execution.TaskSucceeded": (d) => ["task-completed",
    { taskId: d.taskId, attempt: d.attempt, durationMs: d.durationMs, result: d.result }],
  "Execution.TaskFailed": (d) => ["task-failed", {
    taskId: d.taskId, attempt: d.attempt, errorKind: d.errorKind, error: d.errorMessage,
    willRetry: d.retryAt !== null && d.retryAt !== undefined, retryAt: d.retryAt,
    durationMs: d.durationMs }],
  "Execution.TaskInterrupted": (d) => ["task-failed", {
    taskId: d.taskId, attempt: d.attempt, errorKind: "interrupted", error: d.reason,
    willRetry: true, retryAt: null }],
  "Execution.TasksSkipped": (d) => ["task-skipped",
    { taskIds: d.taskIds, failedTaskId: d.failedTaskId }],
  "Execution.Paused": () => ["execution-paused", { status: "paused" }],
  "Execution.Resumed": () => ["execution-resumed", { status: "running" }],
  "Execution.TasksRetried": (d) => ["execution-resumed",
    { status: "running", taskIds: d.taskIds, unskippedTaskIds: d.unskippedTaskIds }],
  "Execution.Cancelled": (d) => ["execution-cancelled",
    { status: "cancelled", cancelledTasks: (d.taskIds || []).length }],
  "Execution.Interrupted": (d) => ["execution-interrupted", { reason: d.reason }],
  "Execution.Recovered": () => ["execution-recovered", {}],
  "Execution.Completed": () => ["execution-completed", { status: "completed" }],
  "Execution.Failed": () => ["execution-completed", { status: "failed" }],
  "ExecutionHealth.Assessed": (d) => ["health-update", { ...d, issues: d.issues || [] }],
  "ExecutionHealth.MetricsSampled": () => ["metrics-update", {}],
};

/** A HistoryEvent as the stream event it corresponds to, or null (nothing to show). */
export function fromHistory(event, executionId) {
  const map = HISTORY_TYPES[event.type];
  if (!map) return null;
  const [type, data] = map(event.data || {});
  return { position: event.position, type, executionId, recordedAt: event.timestamp, data };
}

const attemptText = (data) => (data.attempt ? ` (attempt ${data.attempt})` : "");

/** One line saying what an event means; `title(taskId)` names a task. */
export function describe(event, title) {
  const d = event.data;
  const task = d.taskId ? title(d.taskId) : "";
  switch (event.type) {
    case "execution-started":
      return `Execution started: ${d.strategyName}, ${plural(d.totalTasks, "task")}`;
    case "task-assigned":
      return `${task} handed to its agent${attemptText(d)}`;
    case "task-progress":
      return d.message
        ? `${task}: ${d.message} (${Math.round(100 * d.progress)}%)`
        : `${task} started${attemptText(d)}`;
    case "task-completed":
      return `${task} completed in ${formatDuration(d.durationMs)}${attemptText(d)}`;
    case "task-failed":
      if (isInterruption(d)) {
        return `${task} attempt ${d.attempt} interrupted (${d.error}); it runs again`;
      }
      return d.willRetry
        ? `${task} attempt ${d.attempt} failed (${d.errorKind}): ${d.error}; retry` +
          (d.retryAt ? ` at ${formatTime(d.retryAt)}` : "")
        : `${task} failed for good at attempt ${d.attempt} (${d.errorKind}): ${d.error}`;
    case "task-skipped":
      return `${plural(d.taskIds.length, "task")} skipped because ` +
        `${d.failedTaskId ? title(d.failedTaskId) : "a dependency"} failed`;
    case "health-update":
      return `Health ${d.score} (${d.status})` +
        (d.issues && d.issues.length ? `: ${d.issues.join("; ")}` : "");
    case "metrics-update":
      return "Agent metrics updated";
    case "execution-paused":
      return "Execution paused: running attempts finish, nothing new starts";
    case "execution-resumed":
      if (d.taskIds) {
        return `Retried by hand: ${d.taskIds.map(title).join(", ")}`
          + (d.unskippedTaskIds.length
            ? `; ${plural(d.unskippedTaskIds.length, "skipped task")} pending again` : "");
      }
      return "Execution resumed";
    case "execution-interrupted":
      return "The engine stopped: nothing runs this execution until the server starts again"
        + " (the attempts under way run again then)";
    case "execution-recovered":
      return "The engine took this execution up again";
    case "execution-cancelled":
      return `Execution cancelled: ${plural(d.cancelledTasks, "unfinished task")} cancelled`;
    case "execution-completed":
      return d.status === "failed"
        ? "Execution finished: failed (some task failed for good)"
        : "Execution finished: completed";
    default:
      return event.type;
  }
}

const QUIET = new Set(["task-progress", "metrics-update", "task-assigned"]);

/** The timeline list: newest first, at most TIMELINE_CAP entries. */
export class Timeline {
  constructor(list, title) {
    this.list = list;
    this.title = title;
  }

  /** Show only `events` (oldest first): the timeline up to a past version. */
  show(events) {
    this.list.replaceChildren();
    this.add(events);
  }

  /** Add events (oldest first) at the top. */
  add(events) {
    const fragment = document.createDocumentFragment();
    for (const event of events.slice(-TIMELINE_CAP).reverse()) {
      fragment.append(h("li", {
        class: `timeline-entry type-${event.type}${QUIET.has(event.type) ? " quiet" : ""}`,
        dataset: { position: String(event.position), type: event.type },
      },
      h("time", { datetime: event.recordedAt }, formatClock(event.recordedAt)),
      h("span", { class: "timeline-type" }, event.type),
      h("span", { class: "timeline-text" }, describe(event, this.title))));
    }
    this.list.prepend(fragment);
    while (this.list.children.length > TIMELINE_CAP) this.list.lastElementChild.remove();
  }
}

/** The failed (and interrupted) attempts, newest first, each with its message and attempt. */
export class ErrorLog {
  constructor(list, title) {
    this.list = list;
    this.title = title;
    this.count = 0;
  }

  show(events) {
    this.list.replaceChildren();
    this.count = 0;
    this.add(events);
  }

  add(events) {
    for (const event of events) {
      if (event.type !== "task-failed") continue;
      const d = event.data;
      const outcome = isInterruption(d) ? "interrupted, runs again"
        : d.willRetry ? "will retry" : "failed for good";
      const kind = isInterruption(d) ? " interrupted" : d.willRetry ? "" : " final";
      this.list.prepend(h("li", { class: `error-entry${kind}` },
        h("time", { datetime: event.recordedAt }, formatClock(event.recordedAt)),
        h("strong", {}, this.title(d.taskId)),
        h("div", { class: "small" }, `attempt ${d.attempt} · ${d.errorKind} · ${outcome}`),
        h("div", { class: "error-text" }, d.error || "")));
      this.count += 1;
    }
    while (this.list.children.length > TIMELINE_CAP) this.list.lastElementChild.remove();
  }
}
