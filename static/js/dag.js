// The task graph as an SVG: one node per planned task, an edge per dependency.
//
// Layered layout computed here: a task's layer is the length of the longest dependency path
// that leads to it (tasks without dependencies are in layer 0), so every edge points down.
// Within a layer, a few barycentre sweeps order the nodes to cut edge crossings.

import { h, svg, setText } from "./dom.js";
import { statusIcon } from "./format.js";
import { TASK_STATUSES } from "./model.js";

const NODE_W = 176;
const NODE_H = 48;
const GAP_X = 20;
const GAP_Y = 40;
const MARGIN = 12;
const TITLE_CHARS = 24;
const SWEEPS = 4;
const MIN_SCALE = 0.7; // narrower screens scroll rather than shrink the text further

/** Layer of each task: 0 without dependencies, else 1 + the highest layer it depends on. */
export function layers(tasks) {
  const byId = new Map(tasks.map((task) => [task.taskId, task]));
  const layerOf = new Map();
  const visiting = new Set();
  const visit = (id) => {
    if (layerOf.has(id)) return layerOf.get(id);
    if (visiting.has(id)) throw new Error(`dependency cycle through ${id}`);
    visiting.add(id);
    const deps = (byId.get(id).dependsOn || []).filter((dep) => byId.has(dep));
    const layer = deps.length ? 1 + Math.max(...deps.map(visit)) : 0;
    visiting.delete(id);
    layerOf.set(id, layer);
    return layer;
  };
  for (const task of tasks) visit(task.taskId);
  return layerOf;
}

/** Node positions {id, layer, x, y}, edges {from, to}, and the drawing's size. */
export function layoutDag(tasks) {
  const layerOf = layers(tasks);
  const ids = new Set(tasks.map((task) => task.taskId));
  const edges = [];
  const preds = new Map(tasks.map((task) => [task.taskId, []]));
  const succs = new Map(tasks.map((task) => [task.taskId, []]));
  for (const task of tasks) {
    for (const dep of task.dependsOn || []) {
      if (!ids.has(dep)) continue;
      edges.push({ from: dep, to: task.taskId });
      preds.get(task.taskId).push(dep);
      succs.get(dep).push(task.taskId);
    }
  }
  const rows = [];
  for (const task of [...tasks].sort((a, b) => a.order - b.order)) {
    const layer = layerOf.get(task.taskId);
    (rows[layer] ||= []).push(task.taskId);
  }
  const place = new Map();
  const centre = () => rows.forEach((row) =>
    row.forEach((id, index) => place.set(id, index - (row.length - 1) / 2)));
  centre();
  const sweep = (order, neighbours) => {
    for (const layer of order) {
      const row = rows[layer];
      const score = new Map(row.map((id) => {
        const near = neighbours.get(id);
        const mean = near.length
          ? near.reduce((sum, other) => sum + place.get(other), 0) / near.length
          : place.get(id);
        return [id, mean];
      }));
      row.sort((a, b) => score.get(a) - score.get(b)); // stable: ties keep plan order
      row.forEach((id, index) => place.set(id, index - (row.length - 1) / 2));
    }
  };
  const down = rows.map((_, layer) => layer).slice(1);
  const up = rows.map((_, layer) => layer).reverse().slice(1);
  for (let i = 0; i < SWEEPS; i += 1) {
    sweep(down, preds);
    sweep(up, succs);
  }
  const widest = Math.max(1, ...rows.map((row) => row.length));
  const width = 2 * MARGIN + widest * NODE_W + (widest - 1) * GAP_X;
  const height = 2 * MARGIN + rows.length * NODE_H + Math.max(0, rows.length - 1) * GAP_Y;
  const nodes = [];
  rows.forEach((row, layer) => {
    const offset = ((widest - row.length) * (NODE_W + GAP_X)) / 2;
    row.forEach((id, index) => nodes.push({
      id, layer, x: MARGIN + offset + index * (NODE_W + GAP_X),
      y: MARGIN + layer * (NODE_H + GAP_Y),
    }));
  });
  return { nodes, edges, width, height, layers: rows.length };
}

const clip = (text, length) => (text.length > length ? `${text.slice(0, length - 1)}…` : text);
const statusText = (status) => status.replace("_", " ");

/** The graph drawn in `container`; colours follow the tasks' statuses. */
export class DagView {
  constructor(container, { onSelect } = {}) {
    this.container = container;
    this.onSelect = onSelect;
    this.nodes = new Map(); // task id -> {group, label}
    this.edges = [];
    this.selected = null;
  }

