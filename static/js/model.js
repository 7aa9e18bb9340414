// What the pages know about executions, and how each stream event changes it. These are
// plain functions over plain objects: they mirror the server's read models (the executions
// and tasks views) so that a page that applies every event once shows what /status shows.

import { FINISHED } from "./format.js";

export const TASK_STATUSES = [
  "completed", "in_progress", "assigned", "pending", "failed", "skipped", "cancelled",
];
const UNFINISHED_TASK = new Set(["pending", "assigned", "in_progress"]);

// ------------------------------------------------------------- one execution, in full

/** The model of one execution from its GET /status answer. */
export function executionModel(status) {
  const tasks = new Map();
  for (const task of status.tasks) tasks.set(task.taskId, { ...task });
  return {
    execution: { ...status.execution },
    health: { ...status.health },
    tasks,
    agents: status.metrics.agents,
    position: status.position,
  };
}

export function countTasks(tasks) {
  const counts = Object.fromEntries(TASK_STATUSES.map((status) => [status, 0]));
  for (const task of tasks) counts[task.status] += 1;
  return counts;
}

/**
 * Apply one stream event of this execution to `model`. Returns what it changed:
 * {tasks: [task ids], status: bool, health: bool, settled: bool}.
 */
export function applyEvent(model, event) {
  const changed = { tasks: [], status: false, health: false, settled: false };
  const { data } = event;
  const execution = model.execution;
  const task = data.taskId ? model.tasks.get(data.taskId) : undefined;
  const move = (target, status) => {
    target.status = status;
    changed.tasks.push(target.taskId);
  };
  const setStatus = (status) => {
    changed.status = execution.status !== status;
    execution.status = status;
  };
  switch (event.type) {
    case "task-assigned":
      if (!task) break;
      move(task, "assigned");
      Object.assign(task, { attempt: data.attempt, progress: 0, retryAt: null,
        assignedAt: event.recordedAt, startedAt: null });
      if (execution.status === "pending") setStatus("running");
      break;
    case "task-progress":
      if (!task) break;
      if (!("message" in data)) { // the agent began the attempt (a report has a message)
        move(task, "in_progress");
        task.startedAt = event.recordedAt;
      }
      task.progress = data.progress;
      break;
    case "task-completed":
      if (!task) break;
      move(task, "completed");
      Object.assign(task, { progress: 1, result: data.result, durationMs: data.durationMs,
        finishedAt: event.recordedAt });
      changed.settled = true;
      break;
    case "task-failed":
      if (!task) break;
      if (isInterruption(data)) { // lost or handed back, and runs again: not a failure
        move(task, "pending");
        break;
      }
      move(task, data.willRetry ? "pending" : "failed");
      Object.assign(task, { failures: task.failures + 1, errorKind: data.errorKind,
        errorMessage: data.error, retryAt: data.retryAt, durationMs: data.durationMs });
      if (data.willRetry) execution.retries += 1;
      else task.finishedAt = event.recordedAt;
      changed.settled = true;
      break;
    case "task-skipped":
      for (const id of data.taskIds) {
        const skipped = model.tasks.get(id);
        if (skipped) move(skipped, "skipped");
      }
      changed.settled = true;
      break;
    case "execution-paused":
      setStatus(data.status);
      break;
    case "execution-interrupted": // the engine stopped; the next start takes it up
    case "execution-recovered":
      changed.status = markInterrupted(execution, event);
      break;
    case "execution-resumed": // by hand, or by a retry that returned tasks to pending
      for (const id of [...(data.taskIds || []), ...(data.unskippedTaskIds || [])]) {
        const again = model.tasks.get(id);
        if (!again) continue;
        move(again, "pending");
        again.finishedAt = null;
      }
      for (const id of data.taskIds || []) {
        const retried = model.tasks.get(id);
        if (retried) Object.assign(retried, { failures: 0, retryAt: null });
      }
      if (data.taskIds) {
        execution.finishedAt = null;
        changed.settled = true;
      }
      setStatus(data.status);
      break;
    case "execution-cancelled":
      for (const each of model.tasks.values()) {
        if (UNFINISHED_TASK.has(each.status)) move(each, "cancelled");
      }
      setStatus("cancelled");
      execution.finishedAt = event.recordedAt;
      changed.settled = true;
      break;
    case "execution-completed":
      setStatus(data.status);
      execution.finishedAt = data.finishedAt || event.recordedAt;
      changed.settled = true;
      break;
    case "health-update":
      model.health = { ...model.health, ...data, recordedAt: event.recordedAt,
        healthy: data.score >= 50 };
      execution.healthScore = data.score;
      execution.healthStatus = data.status;
      changed.health = true;
      break;
    default:
      break;
  }
  model.position = Math.max(model.position, event.position);
  return changed;
}

