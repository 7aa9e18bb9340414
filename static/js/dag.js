// The task graph as an SVG in a box that zooms and pans: it opens fitted to the box (the
// whole graph visible), zooms with the mouse wheel, the buttons or + / -, pans by dragging
// or with the arrow keys, and 0 fits it again. Search finds a task by its title or id and
// centres it. Each node is an item with its tasks as chips (one per agent), or, folded, a
// group (an L3 parent or a layer) with the counts of its tasks' states; a click on a group
// opens it. The layout is graph.js's.

import { h, setText, svg } from "./dom.js";
import { plural, statusIcon } from "./format.js";
import {
  GAP_Y, NODE_H, NODE_W, defaultMode, layoutGraph, modeSizes, planItems, titleLines,
  visibleGraph,
} from "./graph.js";
import { TASK_STATUSES } from "./model.js";

const MAX_SCALE = 2.5;
const TITLE_CHARS = 27; // of 12 px bold text across a node
const ZOOM_STEP = 1.25;
const PAN_STEP = 80;
const READABLE_SCALE = 1;
const DRAG_THRESHOLD = 4;
const MODES = [["items", "Every item"], ["l3", "Folded by L3 parent"], ["layer", "Folded by layer"]];

const statusText = (status) => status.replace("_", " ");

export class DagView {
  /** @param {object} options onSelect(taskId) when a task is chosen */
  constructor({ onSelect } = {}) {
    this.onSelect = onSelect;
    this.selected = null;
    this.statusById = new Map();
    this.expanded = new Set();
    this.view = { x: 0, y: 0, k: 1 };
    this.world = svg("g", { class: "dag-world" });
    this.drawing = svg("svg", { class: "dag-svg", role: "group" }, defs(), this.world);
    this.box = h("div", {
      class: "dag-viewport", tabindex: "0", dataset: { testid: "dag" },
      "aria-label": "Task graph: + and - zoom, the arrow keys pan, 0 fits it to the box",
      onkeydown: (event) => this.key(event),
      onwheel: (event) => this.wheel(event),
      onpointerdown: (event) => this.dragStart(event),
    }, this.drawing);
    this.modeSelect = h("select", { dataset: { testid: "dag-fold" },
      onchange: () => this.setMode(this.modeSelect.value) },
    MODES.map(([value, text]) => h("option", { value }, text)));
    this.search = h("input", { type: "search", placeholder: "Find a task by title or id",
      "aria-label": "Find a task by title or id", dataset: { testid: "dag-search" },
      onkeydown: (event) => {
        if (event.key === "Enter") {
          event.preventDefault();
          this.find(this.search.value, event.shiftKey ? -1 : 1);
        }
      },
      oninput: () => { this.matchIndex = -1; this.find(this.search.value, 1); } });
    this.found = h("span", { class: "muted small", dataset: { testid: "dag-found" }, "aria-live": "polite" });
    this.summary = h("span", { class: "muted small", dataset: { testid: "dag-summary" } });
    this.unfold = h("button", { type: "button", class: "btn btn-small", hidden: true,
      onclick: () => { this.expanded.clear(); this.render(); this.fit(); } }, "Fold again");
    const button = (text, label, testid, onclick) => h("button", {
      type: "button", class: "btn btn-small", "aria-label": label, title: label,
      dataset: { testid }, onclick }, text);
    this.toolbar = h("div", { class: "dag-toolbar" },
      h("div", { class: "dag-tools", role: "group", "aria-label": "Zoom" },
        button("+", "Zoom in", "dag-zoom-in", () => this.zoomBy(ZOOM_STEP)),
        button("−", "Zoom out", "dag-zoom-out", () => this.zoomBy(1 / ZOOM_STEP)),
        button("Fit", "Fit the whole graph in the box", "dag-fit", () => this.fit())),
      h("div", { class: "dag-tools" },
        h("label", {}, h("span", { class: "visually-hidden" }, "Show "), this.modeSelect),
        this.unfold),
      h("div", { class: "dag-tools dag-find" }, this.search, this.found),
      this.summary);
    this.element = h("div", { class: "dag-frame" }, this.toolbar, this.box);
    this.matchIndex = -1;
  }

