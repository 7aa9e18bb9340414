// The page at `/executions/{id}`: one execution, live.
//
// Data: GET /status gives the execution, its tasks, health and agent metrics, and the log
// position they reflect; the workspace stream is then opened after that position, and its
// events for this execution (filtered here) are applied to the model (model.js). The
// audit history up to that position fills the timeline and the error log. Agent metrics
// (mean and p95 durations) are re-read from /status, throttled, as tasks settle. Once the
// execution has finished, a slider shows its state at any version (GET /state?version=N).
// Retry (the whole execution's failed tasks, or one of them) reopens a failed execution;
// a banner shows the agent types paused by their circuit breaker.

import { AgentBanner } from "./agents.js";
import {
  getHistory, getStatus, getStrategy, retryTask, sendCommand, workspaceEventsUrl,
} from "./api.js";
import { DagView, dagLegend } from "./dag.js";
import { byTestId, h, mount, setNav, setText, showConnection, showSignIn } from "./dom.js";
import {
  ALLOWED, bandOf, elapsed, formatDateTime, formatDuration, formatTime, percent,
  executionStatus,
} from "./format.js";
import { formatCost } from "./format.js";
import { HistorySlider } from "./history.js";
import { applyEvent, countTasks, executionModel, isFinished } from "./model.js";
import { WorkspaceStream } from "./stream.js";
import { ErrorLog, Timeline, fromHistory } from "./timeline.js";

const RENDER_DELAY_MS = 50;
const METRICS_INTERVAL_MS = 500;
const COMMANDS = ["pause", "resume", "cancel", "retry"];
const PROGRESS_PARTS = [ // [test id, label, statuses]
  ["completed", "completed", ["completed"]],
  ["in-progress", "in progress", ["assigned", "in_progress"]],
  ["pending", "pending", ["pending"]],
  ["failed", "failed", ["failed"]],
  ["skipped", "skipped", ["skipped"]],
  ["cancelled", "cancelled", ["cancelled"]],
];

export async function showExecution(executionId) {
  const status = await getStatus(executionId);
  new ExecutionPage(executionId, status).start();
}

class ExecutionPage {
  constructor(executionId, status) {
    this.id = executionId;
    this.model = executionModel(status);
    this.metricsPosition = status.position;
    this.past = null; // a past version's state while the history slider shows one
    this.busy = null; // the command being sent
    this.renderTimer = null;
    this.metricsTimer = null;
    this.metricsDirty = false;
    this.historyLoaded = false;
    this.heldBack = []; // live events that arrive before the history is in the timeline
    this.inputsByItem = undefined; // the strategy's items' inputs, once the panel needs them
    this.shownTask = null; // what the task panel shows now
    this.build();
  }

  // ---------------------------------------------------------------------- layout

