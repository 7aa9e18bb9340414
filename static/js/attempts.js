// Every attempt of every task, from the execution's events (the audit history, then the
// live stream, both in the stream's shape): when it was handed to its agent, when it
// started and ended, how long it ran, and how it ended (its result or its error).

import { h } from "./dom.js";
import { formatClock, formatDuration } from "./format.js";
import { isInterruption } from "./model.js";

export class Attempts {
  constructor() {
    this.byTask = new Map(); // task id -> [attempt], oldest first
  }

  add(events) {
    for (const event of events) this.apply(event);
  }

  apply(event) {
    const d = event.data;
    if (event.type === "execution-cancelled") this.cancel(event);
    if (!d.taskId) return;
    const at = event.recordedAt;
    if (event.type === "task-assigned") {
      this.list(d.taskId).push({ attempt: d.attempt, assignedAt: at, startedAt: null,
        endedAt: null, outcome: "queued", durationMs: null, result: null, error: null,
        position: event.position, startPosition: null, endPosition: null });
      return;
    }
    const attempt = this.current(d.taskId, d.attempt);
    if (!attempt) return;
    if (event.type === "task-progress" && !("message" in d) && !attempt.startedAt) {
      Object.assign(attempt, { startedAt: at, outcome: "running", startPosition: event.position });
    } else if (event.type === "task-completed") {
      Object.assign(attempt, { endedAt: at, outcome: "completed", durationMs: d.durationMs,
        result: d.result ?? null, endPosition: event.position });
    } else if (event.type === "task-failed") {
      const outcome = isInterruption(d) ? "interrupted" : d.willRetry ? "failed, retried"
        : "failed";
      Object.assign(attempt, { endedAt: at, outcome, durationMs: d.durationMs ?? null,
        error: d.errorKind ? `${d.errorKind}: ${d.error}` : d.error, endPosition: event.position });
    }
  }

  /** A cancellation ends every open attempt: it reads "cancelled". */
  cancel(event) {
    for (const attempts of this.byTask.values()) {
      const last = attempts[attempts.length - 1];
      if (last && !last.endedAt) {
        Object.assign(last, { endedAt: event.recordedAt, outcome: "cancelled",
          endPosition: event.position });
      }
    }
  }

  list(taskId) {
    if (!this.byTask.has(taskId)) this.byTask.set(taskId, []);
    return this.byTask.get(taskId);
  }

  current(taskId, number) {
    const attempts = this.byTask.get(taskId) || [];
    for (let i = attempts.length - 1; i >= 0; i -= 1) {
      if (attempts[i].attempt === number) return attempts[i];
    }
    return null;
  }

  /** A task's attempts as they stood at log position `upTo` (all of them when null). */
  of(taskId, upTo = null) {
    const attempts = this.byTask.get(taskId) || [];
    if (upTo === null) return attempts;
    return attempts.filter((a) => a.position <= upTo).map((a) => (a.endPosition !== null
      && a.endPosition > upTo ? { ...a, endedAt: null, durationMs: null, result: null,
      error: null, outcome: a.startPosition !== null && a.startPosition <= upTo ? "running"
        : "queued" } : a));
  }
}

/** The attempts as a list, oldest first: number and outcome, start → end and how long,
 * then its result or its error. */
export function attemptTable(attempts) {
  if (!attempts.length) {
    return h("p", { class: "muted small", dataset: { testid: "task-attempts" } }, "No attempt yet.");
  }
  return h("ol", { class: "attempts", dataset: { testid: "task-attempts" } },
    attempts.map((attempt) => {
      const took = attempt.durationMs !== null ? formatDuration(attempt.durationMs)
        : attempt.startedAt && attempt.endedAt
          ? formatDuration(new Date(attempt.endedAt) - new Date(attempt.startedAt)) : "—";
      return h("li", {
        class: `attempt outcome-${attempt.outcome.split(",")[0]}`,
        dataset: { attempt: String(attempt.attempt), outcome: attempt.outcome },
      },
      h("div", {}, h("strong", {}, `#${attempt.attempt} `),
        h("span", { class: "attempt-outcome", dataset: { field: "outcome" } }, attempt.outcome)),
      h("div", { class: "small mono" },
        h("span", { dataset: { field: "started" },
          title: `handed to its agent at ${formatClock(attempt.assignedAt)}` },
        attempt.startedAt ? formatClock(attempt.startedAt) : "not started"),
        " → ", h("span", { dataset: { field: "ended" } },
          attempt.endedAt ? formatClock(attempt.endedAt) : "…"),
        " · ", h("span", { dataset: { field: "took" } }, took)),
      attempt.error || attempt.result ? h("div", {
        class: `attempt-detail ${attempt.error ? "error-text" : "mono small"}`,
        dataset: { field: "detail" },
      }, attempt.error ?? JSON.stringify(attempt.result)) : null);
    }));
}