  /** Draw the graph of `tasks` (each {taskId, itemId, title, agent, dependsOn, order,
   * status}); `itemsById`: the strategy's items, for the L3 parents (may be empty). */
  draw(tasks, itemsById = new Map()) {
    this.tasks = new Map(tasks.map((task) => [task.taskId, task]));
    ({ items: this.items } = planItems(tasks, itemsById));
    this.itemOfTask = new Map();
    for (const item of this.items) for (const id of item.taskIds) this.itemOfTask.set(id, item);
    this.mode = defaultMode(this.items);
    const hasL3 = this.items.some((item) => item.l3);
    const sizes = modeSizes(this.items);
    for (const [value, text] of MODES) {
      const option = this.modeSelect.querySelector(`option[value="${value}"]`);
      option.textContent = `${text} (${plural(sizes[value], "node")})`;
    }
    this.modeSelect.querySelector('option[value="l3"]').disabled = !hasL3;
    if (this.mode === "l3" && !hasL3) this.mode = "layer";
    this.modeSelect.value = this.mode;
    this.statusById = new Map(tasks.map((task) => [task.taskId, task.status]));
    this.render();
    // The box has its size only once it is in the document: fit then, and when it changes.
    new ResizeObserver(() => {
      if (!this.fitted && this.box.clientWidth) this.fit();
    }).observe(this.box);
  }

  setMode(mode) {
    this.mode = mode;
    this.expanded.clear();
    this.render();
    this.fit();
  }

  /** Lay out and draw what the mode and the opened groups show. */
  render() {
    const graph = visibleGraph(this.items, this.tasks, this.mode, this.expanded);
    const aspect = this.box.clientWidth && this.box.clientHeight
      ? this.box.clientWidth / this.box.clientHeight : 2;
    const layout = layoutGraph(graph.nodes, graph.edges, aspect);
    this.graph = graph;
    this.layout = layout;
    this.nodes = new Map();
    this.chips = new Map();
    const edgeLayer = svg("g", { class: "dag-edges", "aria-hidden": "true" },
      graph.edges.map((edge) => edgePath(edge, layout.positions)));
    const nodeLayer = svg("g", { class: "dag-nodes" },
      graph.nodes.map((node) => this.nodeElement(node, layout.positions.get(node.id))));
    this.edges = [...edgeLayer.children];
    this.world.replaceChildren(edgeLayer, nodeLayer);
    this.drawing.setAttribute("aria-label", `Task graph: ${this.tasks.size} tasks in `
      + `${this.items.length} items, ${layout.layers} layers; showing ${graph.nodes.length} nodes`);
    const groups = graph.nodes.filter((node) => node.kind === "group").length;
    setText(this.summary, `${this.tasks.size} tasks · ${this.items.length} items`
      + (groups ? ` · ${groups} folded groups (click one to open it)` : ""));
    this.unfold.hidden = this.expanded.size === 0;
    this.update(this.statusById, true);
  }

  nodeElement(node, position) {
    const lines = titleLines(node.title, TITLE_CHARS);
    const group = svg("g", {
      class: `dag-node dag-${node.kind}`, transform: `translate(${position.x},${position.y})`,
      dataset: { node: node.id, layer: String(position.layer) },
    },
    svg("title", {}, node.kind === "group"
      ? `${node.title}: ${node.taskIds.length} tasks in ${node.items} items` : node.title),
    svg("rect", { width: NODE_W, height: NODE_H, rx: 8, class: "dag-node-box" }),
    lines.map((line, index) => svg("text", { x: 10, y: 16 + 14 * index, class: "dag-node-title" }, line)));
    if (node.kind === "group") {
      Object.assign(group.dataset, { group: node.group, testid: "dag-group" });
      group.setAttribute("tabindex", "0");
      group.setAttribute("role", "button");
      const open = () => this.openGroup(node.group);
      group.addEventListener("click", (event) => this.unlessDragged(event, open));
      group.addEventListener("keydown", (event) => onActivate(event, open));
      const bar = svg("g", { class: "dag-group-bar", transform: `translate(10,${NODE_H - 22})` });
      const counts = svg("text", { x: 10, y: NODE_H - 6, class: "dag-node-status" });
      group.append(bar, counts);
      this.nodes.set(node.id, { node, group, bar, counts });
    } else {
      const width = (NODE_W - 20) / node.taskIds.length;
      node.taskIds.forEach((taskId, index) => {
        const task = this.tasks.get(taskId);
        const chip = svg("g", {
          class: "dag-chip", transform: `translate(${10 + index * width},${NODE_H - 24})`,
          tabindex: "0", role: "button", dataset: { taskId, testid: "dag-task" },
        },
        svg("rect", { width: width - 3, height: 18, rx: 4, class: "dag-chip-box" }),
        svg("text", { x: 5, y: 13, class: "dag-chip-text" }, ""));
        chip.addEventListener("click", (event) => this.unlessDragged(event, () => this.select(taskId)));
        chip.addEventListener("keydown", (event) => onActivate(event, () => this.select(taskId)));
        group.append(chip);
        this.chips.set(taskId, { chip, text: chip.lastChild, task, width: width - 3 });
      });
      this.nodes.set(node.id, { node, group });
    }
    return group;
  }

