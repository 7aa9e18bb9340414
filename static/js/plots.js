// Two small SVG plots for the detail page: the health score over time (one point per
// recorded assessment) and the tasks finished per second. No library: a polyline, bars,
// two axes labelled at their ends. A vertical line marks the version the slider shows.

import { h, svg } from "./dom.js";
import { formatClock, formatDuration, plural } from "./format.js";

const W = 560;
const H = 150;
const PAD = { left: 36, right: 10, top: 10, bottom: 22 };

/** How many tasks an event finishes: a completion, a failure for good, the skipped tasks,
 * the tasks a cancellation cancels. */
function finishedCount(event) {
  const d = event.data;
  switch (event.type) {
    case "task-completed": return 1;
    case "task-failed": return d.willRetry ? 0 : 1;
    case "task-skipped": return d.taskIds.length;
    case "execution-cancelled": return d.cancelledTasks || 0;
    default: return 0;
  }
}

/** Tasks finished in each whole second since `startedAt`: [{t (s), n}]. */
export function finishedPerSecond(events, startedAt) {
  const start = new Date(startedAt).getTime();
  const bins = new Map();
  for (const event of events) {
    const n = finishedCount(event);
    if (!n) continue;
    const second = Math.max(0, Math.floor((new Date(event.recordedAt).getTime() - start) / 1000));
    bins.set(second, (bins.get(second) || 0) + n);
  }
  return [...bins.entries()].sort((a, b) => a[0] - b[0]).map(([t, n]) => ({ t, n }));
}

function frame(title, testId, yMax, xLabels, children) {
  const x0 = PAD.left;
  const y0 = H - PAD.bottom;
  return h("figure", { class: "plot", dataset: { testid: testId } },
    h("figcaption", { class: "small" }, title),
    svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title, class: "plot-svg" },
      svg("line", { x1: x0, y1: PAD.top, x2: x0, y2: y0, class: "plot-axis" }),
      svg("line", { x1: x0, y1: y0, x2: W - PAD.right, y2: y0, class: "plot-axis" }),
      svg("text", { x: x0 - 4, y: PAD.top + 8, class: "plot-label", "text-anchor": "end" }, yMax),
      svg("text", { x: x0 - 4, y: y0, class: "plot-label", "text-anchor": "end" }, "0"),
      svg("text", { x: x0, y: H - 6, class: "plot-label" }, xLabels[0]),
      svg("text", { x: W - PAD.right, y: H - 6, class: "plot-label", "text-anchor": "end" }, xLabels[1]),
      children));
}

const spanX = (t, t0, t1) => PAD.left + ((W - PAD.left - PAD.right) * (t - t0)) / Math.max(1, t1 - t0);
const spanY = (v, max) => H - PAD.bottom - ((H - PAD.top - PAD.bottom) * v) / Math.max(1, max);

function cursor(at, t0, t1) {
  if (at === null || at === undefined) return null;
  const x = spanX(at, t0, t1);
  return svg("line", { x1: x, y1: PAD.top, x2: x, y2: H - PAD.bottom, class: "plot-cursor" });
}

/** The score of each assessment (`snapshots`: {score, recordedAt}), 0..100, over time. */
export function healthPlot(snapshots, startedAt, endAt, cursorAt = null) {
  const t0 = new Date(startedAt).getTime();
  const t1 = Math.max(t0 + 1000, new Date(endAt).getTime());
  const points = snapshots.map((s) => [spanX(new Date(s.recordedAt).getTime(), t0, t1), spanY(s.score, 100)]);
  if (points.length) points.push([spanX(t1, t0, t1), points[points.length - 1][1]]); // held since
  return frame(`Health score over time (${plural(snapshots.length, "assessment")})`, "health-plot", "100",
    [formatClock(startedAt), formatClock(new Date(t1).toISOString())], [
      points.length ? svg("polyline", { class: "plot-line", points: points.map((p) => p.join(",")).join(" ") }) : null,
      snapshots.map((s) => svg("circle", { class: `plot-dot band-${String(s.status).toLowerCase()}`, r: 3,
        cx: spanX(new Date(s.recordedAt).getTime(), t0, t1), cy: spanY(s.score, 100) },
      svg("title", {}, `${s.score} (${s.status}) at ${formatClock(s.recordedAt)}`))),
      cursor(cursorAt, t0, t1),
    ]);
}

/** Bars of the tasks finished in each second. */
export function throughputPlot(bins, startedAt, endAt, cursorAt = null) {
  const t0 = new Date(startedAt).getTime();
  const t1 = Math.max(t0 + 1000, new Date(endAt).getTime());
  const seconds = Math.max(1, Math.ceil((t1 - t0) / 1000));
  const max = Math.max(1, ...bins.map((bin) => bin.n));
  const barW = Math.max(1, (W - PAD.left - PAD.right) / seconds - 1);
  return frame(`Tasks finished per second (peak ${max})`, "throughput-plot", String(max),
    [formatClock(startedAt), formatClock(new Date(t1).toISOString())], [
      bins.map((bin) => svg("rect", { class: "plot-bar", x: spanX(t0 + bin.t * 1000, t0, t1), width: barW,
        y: spanY(bin.n, max), height: H - PAD.bottom - spanY(bin.n, max) },
      svg("title", {}, `${bin.n} finished in second ${bin.t + 1}`))),
      cursor(cursorAt, t0, t1),
    ]);
}

const ESTIMATES_SHOWN = 8;

/** How good the ETAs were: the ETA recorded with each assessment (`snapshots[].eta`, when the
 * server records them) beside the time the execution really took from then, for at most
 * ESTIMATES_SHOWN assessments spread over the run; null when none has an ETA. */
export function estimatesTable(snapshots, finishedAt) {
  const estimated = snapshots.filter((s) => s.eta && typeof s.eta.seconds === "number");
  if (!estimated.length) return null;
  const step = Math.max(1, Math.ceil(estimated.length / ESTIMATES_SHOWN));
  const shown = estimated.filter((_, i) => i % step === 0 || i === estimated.length - 1);
  const end = finishedAt ? new Date(finishedAt).getTime() : null;
  return h("div", { class: "table-wrap" }, h("table", { class: "table", dataset: { testid: "estimates" } },
    h("caption", { class: "small" }, "The ETA recorded with each assessment, and what happened"),
    h("thead", {}, h("tr", {}, ["Assessed", "Estimated to go", "p90", "Really took"].map((name, i) =>
      h("th", { scope: "col", class: i ? "num" : null }, name)))),
    h("tbody", {}, shown.map((s) => h("tr", {},
      h("td", {}, formatClock(s.recordedAt)),
      h("td", { class: "num" }, formatDuration(1000 * s.eta.seconds)),
      h("td", { class: "num" }, typeof s.eta.p90Seconds === "number"
        ? formatDuration(1000 * s.eta.p90Seconds) : "—"),
      h("td", { class: "num" }, end === null ? "not finished"
        : formatDuration(end - new Date(s.recordedAt).getTime())))))));
}