export const isFinished = (execution) => FINISHED.has(execution.status);

/** Set (execution-interrupted) or lift (execution-recovered) the mark a graceful stop of
 * the engine leaves on an unfinished execution; true when it changed. */
function markInterrupted(execution, event) {
  const at = event.type === "execution-interrupted"
    ? event.data.interruptedAt || event.recordedAt : null;
  const changed = (execution.interruptedAt || null) !== at;
  execution.interruptedAt = at;
  return changed;
}

/** Is a task-failed event's data an interruption (the task runs again, nothing failed)?
 * A crash that took a task's last attempt is a failure of kind "interrupted" instead. */
export const isInterruption = (data) => data.errorKind === "interrupted" && data.willRetry;

// ------------------------------------------------------ every execution of a workspace

/**
 * Apply one stream event to a workspace's executions (a Map by id, each an Execution as
 * GET /api/executions answers). Only the counts a list shows are kept: the settled ones.
 * Returns true when the list changed.
 */
export function applyToList(executions, event) {
  const { data } = event;
  if (event.type === "execution-started") {
    executions.set(event.executionId, {
      id: event.executionId, workspaceId: event.workspaceId, strategyId: data.strategyId,
      strategyName: data.strategyName, status: data.status, totalTasks: data.totalTasks,
      completedTasks: 0, failedTasks: 0, skippedTasks: 0, cancelledTasks: 0, retries: 0,
      startedAt: data.startedAt, finishedAt: null, healthScore: null, healthStatus: null,
      interruptedAt: null,
    });
    return true;
  }
  const execution = executions.get(event.executionId);
  if (!execution) return false;
  switch (event.type) {
    case "task-assigned":
      if (execution.status !== "pending") return false;
      execution.status = "running";
      return true;
    case "task-completed":
      execution.completedTasks += 1;
      return true;
    case "task-failed":
      if (isInterruption(data)) return false;
      if (data.willRetry) execution.retries += 1;
      else execution.failedTasks += 1;
      return true;
    case "task-skipped":
      execution.skippedTasks += data.taskIds.length;
      return true;
    case "execution-paused":
      execution.status = data.status;
      return true;
    case "execution-interrupted":
    case "execution-recovered":
      return markInterrupted(execution, event);
    case "execution-resumed":
      execution.status = data.status;
      if (data.taskIds) { // a retry: tasks failed for good (and skipped) are pending again
        execution.failedTasks -= data.taskIds.length;
        execution.skippedTasks -= data.unskippedTaskIds.length;
        execution.finishedAt = null;
      }
      return true;
    case "execution-cancelled":
      execution.status = "cancelled";
      execution.cancelledTasks = data.cancelledTasks;
      execution.finishedAt = event.recordedAt;
      return true;
    case "execution-completed":
      Object.assign(execution, {
        status: data.status, completedTasks: data.completedTasks,
        failedTasks: data.failedTasks, skippedTasks: data.skippedTasks,
        finishedAt: data.finishedAt || event.recordedAt,
      });
      return true;
    case "health-update":
      execution.healthScore = data.score;
      execution.healthStatus = data.status;
      return true;
    case "metrics-update":
      return applyMetrics(execution, data);
    default:
      return false;
  }
}

/** The ETA and the summed use of the agent types from a metrics-update, when it has them
 * (servers before issue 13 send neither: nothing changes then). */
function applyMetrics(execution, data) {
  let changed = false;
  if ("eta" in data) {
    execution.eta = data.eta;
    changed = true;
  }
  const agents = Array.isArray(data.agents) ? data.agents : Object.values(data.agents || {});
  const using = agents.filter((agent) => agent && typeof agent.running === "number");
  if (using.length) {
    const sum = (key) => using.reduce((total, agent) => total + (Number(agent[key]) || 0), 0);
    execution.utilisation = { running: sum("running"), queued: sum("queued"),
      concurrency: sum("concurrency") };
    changed = true;
  }
  return changed;
}

/** Newest first, as GET /api/executions orders them. */
export function newestFirst(executions) {
  return [...executions.values()].sort((a, b) =>
    (a.startedAt < b.startedAt ? 1 : a.startedAt > b.startedAt ? -1 : 0));
}