  /** Recolour from a Map of task id -> status (the live or a past state). */
  update(statusById, force = false) {
    this.statusById = statusById;
    if (!this.nodes) return;
    for (const [taskId, { chip, text, task, width }] of this.chips) {
      const status = statusById.get(taskId) || "pending";
      if (!force && chip.dataset.status === status) continue;
      chip.dataset.status = status;
      chip.setAttribute("class", `dag-chip status-${status}${taskId === this.selected ? " selected" : ""}`);
      chip.setAttribute("aria-label", `${task.title}, ${task.agent} agent: ${statusText(status)}`);
      const label = `${statusIcon(status)} ${task.agent}`;
      const room = Math.max(2, Math.floor(width / 6.2));
      setText(text, label.length > room ? `${label.slice(0, room - 1)}…` : label);
    }
    for (const { node, group, bar, counts } of this.nodes.values()) {
      const statuses = node.taskIds.map((id) => statusById.get(id) || "pending");
      const done = statuses.every((status) => status === "completed");
      group.classList.toggle("done", done);
      if (node.kind !== "group") continue;
      const tally = Object.fromEntries(TASK_STATUSES.map((status) => [status, 0]));
      for (const status of statuses) tally[status] += 1;
      const key = TASK_STATUSES.map((status) => tally[status]).join(",");
      if (!force && group.dataset.counts === key) continue;
      group.dataset.counts = key;
      let x = 0;
      bar.replaceChildren(...TASK_STATUSES.filter((status) => tally[status]).map((status) => {
        const width = ((NODE_W - 20) * tally[status]) / statuses.length;
        const rect = svg("rect", { x, width, height: 6, class: `dag-bar status-${status}` });
        x += width;
        return rect;
      }));
      setText(counts, `${statuses.length} tasks: ` + TASK_STATUSES.filter((s) => tally[s])
        .map((status) => `${tally[status]} ${statusIcon(status)}`).join(" "));
      group.setAttribute("aria-label", `${node.title}, ${statuses.length} tasks in ${node.items}`
        + ` items: ${TASK_STATUSES.filter((s) => tally[s]).map((s) => `${tally[s]} ${statusText(s)}`)
          .join(", ")}. Open it.`);
    }
    for (const edge of this.edges) {
      edge.classList.toggle("done", this.nodes.get(edge.dataset.from)?.group.classList.contains("done"));
    }
  }

  select(taskId) {
    this.chips.get(this.selected)?.chip.classList.remove("selected");
    this.selected = taskId;
    this.chips.get(taskId)?.chip.classList.add("selected");
    this.onSelect?.(taskId);
  }

  openGroup(key) {
    this.expanded.add(key);
    const first = this.items.find((item) => this.graph.nodeOfTask.get(item.taskIds[0]) === key);
    this.render();
    if (first) this.centreOn(`item:${first.id}`, Math.max(this.view.k, 0.6));
  }

  // ------------------------------------------------------------------ search

  /** Centre the next (step 1) or previous (-1) task matching `text`, opening its group. */
  find(text, step) {
    const wanted = text.trim().toLowerCase();
    this.world.querySelectorAll(".match").forEach((element) => element.classList.remove("match"));
    if (!wanted) {
      setText(this.found, "");
      return;
    }
    const matches = [...this.tasks.values()].filter((task) =>
      task.taskId.toLowerCase().includes(wanted) || task.title.toLowerCase().includes(wanted));
    if (!matches.length) {
      setText(this.found, "no task matches");
      return;
    }
    this.matchIndex = (this.matchIndex + step + matches.length) % matches.length;
    const task = matches[this.matchIndex];
    setText(this.found, `${this.matchIndex + 1} of ${matches.length}: ${task.title} [${task.agent}]`);
    this.reveal(task.taskId);
  }

  /** Open the task's group if it is folded, centre its node and select it. */
  reveal(taskId) {
    let nodeId = this.graph.nodeOfTask.get(taskId);
    if (this.nodes.get(nodeId)?.node.kind === "group") {
      this.expanded.add(this.nodes.get(nodeId).node.group);
      this.render();
      nodeId = this.graph.nodeOfTask.get(taskId);
    }
    this.centreOn(nodeId, Math.max(this.view.k, READABLE_SCALE));
    this.chips.get(taskId)?.chip.classList.add("match");
    this.select(taskId);
  }

  // ----------------------------------------------------------- zoom and pan

  fit() {
    const width = this.box.clientWidth;
    const height = this.box.clientHeight;
    if (!width || !height) return;
    this.fitted = true;
    const k = Math.min(1, width / this.layout.width, height / this.layout.height);
    this.minScale = Math.min(k, 1) / 2;
    this.setView((width - this.layout.width * k) / 2, (height - this.layout.height * k) / 2, k);
  }