  build() {
    const { execution } = this.model;
    setNav(h("a", { href: "/", class: "back-link" }, "← All executions"));
    const title = (taskId) => this.taskTitle(taskId);
    this.statusCell = h("span", { dataset: { testid: "status" }, class: "status-cell" });
    this.duration = h("span", { dataset: { testid: "duration" } });
    this.durationPrefix = h("span");
    this.errorBox = h("p", { class: "form-error", role: "alert", dataset: { testid: "error-message" } });
    this.buttons = Object.fromEntries(COMMANDS.map((command) => [command, h("button", {
      type: "button", class: `btn btn-${command}`, dataset: { testid: command },
      onclick: () => this.send(command),
    }, label(command))]));

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
    this.band = h("span", { class: "badge", dataset: { testid: "health-band" } });
    this.healthFacts = h("p", { class: "muted small" });
    this.issues = h("ul", { class: "issues", dataset: { testid: "health-issues" } });

    this.agents = new AgentBanner();
    this.history = new HistorySlider(this.id, (past) => {
      this.past = past;
      this.render();
    });

    this.dagBox = h("div", { class: "dag", dataset: { testid: "dag" } });
    this.dag = new DagView(this.dagBox, { onSelect: (taskId) => this.showTask(taskId) });
    this.taskPanel = h("div", { class: "task-panel", dataset: { testid: "task-detail" } },
      h("p", { class: "muted" }, "Select a task in the graph to see its details."));

    this.agentBody = h("tbody");
    // Tokens and cost: shown only once some agent reported any (the llm handler does).
    this.usageHeads = ["Tokens", "Cost"].map((name) =>
      h("th", { scope: "col", class: "num", hidden: true, dataset: { usage: name.toLowerCase() } },
        name));
    this.failedList = h("ul", { class: "failed-tasks", dataset: { testid: "failed-tasks" } });
    this.errorList = h("ol", { class: "error-log", dataset: { testid: "error-log" } });
    this.errors = new ErrorLog(this.errorList, title);
    this.timelineList = h("ol", { class: "timeline", dataset: { testid: "timeline" } });
    this.timeline = new Timeline(this.timelineList, title);

    mount(execution.strategyName,
      h("div", { class: "page-head" },
        h("h1", { class: "page-title" }, execution.strategyName),
        h("p", { class: "muted small mono" }, `Execution ${this.id}`)),
      this.agents.element,
      h("div", { class: "grid grid-top" },
        h("section", { class: "card", "aria-labelledby": "summary-title" },
          h("h2", { id: "summary-title" }, "Status"),
          h("div", { class: "summary" }, this.statusCell,
            h("span", { class: "muted" }, "started ", formatDateTime(execution.startedAt),
              " · ", this.durationPrefix), this.duration),
          h("div", { class: "controls", role: "group", "aria-label": "Execution controls" },
            Object.values(this.buttons)),
          this.errorBox),
        h("section", { class: "card", "aria-labelledby": "health-title" },
          h("h2", { id: "health-title" }, "Health"),
          h("div", { class: "health" }, this.score, h("span", { class: "muted" }, "/100"), this.band),
          this.healthFacts,
          this.issues)),
      h("section", { class: "card", "aria-labelledby": "progress-title" },
        h("h2", { id: "progress-title" }, "Progress ", this.pct),
        this.bar, legend, this.progressNote),
      this.history.element,
      h("section", { class: "card", "aria-labelledby": "dag-title" },
        h("h2", { id: "dag-title" }, "Task graph"),
        h("p", { class: "muted small" }, "Each task waits for the tasks above it that point to it."),
        h("div", { class: "dag-scroll" }, this.dagBox),
        dagLegend(),
        this.taskPanel),
      h("div", { class: "grid grid-wide-first" },
        h("section", { class: "card", "aria-labelledby": "agents-title" },
          h("h2", { id: "agents-title" }, "Agents"),
          h("div", { class: "table-wrap" }, h("table", { class: "table", dataset: { testid: "agent-table" } },
            h("thead", {}, h("tr", {}, ["Agent", "Tasks", "Completed", "Failed", "Retries",
              "Mean", "p95"].map((name, i) =>
              h("th", { scope: "col", class: i ? "num" : null }, name)), this.usageHeads)),
            this.agentBody))),
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
    this.dag.draw([...this.model.tasks.values()]);
    this.render();
    const stream = new WorkspaceStream(workspaceEventsUrl(this.model.execution.workspaceId), {
      onEvent: (event) => this.receive(event),
      onState: showConnection,
      onUnauthorized: showSignIn,
    }, this.model.position);
    stream.start();
    this.agents.load();
    this.loadHistory();
    if (isFinished(this.model.execution)) this.history.open();
    window.setInterval(() => this.renderDuration(), 1000);
  }

  receive(event) {
    if (this.agents.apply(event) || event.executionId !== this.id) return;
    const wasFinished = isFinished(this.model.execution);
    const changed = applyEvent(this.model, event);
    if (this.historyLoaded) this.log([event]);
    else this.heldBack.push(event);
    if (!wasFinished && isFinished(this.model.execution)) {
      this.fetchMetrics(); // the final numbers, now rather than after the throttle
      this.history.open();
    } else if (wasFinished && !isFinished(this.model.execution)) {
      this.history.close(); // a retry reopened it: live again
      this.refreshMetrics();
    } else if (changed.settled || event.type === "metrics-update") {
      this.refreshMetrics();
    }
    this.schedule();
  }

  log(events) {
    this.timeline.add(events);
    this.errors.add(events);
    this.renderErrorsEmpty();
  }

  /** The history up to the page's starting position, into the timeline and error log. */
  async loadHistory() {
    const upTo = this.model.position;
    const kept = [];
    try {
      let after = 0;
      for (;;) {
        const page = await getHistory(this.id, after);
        for (const event of page.events) {
          const shown = event.position <= upTo ? fromHistory(event, this.id) : null;
          if (shown) kept.push(shown);
        }
        const last = page.events.length ? page.events[page.events.length - 1].position : upTo;
        if (page.nextAfter === null || last >= upTo) break;
        after = page.nextAfter;
      }
    } catch (error) {
      console.warn(`history: ${error.message}`);
    }
    this.historyLoaded = true;
    this.log([...kept, ...this.heldBack]);
    this.heldBack = [];
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
      this.schedule();
    }, () => { /* unreachable for now: the stream's indicator says so */ });
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

  render() {
    const { execution } = this.model;
    const shown = `${execution.status} ${execution.interruptedAt || ""}`;
    if (this.statusCell.dataset.shown !== shown) {
      this.statusCell.dataset.shown = shown;
      this.statusCell.dataset.status = execution.status;
      this.statusCell.replaceChildren(...executionStatus(execution));
    }
    this.renderDuration();
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
    setText(this.durationPrefix, execution.finishedAt ? "took " : "running for ");
    setText(this.duration, formatDuration(elapsed(execution.startedAt, execution.finishedAt)));
  }

  renderControls() {
    const { status } = this.model.execution;
    for (const command of COMMANDS) {
      const button = this.buttons[command];
      const nothingFailed = command === "retry" && !this.hasFailedTasks();
      const allowed = ALLOWED[command].has(status) && !nothingFailed;
      button.disabled = this.busy !== null || !allowed;
      button.title = allowed ? "" : nothingFailed ? "No task has failed for good"
        : `Not possible while the execution is ${status}`;
      setText(button, this.busy === command ? `${label(command)}…` : label(command));
    }
  }

  renderProgress() {
    const counts = this.past ? this.past.counts : countTasks(this.model.tasks.values());
    const total = Object.values(counts).reduce((sum, n) => sum + n, 0);
    const summary = [];
    for (const [id, name, statuses] of PROGRESS_PARTS) {
      const count = statuses.reduce((sum, status) => sum + counts[status], 0);
      setText(byTestId(document, `progress-${id}`), count);
      this.barParts[id].style.width = `${total ? (100 * count) / total : 0}%`;
      if (count) summary.push(`${count} ${name}`);
    }
    const settled = counts.completed + counts.failed + counts.skipped + counts.cancelled;
    const pct = percent(settled, total);
    setText(this.pct, `${pct}%`);
    this.bar.setAttribute("aria-label", `${pct}% of ${total} tasks finished: ${summary.join(", ")}`);
    setText(this.progressNote, `${settled} of ${total} tasks finished`
      + (this.past ? ` at version ${this.past.version}` : "") + ".");
  }

  renderHealth() {
    const { health } = this.model;
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
    const issues = health.issues || [];
    const key = issues.join("\n");
    if (this.issues.dataset.key !== key) {
      this.issues.dataset.key = key;
      this.issues.replaceChildren(...(issues.length
        ? issues.map((issue) => h("li", {}, issue))
        : [h("li", { class: "muted no-issues" }, "No issues")]));
    }
  }

  renderAgents() {
    if (this.renderedAgents === this.model.agents) return;
    this.renderedAgents = this.model.agents;
    const tokens = (agent) => (agent.promptTokens || 0) + (agent.completionTokens || 0);
    const showTokens = this.model.agents.some((agent) => tokens(agent) > 0);
    const showCost = this.model.agents.some((agent) => agent.cost > 0);
    const [tokensHead, costHead] = this.usageHeads;
    tokensHead.hidden = !showTokens;
    costHead.hidden = !showCost;
    const rows = this.model.agents.map((agent) => h("tr", { dataset: { agent: agent.agent } },
      h("th", { scope: "row" }, agent.agent),
      h("td", { class: "num" }, agent.tasks),
      h("td", { class: "num" }, agent.completed),
      h("td", { class: "num" }, agent.failed),
      h("td", { class: "num" }, agent.retries),
      h("td", { class: "num" }, formatDuration(agent.meanDurationMs)),
      h("td", { class: "num" }, formatDuration(agent.p95DurationMs)),
      showTokens && h("td", { class: "num", dataset: { usage: "tokens" },
        title: `${agent.promptTokens || 0} prompt + ${agent.completionTokens || 0} completion` },
      tokens(agent) ? tokens(agent).toLocaleString() : "—"),
      showCost && h("td", { class: "num", dataset: { usage: "cost" } },
        agent.cost > 0 ? formatCost(agent.cost) : "—")));
    const columns = 7 + showTokens + showCost;
    this.agentBody.replaceChildren(...(rows.length ? rows
      : [h("tr", {}, h("td", { colspan: columns, class: "empty" }, "No agent has worked yet."))]));
  }

  renderFailed() {
    const failed = [...this.model.tasks.values()].filter((task) => task.status === "failed");
    const retryable = ALLOWED.retry.has(this.model.execution.status) && this.busy === null;
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
      ["Depends on", task.dependsOn.length ? task.dependsOn.join(", ") : "nothing"],
    ];
    if (!then && task.durationMs !== null) facts.push(["Last attempt", formatDuration(task.durationMs)]);
    const data = this.taskData(task, then);
    const key = JSON.stringify([taskId, facts, data.error]);
    const shown = this.shownTask;
    if (shown && shown.key === key && shown.inputs === data.inputs && shown.result === data.result) {
      return; // unchanged: keep the panel, and where its boxes are scrolled to
    }
    this.shownTask = { key, inputs: data.inputs, result: data.result };
    this.taskPanel.replaceChildren(
      h("h3", {}, task.title),
      h("dl", {}, facts.map(([name, value]) => [h("dt", {}, name), h("dd", {}, String(value))])),
      h("div", { class: "task-data" }, taskSections(data)));
  }

