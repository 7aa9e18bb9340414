// The task graph's model and layout, as plain functions (dag.js draws them).
//
// A task's layer is the length of the longest dependency path that leads to it. The graph
// drawn is one node per strategy item (its tasks, one per agent, are chips on the node, so
// the item's title is written once), or, folded, one node per L3 parent or per layer with
// the counts of its tasks. Folding bounds what is drawn: a 9,000-task plan opens as a few
// dozen group nodes (never more than MAX_OPEN_NODES groups). Each node's layer is the rank of the lowest layer of its tasks, so an
// edge points down wherever the nodes are items; wide layers wrap into rows to keep the
// drawing about as wide as its box.

export const NODE_W = 200;
export const NODE_H = 64;
const GAP_X = 22;
export const GAP_Y = 44;
const MARGIN = 16;
const SWEEPS = 4;
const MAX_OPEN_NODES = 400; // more items than this open folded

/** Layer of each task: 0 without dependencies, else 1 + the highest layer it depends on. */
function taskLayers(tasks) {
  const byId = new Map(tasks.map((task) => [task.taskId, task]));
  const layerOf = new Map();
  for (const task of tasks) {
    if (layerOf.has(task.taskId)) continue;
    const stack = [[task.taskId, false]]; // iterative: a 9,000-task chain overflows recursion
    const visiting = new Set();
    while (stack.length) {
      const [id, expanded] = stack.pop();
      if (layerOf.has(id)) continue;
      const deps = (byId.get(id).dependsOn || []).filter((dep) => byId.has(dep));
      if (expanded) {
        visiting.delete(id);
        layerOf.set(id, deps.length ? 1 + Math.max(...deps.map((dep) => layerOf.get(dep))) : 0);
        continue;
      }
      if (visiting.has(id)) throw new Error(`dependency cycle through ${id}`);
      visiting.add(id);
      stack.push([id, true]);
      for (const dep of deps) if (!layerOf.has(dep)) stack.push([dep, false]);
    }
  }
  return layerOf;
}

/**
 * The plan's items, each {id, title, taskIds, layer, l3: {id, title} | null}, in plan order.
 * `itemsById` (from the strategy document, may be empty) gives each item's parent chain.
 */
export function planItems(tasks, itemsById) {
  const layerOf = taskLayers(tasks);
  const items = new Map();
  for (const task of [...tasks].sort((a, b) => a.order - b.order)) {
    let item = items.get(task.itemId);
    if (!item) {
      item = { id: task.itemId, title: task.title, taskIds: [], layer: Infinity,
        l3: l3Parent(task.itemId, itemsById) };
      items.set(task.itemId, item);
    }
    item.taskIds.push(task.taskId);
    item.layer = Math.min(item.layer, layerOf.get(task.taskId));
  }
  return { items: [...items.values()], layerOf };
}

function l3Parent(itemId, itemsById) {
  let item = itemsById.get(itemId);
  while (item && item.level > 3) item = itemsById.get(item.parentId);
  return item && item.level === 3 ? { id: item.id, title: item.title } : null;
}

/** Which group an item folds into under `mode` ("l3" or "layer", whose groups hold `span`
 * consecutive layers each); null: no folding. */
function groupKey(item, mode, span = 1) {
  if (mode === "l3") return item.l3 ? `l3:${item.l3.id}` : `item:${item.id}`;
  if (mode === "layer") return `layer:${Math.floor(item.layer / span)}`;
  return null;
}

/** How many layers one group holds when folded by layer: one, unless there are more
 * layers than MAX_OPEN_NODES (a long chain), which then share groups. */
function layerSpan(items) {
  const deepest = Math.max(0, ...items.map((item) => item.layer));
  return Math.max(1, Math.ceil((deepest + 1) / MAX_OPEN_NODES));
}

/** How many nodes each mode draws with every group folded: {items, l3, layer}. */
export function modeSizes(items) {
  const span = layerSpan(items);
  const count = (mode) => new Set(items.map((item) => groupKey(item, mode, span))).size;
  return { items: items.length, l3: count("l3"), layer: count("layer") };
}

/** The fold mode a plan opens with: items if few enough, else by L3 parent if that is
 * few enough, else by layer. */
export function defaultMode(items) {
  if (items.length <= MAX_OPEN_NODES) return "items";
  const groups = new Set(items.map((item) => groupKey(item, "l3")));
  return groups.size <= MAX_OPEN_NODES ? "l3" : "layer";
}

/**
 * The nodes and edges to draw: an item node per item not folded away, a group node per
 * folded group (`expanded` holds the groups opened again). Each node: {id, kind, title,
 * taskIds, layer, items}; each edge {from, to, count} between two distinct nodes.
 */
