// The page at `/executions/{id}`: one execution, live.
//
// Data: GET /status gives the execution, its tasks, health, agent metrics (and, when the
// server estimates it, the ETA) and the log position they reflect; the workspace stream is
// then opened after that position, and its events for this execution (filtered here) are
// applied to the model (model.js). The audit history fills the timeline, the error log,
// each task's attempts and the time of every version. Agent metrics are re-read from
// /status, throttled, as tasks settle. Once the execution has finished, a slider shows it
// at any version (GET /state?version=N): status, health, progress, graph, timeline and
// plots as they were then. Commands need the live stream: they are disabled without it,
// and Cancel asks first.

import { AgentBanner } from "./agents.js";
import {
  getHealthSnapshots, getHistory, getStatus, getStrategy, retryTask, sendCommand,
  workspaceEventsUrl,
} from "./api.js";
import { Attempts, attemptTable } from "./attempts.js";
import { DagView, dagLegend } from "./dag.js";
import {
  byTestId, h, mount, setNav, setText, setTitle, showConnection, showSignIn,
} from "./dom.js";
import {
  ALLOWED, FINISHED, badOutcome, bandOf, durationText, formatCost, formatDateTime,
  formatDuration, formatEta, formatTime, percent, plural, statusBadge,
  executionStatus,
} from "./format.js";
import { HistorySlider } from "./history.js";
import { applyEvent, countTasks, executionModel, isFinished } from "./model.js";
import { estimatesTable, finishedPerSecond, healthPlot, throughputPlot } from "./plots.js";
import { WorkspaceStream } from "./stream.js";
import { ErrorLog, Timeline, fromHistory } from "./timeline.js";

const RENDER_DELAY_MS = 50;
const METRICS_INTERVAL_MS = 500;
const PLOT_DELAY_MS = 1000;
const COMMANDS = ["pause", "resume", "cancel", "retry"];
const PROGRESS_PARTS = [ // [test id, label, statuses]
  ["completed", "completed", ["completed"]],
  ["running", "running", ["in_progress"]],
  ["queued", "queued at their agent", ["assigned"]],
  ["pending", "pending", ["pending"]],
  ["failed", "failed", ["failed"]],
  ["skipped", "skipped", ["skipped"]],
  ["cancelled", "cancelled", ["cancelled"]],
];
const FINISHED_PARTS = ["completed", "failed", "skipped", "cancelled"];

export async function showExecution(executionId) {
  const status = await getStatus(executionId);
  const strategy = await getStrategy(status.execution.strategyId).then(
    (answer) => answer.strategy, (error) => {
      console.warn(`strategy: ${error.message}`);
      return null;
    });
  new ExecutionPage(executionId, status, strategy).start();
}

class ExecutionPage {
  constructor(executionId, status, strategy) {
    this.id = executionId;
    this.model = executionModel(status);
    this.model.eta = status.eta ?? null;
    this.metricsPosition = status.position;
    this.items = new Map((strategy ? strategy.document.items : []).map((item) => [item.id, item]));
    this.past = null; // a past version's state while the history slider shows one
    this.busy = null; // the command being sent
    this.connected = false;
    this.renderTimer = null;
    this.plotTimer = null;
    this.metricsTimer = null;
    this.metricsDirty = false;
    this.events = []; // this execution's events, in the stream's shape, by position
    this.versions = new Map(); // execution version -> {position, recordedAt}
    this.historyAfter = 0; // the last log position read from the history
    this.historyLoaded = false;
    this.heldBack = []; // live events that arrive before the history is read
    this.attempts = new Attempts();
    this.snapshots = []; // recorded health assessments, oldest first
    this.shownTask = null; // what the task panel shows now
    this.build();
  }

  // ---------------------------------------------------------------------- layout

