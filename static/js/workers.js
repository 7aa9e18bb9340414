// With `--agents-on celery`: one line on the dashboard naming the Celery workers seen, the
// queues they serve and the attempts in flight per agent type, from GET /healthz's
// `workers` (the server asks Celery every few seconds; the page reads it as often).
// Hidden when attempts run in the engine's own process.

import { getHealthz } from "./api.js";
import { h, setText } from "./dom.js";

const REFRESH_MS = 5000;

export class WorkersLine {
  constructor() {
    this.text = h("span", { dataset: { testid: "workers-text" } });
    this.element = h("p", { class: "card notice", hidden: true, dataset: { testid: "workers" } },
      h("strong", {}, "Celery workers: "), this.text);
  }

  start() {
    this.load();
    window.setInterval(() => this.load(), REFRESH_MS);
  }

  async load() {
    let workers = null;
    try {
      workers = (await getHealthz()).workers || null;
    } catch (error) {
      console.warn(`healthz: ${error.message}`);
    }
    this.element.hidden = workers === null;
    if (workers !== null) setText(this.text, describe(workers));
  }
}

function describe(workers) {
  const seen = workers.workers.length
    ? workers.workers.map((w) => `${w.name} (${w.queues.length} queues)`).join(", ")
    : "none seen";
  const busy = Object.entries(workers.inFlight).map(([type, n]) => `${type} ${n}`).join(", ");
  const problem = workers.error ? `; inspect failed: ${workers.error}` : "";
  return `${seen}; in flight: ${busy || "nothing"}${problem}`;
}
