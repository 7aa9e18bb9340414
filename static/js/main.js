// Picks the page from the address: `/` is the dashboard, `/executions/{id}` one execution.
// A 401 from the API anywhere while a page loads shows how to sign in.

import { showDashboard } from "./dashboard.js";
import { showProblem, showSignIn } from "./dom.js";
import { showExecution } from "./execution.js";

async function route() {
  const path = window.location.pathname;
  const execution = path.match(/^\/executions\/([^/]+)\/?$/);
  try {
    if (execution) {
      await showExecution(decodeURIComponent(execution[1]));
    } else {
      await showDashboard();
    }
  } catch (error) {
    if (error.unauthorized) {
      showSignIn();
    } else if (error.status === 404 && execution) {
      showProblem("Execution not found",
        "There is no such execution in the workspaces you can see.");
    } else if (error.status === 0) {
      showProblem("Server unreachable",
        "The stratexec server does not answer. Start it again and reload this page.");
    } else {
      console.error(error);
      showProblem("Something went wrong", error.message || String(error));
    }
  }
}

route();