  build() {
    const { execution } = this.model;
    setNav(h("a", { href: "/", class: "back-link" }, "← All executions"));
    const title = (taskId) => this.taskTitle(taskId);
    this.statusCell = h("span", { dataset: { testid: "status" }, class: "status-cell" });
    this.versionNote = h("span", { class: "muted small", dataset: { testid: "status-version" } });
    this.duration = h("span", { dataset: { testid: "duration" } });
    this.eta = h("p", { class: "small eta", dataset: { testid: "eta" } });
    this.errorBox = h("p", { class: "form-error", role: "alert", dataset: { testid: "error-message" } });
    this.controlsNote = h("p", { class: "muted small", dataset: { testid: "controls-note" } });
    this.buttons = Object.fromEntries(COMMANDS.map((command) => [command, h("button", {
      type: "button", class: `btn btn-${command}`, dataset: { testid: command },
      onclick: () => (command === "cancel" ? this.confirmCancel() : this.send(command)),
    }, label(command))]));
    this.confirm = h("dialog", { class: "confirm", dataset: { testid: "confirm-cancel" },
      "aria-labelledby": "confirm-title" },
    h("h2", { id: "confirm-title" }, "Cancel this execution?"),
    h("p", {}, "Running attempts are stopped and every unfinished task is cancelled. "
      + "A cancelled execution cannot be resumed or retried."),
    h("div", { class: "controls" },
      h("button", { type: "button", class: "btn btn-cancel", dataset: { testid: "confirm-cancel-yes" },
        onclick: () => { this.confirm.close(); this.send("cancel"); } }, "Cancel the execution"),
      h("button", { type: "button", class: "btn", dataset: { testid: "confirm-cancel-no" },
        onclick: () => this.confirm.close() }, "Keep it running")));

    this.bar = h("div", { class: "stacked-bar", role: "img", dataset: { testid: "progress-bar" } });
    this.barParts = Object.fromEntries(PROGRESS_PARTS.map(([id]) =>
      [id, h("span", { class: `bar-part part-${id}` })]));
    this.bar.append(...Object.values(this.barParts));
    this.pct = h("span", { class: "pct", dataset: { testid: "progress-pct" } });
    this.progressNote = h("p", { class: "muted small", dataset: { testid: "progress-note" } });
    const legend = h("ul", { class: "progress-legend" }, PROGRESS_PARTS.map(([id, label]) =>
      h("li", {}, h("span", { class: `swatch part-${id}`, "aria-hidden": "true" }),
        h("span", { class: "count", dataset: { testid: `progress-${id}` } }, "0"), ` ${label}`)));

    this.score = h("span", { class: "health-score", dataset: { testid: "health-score" } });
    this.outOf = h("span", { class: "muted" }, "/100");
    this.band = h("span", { class: "badge", dataset: { testid: "health-band" } });
    this.healthFacts = h("p", { class: "muted small", dataset: { testid: "health-facts" } });
    this.issues = h("ul", { class: "issues", dataset: { testid: "health-issues" } });

    this.agents = new AgentBanner();
    this.history = new HistorySlider(this.id, (past) => this.showPast(past),
      (version) => this.versions.get(version)?.recordedAt ?? null);

    this.dag = new DagView({ onSelect: (taskId) => this.showTask(taskId) });
    this.taskPanel = h("aside", { class: "task-panel", dataset: { testid: "task-detail" },
      "aria-label": "Task details" },
    h("p", { class: "muted" }, "Select a task in the graph to see its details and attempts."));
    this.plots = h("div", { class: "plots" });

    this.agentHead = h("tr");
    this.agentBody = h("tbody");
    this.failedList = h("ul", { class: "failed-tasks", dataset: { testid: "failed-tasks" } });
    this.errorList = h("ol", { class: "error-log", dataset: { testid: "error-log" } });
    this.errors = new ErrorLog(this.errorList, title);
    this.timelineList = h("ol", { class: "timeline", dataset: { testid: "timeline" } });
    this.timeline = new Timeline(this.timelineList, title);

    mount(pageTitle(execution.strategyName, execution.status),
      h("div", { class: "page-head" },
        h("h1", { class: "page-title" }, execution.strategyName),
        h("p", { class: "muted small mono" }, `Execution ${this.id}`)),
      this.agents.element,
      h("div", { class: "grid grid-top" },
        h("section", { class: "card", "aria-labelledby": "summary-title" },
          h("h2", { id: "summary-title" }, "Status"),
          h("div", { class: "summary" }, this.statusCell,
            h("span", { class: "muted" }, "started ", formatDateTime(execution.startedAt), " · "),
            this.duration, this.versionNote),
          this.eta,
          h("div", { class: "controls", role: "group", "aria-label": "Execution controls" },
            Object.values(this.buttons)),
          this.controlsNote,
          this.errorBox,
          this.confirm),
        h("section", { class: "card", "aria-labelledby": "health-title" },
          h("h2", { id: "health-title" }, "Health"),
          h("div", { class: "health" }, this.score, this.outOf, this.band),
          this.healthFacts,
          this.issues)),
      h("section", { class: "card", "aria-labelledby": "progress-title" },
        h("h2", { id: "progress-title" }, "Progress ", this.pct),
        this.bar, legend, this.progressNote),
      this.history.element,
      h("section", { class: "card", "aria-labelledby": "dag-title" },
        h("h2", { id: "dag-title" }, "Task graph"),
        h("p", { class: "muted small" }, "Each item is a box with a chip per task (its agent); "
          + "a task waits for the tasks above it that point to it. Drag to pan, scroll to zoom."),
        h("div", { class: "dag-layout" }, h("div", { class: "dag-main" }, this.dag.element, dagLegend()),
          this.taskPanel)),
      h("section", { class: "card", "aria-labelledby": "plots-title" },
        h("h2", { id: "plots-title" }, "Over time"), this.plots),
      h("div", { class: "grid grid-wide-first" },
        h("section", { class: "card", "aria-labelledby": "agents-title" },
          h("h2", { id: "agents-title" }, "Agents"),
          h("div", { class: "table-wrap" }, h("table", { class: "table", dataset: { testid: "agent-table" } },
            h("thead", {}, this.agentHead), this.agentBody))),
        h("section", { class: "card", "aria-labelledby": "errors-title" },
          h("h2", { id: "errors-title" }, "Errors"),
          h("h3", {}, "Tasks failed for good"), this.failedList,
          h("h3", {}, "Failed and interrupted attempts"), this.errorList)),
      h("section", { class: "card", "aria-labelledby": "timeline-title" },
        h("h2", { id: "timeline-title" }, "Timeline",
          h("span", { class: "muted heading-note" }, " newest first")),
        this.timelineList));
  }

