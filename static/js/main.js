// Picks the page from the address: `/` is the dashboard, `/executions/{id}` one execution.
// A 401 from the API anywhere while a page loads shows how to sign in; so does a link
// whose token the server refused.

import { showDashboard } from "./dashboard.js";
import { showProblem, showSignIn } from "./dom.js";
import { showExecution } from "./execution.js";

async function route() {
  if (new URLSearchParams(window.location.search).has("token")) {
    // The server keeps a link's token only when it refused it (a good one is swapped for a
    // cookie and dropped): say so, and take the useless secret out of the address bar.
    const url = new URL(window.location.href);
    url.searchParams.delete("token");
    window.history.replaceState(null, "", url);
    showSignIn("refused");
    return;
  }
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