export function visibleGraph(items, tasksById, mode, expanded) {
  const nodes = new Map();
  const nodeOfTask = new Map();
  const span = layerSpan(items);
  for (const item of items) {
    const key = groupKey(item, mode, span);
    const folded = key !== null && !key.startsWith("item:") && !expanded.has(key);
    const id = folded ? key : `item:${item.id}`;
    let node = nodes.get(id);
    if (!node) {
      node = { id, kind: folded ? "group" : "item", title: folded ? groupTitle(key, item, span)
        : item.title, taskIds: [], layer: Infinity, items: 0, group: key };
      nodes.set(id, node);
    }
    node.items += 1;
    node.layer = Math.min(node.layer, item.layer);
    for (const taskId of item.taskIds) {
      node.taskIds.push(taskId);
      nodeOfTask.set(taskId, id);
    }
  }
  const edges = new Map();
  for (const [taskId, to] of nodeOfTask) {
    for (const dep of tasksById.get(taskId).dependsOn || []) {
      const from = nodeOfTask.get(dep);
      if (from === undefined || from === to) continue;
      const key = `${from}\n${to}`;
      const edge = edges.get(key);
      if (edge) edge.count += 1;
      else edges.set(key, { from, to, count: 1 });
    }
  }
  return { nodes: [...nodes.values()], edges: [...edges.values()], nodeOfTask };
}

function groupTitle(key, item, span) {
  if (!key.startsWith("layer:")) return item.l3.title;
  const first = Math.floor(item.layer / span) * span + 1;
  return span === 1 ? `Layer ${first}` : `Layers ${first}–${first + span - 1}`;
}

/** Positions {x, y, row} by node id, and the drawing's size, for about `aspect` = w / h. */
export function layoutGraph(nodes, edges, aspect = 2) {
  const ranks = [...new Set(nodes.map((node) => node.layer))].sort((a, b) => a - b);
  const rankOf = new Map(ranks.map((layer, rank) => [layer, rank]));
  const layersOfNodes = ranks.map(() => []);
  for (const node of nodes) layersOfNodes[rankOf.get(node.layer)].push(node.id);
  orderByBarycentre(layersOfNodes, edges);
  const cellW = NODE_W + GAP_X;
  const cellH = NODE_H + GAP_Y;
  const perRow = Math.max(3, Math.round(Math.sqrt((aspect * nodes.length * cellH) / cellW)));
  const rows = [];
  const layerOfRow = [];
  layersOfNodes.forEach((layer, rank) => {
    for (let start = 0; start < layer.length; start += perRow) {
      rows.push(layer.slice(start, start + perRow));
      layerOfRow.push(rank);
    }
  });
  const widest = Math.max(1, ...rows.map((row) => row.length));
  const width = 2 * MARGIN + widest * cellW - GAP_X;
  const height = 2 * MARGIN + Math.max(1, rows.length) * cellH - GAP_Y;
  const positions = new Map();
  rows.forEach((row, index) => {
    const offset = ((widest - row.length) * cellW) / 2;
    row.forEach((id, column) => positions.set(id, {
      x: MARGIN + offset + column * cellW, y: MARGIN + index * cellH, layer: layerOfRow[index],
    }));
  });
  return { positions, width, height, layers: layersOfNodes.length };
}

/** A few barycentre sweeps, down then up, to order each layer so fewer edges cross. */
function orderByBarycentre(layers, edges) {
  const preds = new Map();
  const succs = new Map();
  for (const { from, to } of edges) {
    (preds.get(to) || preds.set(to, []).get(to)).push(from);
    (succs.get(from) || succs.set(from, []).get(from)).push(to);
  }
  const place = new Map();
  const centre = (layer) => layer.forEach((id, index) => place.set(id, index - (layer.length - 1) / 2));
  layers.forEach(centre);
  const sweep = (order, neighbours) => {
    for (const rank of order) {
      const layer = layers[rank];
      const score = new Map(layer.map((id) => {
        const near = (neighbours.get(id) || []).filter((other) => place.has(other));
        return [id, near.length
          ? near.reduce((sum, other) => sum + place.get(other), 0) / near.length : place.get(id)];
      }));
      layer.sort((a, b) => score.get(a) - score.get(b)); // stable: ties keep plan order
      centre(layer);
    }
  };
  const down = layers.map((_, rank) => rank).slice(1);
  const up = layers.map((_, rank) => rank).reverse().slice(1);
  for (let i = 0; i < SWEEPS; i += 1) {
    sweep(down, preds);
    sweep(up, succs);
  }
}

/** A title in at most two lines of `chars`: wrapped at words; a longer one keeps its start
 * and its end (where "… segment 17" tells two titles apart), cut in the middle. */
export function titleLines(title, chars = 30) {
  if (title.length <= chars) return [title];
  const words = title.split(/\s+/);
  let first = "";
  while (words.length && (first ? `${first} ${words[0]}` : words[0]).length <= chars) {
    first = first ? `${first} ${words.shift()}` : words.shift();
  }
  if (!first) first = title.slice(0, chars - 1) + "…";
  const rest = words.join(" ") || title.slice(first.length - 1);
  if (!words.length && first.endsWith("…")) return [first, `…${title.slice(-(chars - 1))}`];
  return [first, rest.length <= chars ? rest : `…${rest.slice(-(chars - 1))}`];
}