  // ------------------------------------------------------------------- lifecycle

  start() {
    this.dag.draw([...this.model.tasks.values()], this.items);
    this.render();
    this.renderPlots();
    const stream = new WorkspaceStream(workspaceEventsUrl(this.model.execution.workspaceId), {
      onEvent: (event) => this.receive(event),
      onState: (state, detail) => {
        showConnection(state, detail);
        this.connected = state === "connected";
        this.renderControls();
      },
      onUnauthorized: showSignIn,
    }, this.model.position);
    stream.start();
    this.agents.load();
    this.loadHistory();
    this.loadSnapshots();
    window.setInterval(() => this.renderDuration(), 1000);
  }

  receive(event) {
    if (this.agents.apply(event) || event.executionId !== this.id) return;
    const wasFinished = isFinished(this.model.execution);
    const changed = applyEvent(this.model, event);
    if (event.type === "metrics-update" && "eta" in event.data) this.model.eta = event.data.eta;
    if (event.type === "health-update") this.addSnapshot({ ...event.data, recordedAt: event.recordedAt });
    if (this.historyLoaded) this.log([event]);
    else this.heldBack.push(event);
    if (!wasFinished && isFinished(this.model.execution)) {
      this.model.eta = null;
      this.fetchMetrics(); // the final numbers, now rather than after the throttle
      if (this.historyLoaded) this.openHistory(); // else loadHistory opens it when done
    } else if (wasFinished && !isFinished(this.model.execution)) {
      this.history.close(); // a retry reopened it: live again
      this.refreshMetrics();
    } else if (changed.settled || event.type === "metrics-update") {
      this.refreshMetrics();
    }
    if (changed.status) {
      setTitle(pageTitle(this.model.execution.strategyName, this.model.execution.status));
    }
    this.schedule();
  }

