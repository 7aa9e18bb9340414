// The history slider of a finished execution: versions 1..latest, each shown as it was
// (GET /state?version=N) with the time it was recorded. It reports a past state, or null
// for the latest (live) one; the page then shows every card as of that version.

import { getState } from "./api.js";
import { h, setText } from "./dom.js";
import { formatClock } from "./format.js";

const SLIDE_DELAY_MS = 120;

export class HistorySlider {
  /** @param {function} onChange called with {version, status, counts, tasks, statusById}
   *  for a past version, or null when the slider is back at the latest one. */
  constructor(executionId, onChange, timeOf = () => null) {
    this.executionId = executionId;
    this.onChange = onChange;
    this.timeOf = timeOf; // version -> when it was recorded (ISO), once the history is read
    this.latest = null;
    this.wanted = null;
    this.opening = false;
    this.input = h("input", {
      type: "range", id: "history-slider", min: 1, max: 1, value: 1, step: 1,
      dataset: { testid: "history-slider" },
      oninput: () => this.slide(Number(this.input.value)),
    });
    this.label = h("output", { for: "history-slider", dataset: { testid: "history-version" } });
    this.time = h("time", { class: "history-time", dataset: { testid: "history-time" } });
    this.note = h("p", { class: "muted small" });
    this.element = h("section", { class: "card", hidden: true, "aria-labelledby": "history-title" },
      h("h2", { id: "history-title" }, "History"),
      h("label", { for: "history-slider", class: "slider-label" },
        "Show the execution as it was at version "),
      h("div", { class: "slider-row" }, this.input, this.label, this.time),
      this.note);
  }

  /** Show the slider, at the latest version (once the execution has finished). */
  async open() {
    if (this.opening || this.latest !== null) return;
    this.opening = true;
    try {
      const { state } = await getState(this.executionId);
      this.latest = state.latestVersion;
      this.input.max = String(this.latest);
      this.input.value = String(this.latest);
      this.element.hidden = false;
      this.describe(this.latest, state.status);
    } catch (error) {
      console.warn(`state: ${error.message}`);
    } finally {
      this.opening = false;
    }
  }

  /** Hide the slider again (a retry reopened the execution), back at the live state. */
  close() {
    if (this.latest === null) return;
    const showingPast = this.wanted !== null && this.wanted !== this.latest;
    this.latest = null;
    this.wanted = null;
    this.element.hidden = true;
    if (showingPast) this.onChange(null);
  }

  slide(version) {
    this.describe(version, null);
    clearTimeout(this.timer);
    this.timer = window.setTimeout(() => this.show(version), SLIDE_DELAY_MS);
  }

  async show(version) {
    this.wanted = version;
    if (version === this.latest) {
      this.describe(version, null);
      this.onChange(null);
      return;
    }
    let state;
    try {
      ({ state } = await getState(this.executionId, version));
    } catch (error) {
      setText(this.note, `Could not read version ${version}: ${error.message}`);
      return;
    }
    if (this.wanted !== version) return; // the slider has moved on meanwhile
    this.describe(version, state.status);
    this.onChange({ recordedAt: this.timeOf(version),
      version, status: state.status, counts: state.counts,
      tasks: new Map(state.tasks.map((task) => [task.id, task])),
      statusById: new Map(state.tasks.map((task) => [task.id, task.status])),
    });
  }

  describe(version, status) {
    const latest = this.latest || version;
    const at = this.timeOf(version);
    setText(this.label, `${version} of ${latest}`);
    setText(this.time, at ? `recorded at ${formatClock(at)}` : "");
    if (at) this.time.setAttribute("datetime", at);
    this.input.setAttribute("aria-valuetext", `version ${version} of ${latest}`);
    setText(this.note, version === latest
      ? "Showing the latest state. Move the slider (or use the arrow keys) to replay it."
      : `Showing version ${version}${status ? `: the execution was ${status}` : ""}. `
        + "Every card below is as it was then.");
  }
}
