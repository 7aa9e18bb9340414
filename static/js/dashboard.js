// The page at `/`: the workspace's strategies (with Start buttons) and its executions,
// newest first, kept live from the workspace's event stream (a snapshot, then events), and
// a banner for any agent type its circuit breaker paused.

import { AgentBanner } from "./agents.js";
import { getMe, listStrategies, startExecution, workspaceEventsUrl } from "./api.js";
import { h, mount, setNav, setText, showConnection, showProblem, showSignIn } from "./dom.js";
import {
  FINISHED, durationText, executionStatus, formatDateTime, formatEta, healthBadge, percent,
  plural,
} from "./format.js";
import { applyToList, newestFirst } from "./model.js";
import { WorkspaceStream } from "./stream.js";
import { WorkersLine } from "./workers.js";

const RENDER_DELAY_MS = 60;
const SHOWN_EXECUTIONS = 200;

export async function showDashboard() {
  const me = await getMe();
  if (!me.workspaces.length) {
    showProblem("No workspace", "The token you signed in with grants no workspace.");
    return;
  }
  const wanted = new URLSearchParams(window.location.search).get("workspace");
  const workspace = me.workspaces.includes(wanted) ? wanted : me.workspaces[0];
  setNav(workspaceSelector(me.workspaces, workspace));

  const strategies = h("tbody");
  const startError = h("p", { class: "form-error", role: "alert", dataset: { testid: "error-message" } });
  const executions = new ExecutionList();
  const truncation = h("p", { class: "muted", dataset: { testid: "executions-truncated" } });
  const agents = new AgentBanner();
  const workers = new WorkersLine();
  mount(`Executions in workspace ${workspace}`,
    h("h1", { class: "page-title" }, "Strategies and executions",
      h("span", { class: "muted page-subtitle" }, ` in workspace ${workspace}`)),
    agents.element,
    workers.element,
    h("section", { class: "card", "aria-labelledby": "strategies-title" },
      h("h2", { id: "strategies-title" }, "Strategies"),
      startError,
      h("div", { class: "table-wrap" }, h("table", { class: "table", dataset: { testid: "strategies" } },
        h("thead", {}, h("tr", {},
          h("th", { scope: "col" }, "Strategy"),
          h("th", { scope: "col", class: "num" }, "Plan size"),
          h("th", { scope: "col" }, "Defined"),
          h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Actions")))),
        strategies))),
    h("section", { class: "card", "aria-labelledby": "executions-title" },
      h("h2", { id: "executions-title" }, "Executions",
        h("span", { class: "muted heading-note" }, " newest first, live")),
      truncation,
      executions.element));

  const answer = await listStrategies(workspace);
  renderStrategies(strategies, answer.strategies, workspace, startError);

  const stream = new WorkspaceStream(workspaceEventsUrl(workspace), {
    onSnapshot: (snapshot) => {
      executions.reset(snapshot.executions);
      truncation.textContent = snapshot.truncated
        ? `Showing the newest ${snapshot.executions.length} of ${snapshot.totalExecutions}`
          + " executions (GET /api/executions pages through them all)."
        : "";
    },
    onEvent: (event) => agents.apply(event) || executions.apply(event),
    onState: showConnection,
    onUnauthorized: showSignIn,
  });
  stream.start();
  agents.load();
  workers.start();
  window.setInterval(() => executions.tick(), 1000);
}

function workspaceSelector(workspaces, current) {
  if (workspaces.length < 2) {
    return h("span", { class: "workspace-name" }, `Workspace: ${current}`);
  }
  const select = h("select", {
    id: "workspace-select",
    onchange: () => {
      const url = new URL(window.location.href);
      url.searchParams.set("workspace", select.value);
      window.location.assign(url);
    },
  }, workspaces.map((ws) => h("option", { value: ws, selected: ws === current }, ws)));
  return h("label", { class: "workspace-select", for: "workspace-select" }, "Workspace ", select);
}

function renderStrategies(tbody, strategies, workspace, errorBox) {
  if (!strategies.length) {
    tbody.replaceChildren(h("tr", {}, h("td", { colspan: 4, class: "empty" },
      "No strategies in this workspace yet: define one with POST /api/strategies.")));
    return;
  }
  tbody.replaceChildren(...strategies.map((strategy) => {
    const button = h("button", {
      type: "button", class: "btn btn-primary", "aria-label": `Start ${strategy.name}`,
      dataset: { testid: "start", strategyId: strategy.id },
      onclick: () => start(strategy, workspace, button, errorBox),
    }, "Start");
    const size = strategy.taskCount === null
      ? "—" : plural(strategy.taskCount, "task");
    return h("tr", { dataset: { strategyId: strategy.id } },
      h("th", { scope: "row" }, strategy.name,
        h("div", { class: "muted small" }, `${plural(strategy.leafCount, "L4 item")} of `
          + `${plural(strategy.itemCount, "item")}`)),
      h("td", { class: "num", dataset: { testid: "task-count" } }, size),
      h("td", {}, formatDateTime(strategy.definedAt)),
      h("td", { class: "actions" }, button));
  }));
}

/** Start an execution of `strategy` and go to its page; say why if the server refuses. */
async function start(strategy, workspace, button, errorBox) {
  button.disabled = true;
  setText(button, "Starting…");
  setText(errorBox, "");
  try {
    const started = await startExecution(strategy.id, workspace);
    window.location.assign(`/executions/${encodeURIComponent(started.executionId)}`);
  } catch (error) {
    if (error.unauthorized) {
      showSignIn();
      return;
    }
    setText(errorBox, `Could not start ${strategy.name}: ${error.message}`);
    button.disabled = false;
    setText(button, "Start");
  }
}

/** The executions table, one row per execution, updated in place. */
class ExecutionList {
  constructor() {
    this.executions = new Map();
    this.rows = new Map();
    this.body = h("tbody");
    this.empty = h("p", { class: "empty" }, "Waiting for the live stream…");
    this.element = h("div", { class: "table-wrap" },
      h("table", { class: "table", dataset: { testid: "executions" } },
        h("thead", {}, h("tr", {},
          h("th", { scope: "col" }, "Execution"),
          h("th", { scope: "col" }, "Status"),
          h("th", { scope: "col" }, "Progress"),
          h("th", { scope: "col" }, "Health"),
          h("th", { scope: "col" }, "Started"),
          h("th", { scope: "col", class: "num" }, "Duration"))),
        this.body),
      this.empty);
    this.pending = null;
  }

  reset(executions) {
    this.executions = new Map(executions.map((execution) => [execution.id, execution]));
    this.render();
  }

  apply(event) {
    if (applyToList(this.executions, event)) this.schedule();
  }

  schedule() {
    if (this.pending === null) {
      this.pending = window.setTimeout(() => {
        this.pending = null;
        this.render();
      }, RENDER_DELAY_MS);
    }
  }

  render() {
    const shown = newestFirst(this.executions).slice(0, SHOWN_EXECUTIONS);
    setText(this.empty, shown.length ? "" : "No executions yet: start a strategy above.");
    this.empty.hidden = shown.length > 0;
    const rows = shown.map((execution) => {
      let row = this.rows.get(execution.id);
      if (!row) {
        row = new ExecutionRow(execution.id);
        this.rows.set(execution.id, row);
      }
      row.update(execution);
      return row.element;
    });
    // Re-order only when needed, so that focus and selection stay put.
    const current = [...this.body.children];
    if (current.length !== rows.length || current.some((row, i) => row !== rows[i])) {
      this.body.replaceChildren(...rows);
    }
  }

  tick() {
    for (const [id, row] of this.rows) {
      const execution = this.executions.get(id);
      if (execution && !execution.finishedAt) row.updateDuration(execution);
    }
  }
}

const SETTLED = ["completed", "failed", "skipped", "cancelled"];

class ExecutionRow {
  constructor(id) {
    const href = `/executions/${encodeURIComponent(id)}`;
    this.link = h("a", { href });
    this.idText = h("div", { class: "muted small mono" }, id.slice(0, 8));
    this.status = h("td", { dataset: { testid: "execution-status" } });
    this.bars = Object.fromEntries(SETTLED.map((state) =>
      [state, h("span", { class: `mini-bar-part part-${state}` })]));
    this.progressText = h("span", { class: "small", dataset: { testid: "execution-progress" } });
    this.eta = h("div", { class: "muted small", dataset: { testid: "execution-eta" } });
    this.health = h("td", { dataset: { testid: "execution-health" } });
    this.started = h("td");
    this.duration = h("td", { class: "num" });
    this.element = h("tr", { dataset: { executionId: id } },
      h("th", { scope: "row" }, this.link, this.idText),
      this.status,
      h("td", {}, h("span", { class: "mini-bar", "aria-hidden": "true" }, Object.values(this.bars)),
        this.progressText, this.eta),
      this.health, this.started, this.duration);
    this.last = {};
  }

  update(execution) {
    setText(this.link, execution.strategyName);
    if (this.last.status !== execution.status
        || this.last.interruptedAt !== execution.interruptedAt) {
      this.status.replaceChildren(...executionStatus(execution));
    }
    const counts = settledCounts(execution);
    const finished = SETTLED.reduce((sum, state) => sum + counts[state], 0);
    for (const state of SETTLED) {
      this.bars[state].style.width = `${percent(counts[state], execution.totalTasks)}%`;
    }
    const breakdown = SETTLED.filter((state) => counts[state])
      .map((state) => `${counts[state]} ${state}`).join(", ");
    setText(this.progressText, `${finished}/${execution.totalTasks} finished`
      + (breakdown ? `: ${breakdown}` : ""));
    setText(this.eta, etaLine(execution));
    if (this.last.healthScore !== execution.healthScore || this.last.status !== execution.status
        || this.last.healthStatus !== execution.healthStatus) {
      this.health.replaceChildren(healthBadge(execution.healthScore, execution.healthStatus,
        execution.status));
    }
    setText(this.started, formatDateTime(execution.startedAt));
    this.updateDuration(execution);
    this.last = { ...execution };
  }

  updateDuration(execution) {
    setText(this.duration, durationText(execution.status, execution.startedAt,
      execution.finishedAt));
  }
}

const settledCounts = (execution) => ({
  completed: execution.completedTasks, failed: execution.failedTasks,
  skipped: execution.skippedTasks, cancelled: execution.cancelledTasks,
});

/** The ETA and the agents' use of a running execution, from its last metrics-update (when
 * the server sends them); "" otherwise. */
function etaLine(execution) {
  if (FINISHED.has(execution.status)) return "";
  const eta = formatEta(execution.eta);
  const use = execution.utilisation;
  return [eta && `ETA ${eta}`, use && `${use.running} running, ${use.queued} queued`
    + (use.concurrency ? ` (${percent(use.running, use.concurrency)}% of ${use.concurrency} slots)` : "")]
    .filter(Boolean).join(" · ");
}