  log(events) {
    this.events.push(...events);
    this.attempts.add(events);
    if (this.past) return; // the timeline shows the past version; it is rebuilt on return
    this.timeline.add(events);
    this.errors.add(events);
    this.renderErrorsEmpty();
    this.schedulePlots();
  }

  /** The history up to the page's starting position: the timeline, the error log, the
   * attempts and the versions' times. */
  async loadHistory() {
    const upTo = this.model.position;
    const kept = [];
    try {
      await this.readHistory(upTo, (shown) => { if (shown.position <= upTo) kept.push(shown); });
    } catch (error) {
      console.warn(`history: ${error.message}`);
    }
    this.historyLoaded = true;
    this.log([...kept, ...this.heldBack]);
    this.heldBack = [];
    if (isFinished(this.model.execution)) this.openHistory();
    this.schedule();
  }

  /** Read the history after what was read so far, up to `upTo` (to the end when null);
   * records each version's time and hands each event, as the stream's, to `keep`. */
  async readHistory(upTo, keep = () => {}) {
    for (;;) {
      const page = await getHistory(this.id, this.historyAfter);
      for (const event of page.events) {
        if (event.type.startsWith("Execution.")) {
          this.versions.set(event.version, { position: event.position, recordedAt: event.timestamp });
        }
        const shown = fromHistory(event, this.id);
        if (shown) keep(shown);
      }
      if (page.events.length) this.historyAfter = page.events[page.events.length - 1].position;
      if (page.nextAfter === null || (upTo !== null && this.historyAfter >= upTo)) return;
    }
  }

  /** The slider of a finished execution, once every version's time is known. */
  async openHistory() {
    try {
      await this.readHistory(null);
    } catch (error) {
      console.warn(`history: ${error.message}`);
    }
    this.history.open();
  }

  /** A live assessment, unless the snapshots read since the stream's position hold it already. */
  addSnapshot(snapshot) {
    if (!this.snapshots.some((s) => s.recordedAt === snapshot.recordedAt)) this.snapshots.push(snapshot);
  }

  async loadSnapshots() {
    try {
      const { snapshots } = await getHealthSnapshots(this.id);
      const live = this.snapshots.filter((s) => !snapshots.some((t) => t.recordedAt === s.recordedAt));
      this.snapshots = [...snapshots, ...live];
    } catch (error) {
      console.warn(`health: ${error.message}`);
    }
    this.schedulePlots();
  }

  /** Show the execution as of a past version (null: as it is now). */
  showPast(past) {
    if (past) {
      const version = this.versions.get(past.version);
      past.position = version ? version.position : Infinity;
    }
    this.past = past;
    const shown = past ? this.events.filter((event) => event.position <= past.position) : this.events;
    this.timeline.show(shown);
    this.errors.show(shown);
    this.renderErrorsEmpty();
    this.render();
    this.renderPlots();
  }

  /** Re-read the agent metrics from /status soon: at most once per METRICS_INTERVAL_MS,
   * and once more after the last call, so the table ends up current. */
  refreshMetrics() {
    if (this.metricsTimer) {
      this.metricsDirty = true;
      return;
    }
    this.metricsDirty = false;
    this.metricsTimer = window.setTimeout(() => {
      this.metricsTimer = null;
      if (this.metricsDirty) this.refreshMetrics();
    }, METRICS_INTERVAL_MS);
    this.fetchMetrics();
  }

  fetchMetrics() {
    getStatus(this.id).then((status) => {
      if (status.position < this.metricsPosition) return;
      this.metricsPosition = status.position;
      this.model.agents = status.metrics.agents;
      if ("eta" in status) this.model.eta = status.eta;
      if (status.health && "outcome" in status.health) this.model.health.outcome = status.health.outcome;
      this.schedule();
    }, () => { /* unreachable for now: the stream's indicator says so */ });
  }

  confirmCancel() {
    this.confirm.showModal();
    this.confirm.querySelector("[data-testid=confirm-cancel-no]").focus();
  }