  /** Draw the graph of `tasks` (each {taskId, title, agent, dependsOn, order, status}). */
  draw(tasks) {
    const layout = layoutDag(tasks);
    const byId = new Map(tasks.map((task) => [task.taskId, task]));
    const position = new Map(layout.nodes.map((node) => [node.id, node]));
    const drawing = svg("svg", {
      class: "dag-svg", width: layout.width, height: layout.height,
      viewBox: `0 0 ${layout.width} ${layout.height}`, role: "group",
      style: `max-width: ${layout.width}px; min-width: ${Math.round(layout.width * MIN_SCALE)}px`,
      "aria-label": `Task graph: ${tasks.length} tasks in ${layout.layers} layers`,
    });
    const edgeLayer = svg("g", { class: "dag-edges", "aria-hidden": "true" });
    this.edges = layout.edges.map(({ from, to }) => {
      const a = position.get(from);
      const b = position.get(to);
      const x1 = a.x + NODE_W / 2;
      const y1 = a.y + NODE_H;
      const x2 = b.x + NODE_W / 2;
      const y2 = b.y;
      const bend = Math.max(GAP_Y / 2, (y2 - y1) / 2);
      const path = svg("path", {
        class: "dag-edge", dataset: { from, to },
        d: `M${x1},${y1} C${x1},${y1 + bend} ${x2},${y2 - bend} ${x2},${y2 - 4}`,
        "marker-end": "url(#dag-arrow)",
      });
      edgeLayer.append(path);
      return { from, path };
    });
    const defs = svg("defs", {},
      svg("marker", { id: "dag-arrow", viewBox: "0 0 8 8", refX: "6", refY: "4",
        markerWidth: "7", markerHeight: "7", orient: "auto-start-reverse" },
      svg("path", { d: "M0,0 L8,4 L0,8 z", class: "dag-arrow" })));
    const nodeLayer = svg("g", { class: "dag-nodes" });
    this.nodes.clear();
    for (const node of layout.nodes) {
      const task = byId.get(node.id);
      const label = svg("text", { x: 10, y: 36, class: "dag-node-status" });
      const group = svg("g", {
        class: "dag-node", transform: `translate(${node.x},${node.y})`, tabindex: "0",
        role: "button", dataset: { taskId: task.taskId, layer: String(node.layer) },
        onclick: () => this.select(task.taskId),
        onkeydown: (event) => {
          if (event.key === "Enter" || event.key === " ") {
            event.preventDefault();
            this.select(task.taskId);
          }
        },
      },
      svg("title", {}, `${task.title} (${task.agent})`),
      svg("rect", { width: NODE_W, height: NODE_H, rx: 8, class: "dag-node-box" }),
      svg("text", { x: 10, y: 19, class: "dag-node-title" }, clip(task.title, TITLE_CHARS)),
      label);
      nodeLayer.append(group);
      this.nodes.set(task.taskId, { group, label, task });
    }
    drawing.append(defs, edgeLayer, nodeLayer);
    this.container.replaceChildren(drawing);
    this.update(new Map(tasks.map((task) => [task.taskId, task.status])));
  }

  /** Recolour the nodes from a Map of task id -> status (the live or a past state). */
  update(statusById) {
    for (const [id, { group, label, task }] of this.nodes) {
      const status = statusById.get(id) || "pending";
      if (group.dataset.status === status) continue;
      group.dataset.status = status;
      group.setAttribute("class", `dag-node status-${status}`);
      group.classList.toggle("selected", id === this.selected);
      group.setAttribute("aria-label", `${task.title}, ${task.agent} agent: ${statusText(status)}`);
      setText(label, `${statusIcon(status)} ${task.agent} · ${statusText(status)}`);
    }
    for (const { from, path } of this.edges) {
      path.classList.toggle("done", statusById.get(from) === "completed");
    }
  }

  select(taskId) {
    if (this.selected) this.nodes.get(this.selected)?.group.classList.remove("selected");
    this.selected = taskId;
    this.nodes.get(taskId)?.group.classList.add("selected");
    this.onSelect?.(taskId);
  }
}

/** The colour key under the graph: every task status, colour and text together. */
export function dagLegend() {
  return h("ul", { class: "legend", "aria-label": "Task statuses" },
    TASK_STATUSES.map((status) => h("li", {},
      h("span", { class: `swatch status-${status}`, "aria-hidden": "true" },
        statusIcon(status)),
      statusText(status))));
}