  /** What the panel shows of a task beside its facts: the inputs its item gives every
   * task of it, its result, and its last failure (as of the past version, if one is shown). */
  taskData(task, then) {
    const kind = then ? null : task.errorKind;
    const message = then ? then.error : task.errorMessage;
    return {
      inputs: this.itemInputs(task.itemId),
      result: then ? then.result : task.result,
      error: message ? (kind ? `${kind}: ${message}` : message) : null,
    };
  }

  /** The inputs of the strategy's item (null when it has none, undefined while loading):
   * read once from the strategy, when the panel first shows a task. */
  itemInputs(itemId) {
    if (this.inputsByItem === undefined) {
      this.inputsByItem = null;
      getStrategy(this.model.execution.strategyId).then(({ strategy }) => {
        this.inputsByItem = new Map(strategy.document.items.map((item) =>
          [item.id, item.inputs === undefined ? null : item.inputs]));
      }, (error) => {
        console.warn(`strategy: ${error.message}`);
        this.inputsByItem = new Map();
      }).then(() => {
        if (this.dag.selected) this.showTask(this.dag.selected);
      });
    }
    return this.inputsByItem ? (this.inputsByItem.get(itemId) ?? null) : undefined;
  }

  taskTitle(taskId) {
    const task = this.model.tasks.get(taskId);
    return task ? `${task.title} [${task.agent}]` : taskId;
  }
}

const label = (command) => command[0].toUpperCase() + command.slice(1);

/** A JSON value, pretty-printed in a scrolling box (as text: nothing in it is markup). */
const jsonBox = (value, testId) =>
  h("pre", { class: "json-box", tabindex: "0", dataset: { testid: testId } },
    JSON.stringify(value, null, 2));

function taskSections({ inputs, result, error }) {
  return [
    h("h4", {}, "Inputs"),
    inputs === undefined ? h("p", { class: "muted small" }, "Loading…")
      : inputs === null ? h("p", { class: "muted small", dataset: { testid: "task-inputs" } },
        "None: its item has no inputs.")
        : jsonBox(inputs, "task-inputs"),
    h("h4", {}, "Result"),
    result ? jsonBox(result, "task-result")
      : h("p", { class: "muted small", dataset: { testid: "task-result" } }, "None yet."),
    error ? [h("h4", {}, "Last failure"),
      h("p", { class: "error-text", dataset: { testid: "task-error" } }, error)] : null,
  ];
}