  async send(command) {
    this.busy = command;
    setText(this.errorBox, "");
    this.renderControls();
    try {
      await sendCommand(this.id, command);
    } catch (error) {
      if (error.unauthorized) {
        showSignIn();
        return;
      }
      setText(this.errorBox, `${label(command)} refused: ${error.message}`);
    } finally {
      this.busy = null;
      this.renderControls();
    }
  }

  /** Retry one task that failed for good; say why if the server refuses. */
  async retry(taskId) {
    this.busy = `retry:${taskId}`;
    setText(this.errorBox, "");
    this.renderControls();
    this.renderFailed();
    try {
      await retryTask(this.id, taskId);
    } catch (error) {
      if (error.unauthorized) {
        showSignIn();
        return;
      }
      setText(this.errorBox, `Retry of ${this.taskTitle(taskId)} refused: ${error.message}`);
    } finally {
      this.busy = null;
      this.renderControls();
      this.renderFailed();
    }
  }

  hasFailedTasks() {
    return [...this.model.tasks.values()].some((task) => task.status === "failed");
  }

  // ---------------------------------------------------------------------- render

  schedule() {
    if (this.renderTimer === null) {
      this.renderTimer = window.setTimeout(() => {
        this.renderTimer = null;
        this.render();
      }, RENDER_DELAY_MS);
    }
  }

  schedulePlots() {
    if (this.plotTimer === null) {
      this.plotTimer = window.setTimeout(() => {
        this.plotTimer = null;
        this.renderPlots();
      }, PLOT_DELAY_MS);
    }
  }

  /** The status shown: the past version's, or the live one. */
  shownStatus() {
    return this.past ? this.past.status : this.model.execution.status;
  }

  render() {
    const status = this.shownStatus();
    const interruptedAt = this.past ? null : this.model.execution.interruptedAt;
    const shown = `${status} ${interruptedAt || ""}`;
    if (this.statusCell.dataset.shown !== shown) {
      this.statusCell.dataset.shown = shown;
      this.statusCell.dataset.status = status;
      this.statusCell.replaceChildren(...(this.past ? [statusBadge(status)]
        : executionStatus(this.model.execution)));
    }
    setText(this.versionNote, this.past ? `· as at version ${this.past.version}` : "");
    this.renderDuration();
    this.renderEta();
    this.renderControls();
    this.renderProgress();
    this.renderHealth();
    this.dag.update(this.past ? this.past.statusById
      : new Map([...this.model.tasks.values()].map((task) => [task.taskId, task.status])));
    if (this.dag.selected) this.showTask(this.dag.selected);
    this.renderAgents();
    this.renderFailed();
  }

  renderDuration() {
    const { execution } = this.model;
    if (this.past) {
      const at = this.past.recordedAt;
      setText(this.duration, durationText(this.past.status, execution.startedAt,
        FINISHED.has(this.past.status) ? at : null, at));
      return;
    }
    setText(this.duration, durationText(execution.status, execution.startedAt, execution.finishedAt));
  }

  renderEta() {
    const { eta } = this.model;
    const text = this.past ? "" : formatEta(eta);
    this.eta.hidden = !text;
    if (!text) return;
    const remaining = typeof eta.remainingTasks === "number"
      ? ` · ${plural(eta.remainingTasks, "task")} to go` : "";
    const path = Array.isArray(eta.criticalPath) && eta.criticalPath.length
      ? ` · critical path ${plural(eta.criticalPath.length, "task")}` : "";
    setText(this.eta, `Finishes in ${text}${remaining}${path}`
      + (eta.estimatedAt ? ` (estimated at ${formatTime(eta.estimatedAt)})` : ""));
    this.eta.title = Array.isArray(eta.criticalPath)
      ? `Remaining critical path: ${eta.criticalPath.map((id) => this.taskTitle(id)).join(" → ")}` : "";
  }

