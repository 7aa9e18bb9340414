// The agent types their circuit breaker paused, as a banner on both pages. GET /healthz
// lists them when the page opens; the workspace stream's agent-type-paused and
// agent-type-resumed events (sent on every workspace stream) keep the list current. Each
// paused type has a Resume button (POST /api/agents/{type}/resume); a refusal is shown.

import { getHealthz, resumeAgentType } from "./api.js";
import { h, setText, showSignIn } from "./dom.js";
import { formatTime, percent } from "./format.js";

export class AgentBanner {
  constructor() {
    this.paused = new Map(); // agent type -> what paused it (PausedAgentType's fields)
    this.heard = new Set(); // types the stream spoke of while /healthz was being read
    this.busy = null;
    this.list = h("ul", { class: "agent-notices" });
    this.errorBox = h("p", { class: "form-error", role: "alert",
      dataset: { testid: "agent-banner-error" } });
    this.element = h("section", {
      class: "card notice notice-paused", hidden: true, "aria-labelledby": "agents-paused-title",
      dataset: { testid: "agent-banner" },
    }, h("h2", { id: "agents-paused-title" }, "Paused agent types"), this.list, this.errorBox);
  }

  /** The paused types /healthz lists, unless the stream has said otherwise meanwhile. */
  async load() {
    try {
      const health = await getHealthz();
      for (const paused of health.pausedAgentTypes || []) {
        if (!this.heard.has(paused.agentType)) this.paused.set(paused.agentType, paused);
      }
    } catch (error) {
      console.warn(`healthz: ${error.message}`);
    }
    this.render();
  }

  /** Apply a stream event; true when it was about an agent type. */
  apply(event) {
    const { data } = event;
    if (event.type === "agent-type-paused") {
      this.paused.set(data.agentType, { ...data, state: "open", pausedAt: event.recordedAt });
    } else if (event.type === "agent-type-resumed") {
      this.paused.delete(data.agentType);
    } else {
      return false;
    }
    this.heard.add(data.agentType);
    this.render();
    return true;
  }

  async resume(agentType) {
    this.busy = agentType;
    setText(this.errorBox, "");
    this.render();
    try {
      await resumeAgentType(agentType);
      this.paused.delete(agentType); // the stream says so too, soon
    } catch (error) {
      if (error.unauthorized) {
        showSignIn();
        return;
      }
      setText(this.errorBox, `Resume ${agentType} refused: ${error.message}`);
    } finally {
      this.busy = null;
      this.render();
    }
  }

  render() {
    this.element.hidden = this.paused.size === 0 && !this.errorBox.textContent;
    this.list.replaceChildren(...[...this.paused.values()].map((paused) => {
      const failed = paused.attempts.length;
      const why = paused.window
        ? `${failed} of its last ${paused.window} attempts failed`
          + ` (${percent(failed, paused.window)}%)` : "its attempts failed";
      const probe = paused.state === "half_open" ? "one attempt is probing it now"
        : paused.probeAt ? `one attempt probes it at ${formatTime(paused.probeAt)}` : "";
      return h("li", { dataset: { agentType: paused.agentType } },
        h("strong", {}, paused.agentType),
        ` is paused: ${why}. None of its attempts start${probe ? `; ${probe}` : ""}. `,
        h("button", {
          type: "button", class: "btn btn-resume", disabled: this.busy !== null,
          "aria-label": `Resume ${paused.agentType}`,
          dataset: { testid: "resume-agent", agentType: paused.agentType },
          onclick: () => this.resume(paused.agentType),
        }, this.busy === paused.agentType ? "Resuming…" : "Resume"));
    }));
  }
}