  centreOn(nodeId, k) {
    const position = this.layout.positions.get(nodeId);
    if (!position) return;
    const scale = Math.min(MAX_SCALE, k);
    this.setView(this.box.clientWidth / 2 - (position.x + NODE_W / 2) * scale,
      this.box.clientHeight / 2 - (position.y + NODE_H / 2) * scale, scale);
  }

  zoomBy(factor, cx = this.box.clientWidth / 2, cy = this.box.clientHeight / 2) {
    const { x, y, k } = this.view;
    const scale = Math.min(MAX_SCALE, Math.max(this.minScale || 0.05, k * factor));
    this.setView(cx - ((cx - x) * scale) / k, cy - ((cy - y) * scale) / k, scale);
  }

  setView(x, y, k) {
    this.view = { x, y, k };
    this.world.setAttribute("transform", `translate(${x.toFixed(1)},${y.toFixed(1)}) scale(${k.toFixed(4)})`);
    this.box.dataset.scale = k.toFixed(4);
  }

  /** + / - zoom and 0 fits, wherever the focus is in the graph; the arrows pan. */
  key(event) {
    const { x, y, k } = this.view;
    const moves = { ArrowLeft: [PAN_STEP, 0], ArrowRight: [-PAN_STEP, 0],
      ArrowUp: [0, PAN_STEP], ArrowDown: [0, -PAN_STEP] };
    if (event.key === "+" || event.key === "=") this.zoomBy(ZOOM_STEP);
    else if (event.key === "-" || event.key === "_") this.zoomBy(1 / ZOOM_STEP);
    else if (event.key === "0") this.fit();
    else if (moves[event.key]) this.setView(x + moves[event.key][0], y + moves[event.key][1], k);
    else return; // Enter and Space on a chip or a group select or open it
    event.preventDefault();
  }

  wheel(event) {
    event.preventDefault();
    const box = this.box.getBoundingClientRect();
    this.zoomBy(Math.exp(-event.deltaY * 0.0015), event.clientX - box.left, event.clientY - box.top);
  }

  dragStart(event) {
    if (event.button !== 0) return;
    const start = { x: event.clientX, y: event.clientY, view: { ...this.view } };
    this.dragged = false;
    const move = (e) => {
      const dx = e.clientX - start.x;
      const dy = e.clientY - start.y;
      if (!this.dragged && Math.hypot(dx, dy) < DRAG_THRESHOLD) return;
      this.dragged = true;
      this.box.classList.add("dragging");
      this.setView(start.view.x + dx, start.view.y + dy, start.view.k);
    };
    const end = () => {
      window.removeEventListener("pointermove", move);
      window.removeEventListener("pointerup", end);
      this.box.classList.remove("dragging");
    };
    window.addEventListener("pointermove", move);
    window.addEventListener("pointerup", end);
  }

  /** A click that ended a drag only pans. */
  unlessDragged(event, action) {
    if (this.dragged) {
      this.dragged = false;
      return;
    }
    event.stopPropagation();
    action();
  }
}

function onActivate(event, action) {
  if (event.key === "Enter" || event.key === " ") {
    event.preventDefault();
    event.stopPropagation();
    action();
  }
}

function edgePath({ from, to, count }, positions) {
  const a = positions.get(from);
  const b = positions.get(to);
  const x1 = a.x + NODE_W / 2;
  const y1 = a.y + NODE_H;
  const x2 = b.x + NODE_W / 2;
  const y2 = b.y;
  const bend = Math.max(GAP_Y / 2, Math.abs(y2 - y1) / 2);
  return svg("path", {
    class: "dag-edge", dataset: { from, to, count: String(count) },
    "stroke-width": (1.2 + Math.log2(count)).toFixed(1),
    d: `M${x1},${y1} C${x1},${y1 + bend} ${x2},${y2 - bend} ${x2},${y2 - 4}`,
    "marker-end": "url(#dag-arrow)",
  });
}

function defs() {
  return svg("defs", {},
    svg("marker", { id: "dag-arrow", viewBox: "0 0 8 8", refX: "6", refY: "4",
      markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse",
      markerUnits: "userSpaceOnUse" },
    svg("path", { d: "M0,0 L8,4 L0,8 z", class: "dag-arrow" })));
}

/** The colour key under the graph: every task status, colour and text together. */
export function dagLegend() {
  return h("ul", { class: "legend", "aria-label": "Task statuses" },
    TASK_STATUSES.map((status) => h("li", {},
      h("span", { class: `swatch status-${status}`, "aria-hidden": "true" },
        statusIcon(status)),
      statusText(status))));
}