  renderControls() {
    const { status } = this.model.execution;
    for (const command of COMMANDS) {
      const button = this.buttons[command];
      const nothingFailed = command === "retry" && !this.hasFailedTasks();
      const allowed = ALLOWED[command].has(status) && !nothingFailed;
      button.disabled = this.busy !== null || !allowed || !this.connected;
      button.title = !this.connected ? "Waiting for the live connection"
        : allowed ? "" : nothingFailed ? "No task has failed for good"
          : `Not possible while the execution is ${status}`;
      setText(button, this.busy === command ? `${label(command)}…` : label(command));
    }
    setText(this.controlsNote, this.connected ? ""
      : "The controls wait for the live connection: what the page shows may be out of date.");
  }

  renderProgress() {
    const counts = this.past ? this.past.counts : countTasks(this.model.tasks.values());
    const total = Object.values(counts).reduce((sum, n) => sum + n, 0);
    const shown = {};
    for (const [id, , statuses] of PROGRESS_PARTS) {
      const count = statuses.reduce((sum, status) => sum + counts[status], 0);
      shown[id] = count;
      setText(byTestId(document, `progress-${id}`), count);
      this.barParts[id].style.width = `${total ? (100 * count) / total : 0}%`;
    }
    const finished = FINISHED_PARTS.reduce((sum, id) => sum + shown[id], 0);
    const outcome = badOutcome(this.shownStatus());
    const pct = percent(finished, total);
    setText(this.pct, outcome || `${pct}%`);
    this.pct.className = `pct${outcome ? ` badge status-${outcome}` : ""}`;
    const breakdown = FINISHED_PARTS.filter((id) => shown[id]).map((id) => `${shown[id]} ${id}`);
    const underway = PROGRESS_PARTS.filter(([id]) => !FINISHED_PARTS.includes(id) && shown[id])
      .map(([id, name]) => `${shown[id]} ${name}`);
    const summary = `${finished} of ${total} planned tasks finished`
      + (breakdown.length ? `: ${breakdown.join(", ")}` : "")
      + (underway.length ? `; ${underway.join(", ")}` : "")
      + (this.past ? ` (at version ${this.past.version})` : "") + ".";
    this.bar.setAttribute("aria-label", summary);
    setText(this.progressNote, summary);
  }

  /** The health as of the version shown: the live assessment, or the last one recorded
   * at or before the past version's position (null: none yet). */
  shownHealth() {
    if (!this.past) return this.model.health;
    const before = this.events.filter((event) => event.type === "health-update"
      && event.position <= this.past.position);
    const last = before[before.length - 1];
    return last ? { ...last.data, recordedAt: last.recordedAt } : null;
  }

  renderHealth() {
    const health = this.shownHealth();
    const status = this.shownStatus();
    const outcome = badOutcome(status, this.past ? {} : health || {});
    const issues = health ? health.issues || [] : [];
    this.outOf.hidden = Boolean(outcome) || !health;
    if (outcome) {
      const counts = this.past ? this.past.counts : countTasks(this.model.tasks.values());
      const total = Object.values(counts).reduce((sum, n) => sum + n, 0);
      setText(this.score, "—");
      setText(this.band, outcome);
      this.band.className = `badge status-${outcome}`;
      setText(this.healthFacts, `The execution ${outcome === "failed" ? "failed" : "was cancelled"}`
        + ` with ${counts.completed} of ${total} tasks completed. `
        + (health && health.score !== undefined ? `Its last assessment${health.recordedAt
          ? ` (${formatTime(health.recordedAt)})` : ""} scored ${health.score} while it ran.` : ""));
    } else if (!health) {
      setText(this.score, "—");
      setText(this.band, "not assessed");
      this.band.className = "badge";
      setText(this.healthFacts, "No assessment was recorded by this version.");
    } else {
      const band = health.status || bandOf(health.score);
      setText(this.score, health.score);
      setText(this.band, band);
      this.band.className = `badge band-${band.toLowerCase()}`;
      setText(this.healthFacts, (health.recordedAt
        ? `Assessed at ${formatTime(health.recordedAt)} (a new assessment is recorded when the`
          + " score, band or issues change): "
        : "Not assessed yet; from the tasks so far: ")
        + `completion ${Math.round(100 * health.completionRate)}%, errors `
        + `${Math.round(100 * health.errorRate)}%, mean attempt `
        + `${formatDuration(health.avgTaskDurationMs)}.`);
    }
    const key = issues.join("\n");
    if (this.issues.dataset.key !== key) {
      this.issues.dataset.key = key;
      this.issues.replaceChildren(...(issues.length
        ? issues.map((issue) => h("li", {}, issue))
        : [h("li", { class: "muted no-issues" }, "No issues")]));
    }
  }

