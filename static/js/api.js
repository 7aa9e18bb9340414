// Calls to the stratexec HTTP API. The page is authenticated by the HttpOnly cookie that
// opening the link printed by `stratexec serve` sets, so no token is handled here.

/** An answer other than 2xx, in the API's error shape {error: {code, message, details}}. */
export class ApiError extends Error {
  constructor(status, code, message, details = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status; // 0: the server could not be reached
    this.code = code;
    this.details = details;
  }

  get unauthorized() {
    return this.status === 401;
  }
}

async function call(method, path, body) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, "unreachable", "The server cannot be reached.");
  }
  const text = await response.text();
  let payload = null;
  try {
    payload = text ? JSON.parse(text) : null;
  } catch {
    payload = null;
  }
  if (!response.ok) {
    const error = (payload && payload.error) || {};
    throw new ApiError(response.status, error.code || `http_${response.status}`,
      error.message || `${response.status} ${response.statusText}`, error.details || {});
  }
  return payload;
}

const segment = encodeURIComponent;

export const getMe = () => call("GET", "/api/me");

export const listStrategies = (workspaceId) =>
  call("GET", `/api/strategies?workspaceId=${segment(workspaceId)}&limit=1000`);

/** A strategy with its document (its items, their inputs) and its plan. */
export const getStrategy = (strategyId) =>
  call("GET", `/api/strategies/${segment(strategyId)}`);

export const startExecution = (strategyId, workspaceId) =>
  call("POST", "/api/executions/start", { strategyId, workspaceId });

export const getStatus = (executionId) =>
  call("GET", `/api/executions/${segment(executionId)}/status`);

export const getState = (executionId, version) =>
  call("GET", `/api/executions/${segment(executionId)}/state` +
    (version === undefined ? "" : `?version=${version}`));

export const getHistory = (executionId, after = 0, limit = 1000) =>
  call("GET", `/api/executions/${segment(executionId)}/history?after=${after}&limit=${limit}`);

/** The recorded health assessments, oldest first: {snapshots: [{score, status, recordedAt,
 * position, ...}]}. */
export const getHealthSnapshots = (executionId) =>
  call("GET", `/api/executions/${segment(executionId)}/health`);

/** POST pause | resume | cancel | retry: {success, execution: {id, status}}; 409 when
 * refused. */
export const sendCommand = (executionId, command) =>
  call("POST", `/api/executions/${segment(executionId)}/${command}`);

/** Retry one task that failed for good: as sendCommand(executionId, "retry"). */
export const retryTask = (executionId, taskId) =>
  call("POST", `/api/executions/${segment(executionId)}/tasks/${segment(taskId)}/retry`);

/** Resume an agent type its circuit breaker paused: {success, agentType: {name, state}}. */
export const resumeAgentType = (agentType) =>
  call("POST", `/api/agents/${segment(agentType)}/resume`);

/** The service's health, with the agent types paused by their circuit breaker. */
export const getHealthz = () => call("GET", "/healthz");

export const workspaceEventsUrl = (workspaceId) =>
  `/api/workspaces/${segment(workspaceId)}/events`;