  renderPlots() {
    const { execution } = this.model;
    const end = execution.finishedAt || new Date().toISOString();
    const cursorAt = this.past && this.past.recordedAt ? new Date(this.past.recordedAt).getTime() : null;
    const estimates = estimatesTable(this.snapshots, execution.finishedAt);
    this.plots.replaceChildren(
      healthPlot(this.snapshots, execution.startedAt, end, cursorAt),
      throughputPlot(finishedPerSecond(this.events, execution.startedAt), execution.startedAt, end,
        cursorAt),
      ...(estimates ? [estimates] : []));
  }

  renderAgents() {
    if (this.renderedAgents === this.model.agents) return;
    this.renderedAgents = this.model.agents;
    const agents = this.model.agents;
    const tokens = (agent) => (agent.promptTokens || 0) + (agent.completionTokens || 0);
    const showTokens = agents.some((agent) => tokens(agent) > 0);
    const showCost = agents.some((agent) => agent.cost > 0);
    const showUse = agents.some((agent) => typeof agent.utilisation === "number");
    const heads = [...["Agent", "Tasks", "Completed", "Failed", "Retries", "Mean", "p95"]
      .map((name) => [name, {}]),
    ...(showUse ? [["Running", { use: "running" }], ["Queued", { use: "queued" }],
      ["Use", { use: "utilisation" }]] : []),
    ...(showTokens ? [["Tokens", { usage: "tokens" }]] : []),
    ...(showCost ? [["Cost", { usage: "cost" }]] : [])];
    this.agentHead.replaceChildren(...heads.map(([name, dataset], i) =>
      h("th", { scope: "col", class: i ? "num" : null, dataset }, name)));
    const rows = agents.map((agent) => h("tr", { dataset: { agent: agent.agent } },
      h("th", { scope: "row" }, agent.agent),
      h("td", { class: "num" }, agent.tasks),
      h("td", { class: "num" }, agent.completed),
      h("td", { class: "num" }, agent.failed),
      h("td", { class: "num" }, agent.retries),
      h("td", { class: "num" }, formatDuration(agent.meanDurationMs)),
      h("td", { class: "num" }, formatDuration(agent.p95DurationMs)),
      showUse && [
        h("td", { class: "num", dataset: { use: "running" } },
          agent.concurrency ? `${agent.running ?? 0}/${agent.concurrency}` : (agent.running ?? "—")),
        h("td", { class: "num", dataset: { use: "queued" } }, agent.queued ?? "—"),
        h("td", { class: "num", dataset: { use: "utilisation" } },
          typeof agent.utilisation === "number" ? `${Math.round(100 * agent.utilisation)}%` : "—")],
      showTokens && h("td", { class: "num", dataset: { usage: "tokens" },
        title: `${agent.promptTokens || 0} prompt + ${agent.completionTokens || 0} completion` },
      tokens(agent) ? tokens(agent).toLocaleString() : "—"),
      showCost && h("td", { class: "num", dataset: { usage: "cost" } },
        agent.cost > 0 ? formatCost(agent.cost) : "—")));
    this.agentBody.replaceChildren(...(rows.length ? rows
      : [h("tr", {}, h("td", { colspan: heads.length, class: "empty" }, "No agent has worked yet."))]));
  }

  renderFailed() {
    const failed = [...this.model.tasks.values()].filter((task) => task.status === "failed");
    const retryable = ALLOWED.retry.has(this.model.execution.status) && this.busy === null
      && this.connected;
    const key = `${failed.map((task) => task.taskId).join(",")}|${retryable}|${this.busy}`;
    if (this.failedList.dataset.key === key) return;
    this.failedList.dataset.key = key;
    this.failedList.replaceChildren(...(failed.length ? failed.map((task) =>
      h("li", { dataset: { taskId: task.taskId } },
        h("strong", {}, task.title), ` (${task.agent}) · ${task.attempt} attempts · `,
        `${task.errorKind || "error"}`,
        h("div", { class: "error-text" }, task.errorMessage || ""),
        h("button", {
          type: "button", class: "btn btn-retry", disabled: !retryable,
          "aria-label": `Retry ${task.title} [${task.agent}]`,
          dataset: { testid: "retry-task", taskId: task.taskId },
          onclick: () => this.retry(task.taskId),
        }, this.busy === `retry:${task.taskId}` ? "Retry…" : "Retry")))
      : [h("li", { class: "muted" }, "None")]));
  }

  renderErrorsEmpty() {
    if (!this.errors.count && !this.errorList.children.length) {
      this.errorList.replaceChildren(h("li", { class: "muted", dataset: { empty: "" } }, "None"));
    } else if (this.errors.count) {
      this.errorList.querySelector("[data-empty]")?.remove();
    }
  }

  showTask(taskId) {
    const task = this.model.tasks.get(taskId);
    if (!task) return;
    const then = this.past ? this.past.tasks.get(taskId) : null;
    const status = then ? then.status : task.status;
    const facts = [
      ["Task", task.taskId], ["Agent", task.agent], ["Priority", task.priority],
      ["Status", status], ["Attempt", then ? then.attempt : task.attempt],
      ["Failures", then ? then.failures : task.failures],
      ["Depends on", task.dependsOn.length ? task.dependsOn.map((id) => this.taskTitle(id)).join(", ")
        : "nothing"],
    ];
    const attempts = this.attempts.of(taskId, this.past ? this.past.position : null);
    const data = this.taskData(task, then);
    const key = JSON.stringify([taskId, facts, data.error, attempts]);
    const shown = this.shownTask;
    if (shown && shown.key === key && shown.result === data.result) {
      return; // unchanged: keep the panel, and where its boxes are scrolled to
    }
    this.shownTask = { key, result: data.result };
    this.taskPanel.replaceChildren(
      h("h3", {}, task.title),
      h("dl", {}, facts.map(([name, value]) => [h("dt", {}, name), h("dd", {}, String(value))])),
      h("h4", {}, `Attempts (${attempts.length})`),
      attemptTable(attempts),
      h("div", { class: "task-data" }, taskSections(data)));
  }

  /** What the panel shows of a task beside its facts: the inputs its item gives every
   * task of it, its result, and its last failure (as of the past version, if one is shown). */
  taskData(task, then) {
    const kind = then ? null : task.errorKind;
    const message = then ? then.error : task.errorMessage;
    const item = this.items.get(task.itemId);
    return {
      inputs: item && item.inputs !== undefined ? item.inputs : null,
      result: then ? then.result : task.result,
      error: message ? (kind ? `${kind}: ${message}` : message) : null,
    };
  }

  taskTitle(taskId) {
    const task = this.model.tasks.get(taskId);
    return task ? `${task.title} [${task.agent}]` : taskId;
  }
}

const label = (command) => command[0].toUpperCase() + command.slice(1);

const pageTitle = (name, status) => `${name}: ${status}`;

/** A JSON value, pretty-printed in a scrolling box (as text: nothing in it is markup). */
const jsonBox = (value, testId) =>
  h("pre", { class: "json-box", tabindex: "0", dataset: { testid: testId } },
    JSON.stringify(value, null, 2));

function taskSections({ inputs, result, error }) {
  return [
    h("h4", {}, "Inputs"),
    inputs === null ? h("p", { class: "muted small", dataset: { testid: "task-inputs" } },
      "None: its item has no inputs.")
      : jsonBox(inputs, "task-inputs"),
    h("h4", {}, "Result"),
    result ? jsonBox(result, "task-result")
      : h("p", { class: "muted small", dataset: { testid: "task-result" } }, "None yet."),
    error ? [h("h4", {}, "Last failure"),
      h("p", { class: "error-text", dataset: { testid: "task-error" } }, error)] : null,
  ];
}
