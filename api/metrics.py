"""GET /metrics: the Prometheus exposition of one server, rendered by prometheus_client.

Executions and tasks are counted in the token's workspaces, so each scrape builds its own
`CollectorRegistry` rather than sharing one (and nothing goes to the process-wide `REGISTRY`:
a test process runs many servers). It holds two collectors, the token's workspace counts and
the engine's gauges, and the server's append-latency histogram (`Services.append_seconds`).
The SQL and the rendering run in a worker thread; the format follows the Accept header
(`choose_encoder`: text 0.0.4 by default, OpenMetrics when asked for).
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Iterator

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from stratexec import usecases
from stratexec.api.auth import GRANT
from stratexec.api.handlers import SERVICES
from stratexec.api.services import Services
from stratexec.projections.store import ViewStore

ENGINE_GAUGES = (
    ("stratexec_projection_position", "Last log position applied to the read models"),
    ("stratexec_projection_lag_events", "Events recorded but not yet in the read models"),
    ("stratexec_stream_subscribers", "Open SSE and WebSocket streams"),
    ("stratexec_live_executions", "Executions with a live actor (the token's workspaces)"),
)


async def metrics(request: web.Request) -> web.Response:
    body, content_type = await asyncio.to_thread(
        exposition, request.app[SERVICES], request[GRANT].workspaces,
        request.headers.get("Accept", ""))
    return web.Response(body=body, headers={"Content-Type": content_type})


def exposition(services: Services, workspaces: Collection[str], accept: str
               ) -> tuple[bytes, str]:
    """The scrape's body and its content type; blocks (SQL)."""
    registry = CollectorRegistry()
    registry.register(WorkspaceCounts(services.engine.views, workspaces))
    registry.register(services.append_seconds)
    registry.register(EngineGauges(services, workspaces))
    registry.register(TokenUsage(services.engine.views, workspaces))
    registry.register(NodeMetrics(services, workspaces))
    encode, content_type = choose_encoder(accept)
    return encode(registry), content_type


class WorkspaceCounts(Collector):
    """Executions by status, and tasks by agent type and status, in some workspaces."""

    def __init__(self, views: ViewStore, workspaces: Collection[str]) -> None:
        self.views = views
        self.workspaces = workspaces

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield _executions()
        yield _tasks()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        executions, tasks = usecases.operational_counts(self.views, self.workspaces)
        by_status = _executions()
        for status, count in sorted(executions.items()):
            by_status.add_metric([status], count)
        by_agent = _tasks()
        for (agent, status), count in sorted(tasks.items()):
            by_agent.add_metric([agent, status], count)
        yield by_status
        yield by_agent


class EngineGauges(Collector):
    """The projection's position and lag, open streams, and the live execution actors of
    the token's workspaces (the others' are not the token's business)."""

    def __init__(self, services: Services, workspaces: Collection[str]) -> None:
        self.services = services
        self.workspaces = workspaces

    def describe(self) -> Iterator[GaugeMetricFamily]:
        for name, documentation in ENGINE_GAUGES:
            yield GaugeMetricFamily(name, documentation)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        state = usecases.engine_state(self.services.engine)
        values = (state.projected, state.lag, self.services.hub.subscriber_count,
                  usecases.live_executions(self.services.engine, self.workspaces))
        for (name, documentation), value in zip(ENGINE_GAUGES, values, strict=True):
            yield GaugeMetricFamily(name, documentation, value=value)


class NodeMetrics(Collector):
    """This process among the others on the database, labelled with its name: the
    executions of the token's workspaces it owns, how many executions it took over from a
    dead process, and whether it runs the projections."""

    def __init__(self, services: Services, workspaces: Collection[str]) -> None:
        self.services = services
        self.workspaces = workspaces

    def describe(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        yield from _node_families()

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        node = usecases.node_state(self.services.engine)
        owned, takeovers, leads = _node_families()
        owned.add_metric([node.name], usecases.live_executions(self.services.engine,
                                                               self.workspaces))
        takeovers.add_metric([node.name], node.takeovers)
        leads.add_metric([node.name], int(node.runs_projections))
        yield from (owned, takeovers, leads)


def _node_families() -> tuple[GaugeMetricFamily, CounterMetricFamily, GaugeMetricFamily]:
    return (GaugeMetricFamily("stratexec_node_owned_executions",
                              "Executions this process owns and runs", labels=["node"]),
            CounterMetricFamily("stratexec_node_takeovers",
                                "Executions this process took over from a dead one",
                                labels=["node"]),
            GaugeMetricFamily("stratexec_node_runs_projections",
                              "1 if this process applies the events to the read models",
                              labels=["node"]))


class TokenUsage(Collector):
    """LLM tokens (prompt, completion) and their cost per agent type, in some workspaces."""

    def __init__(self, views: ViewStore, workspaces: Collection[str]) -> None:
        self.views = views
        self.workspaces = workspaces

    def describe(self) -> Iterator[CounterMetricFamily]:
        yield _tokens()
        yield _cost()

    def collect(self) -> Iterator[CounterMetricFamily]:
        tokens, cost = _tokens(), _cost()
        for agent, (prompt, completion, spent) in usecases.token_usage(
                self.views, self.workspaces).items():
            tokens.add_metric([agent, "prompt"], prompt)
            tokens.add_metric([agent, "completion"], completion)
            cost.add_metric([agent], spent)
        yield tokens
        yield cost


def _tokens() -> CounterMetricFamily:
    return CounterMetricFamily("stratexec_llm_tokens",
                               "Tokens used by successful attempts, by agent type and kind"
                               " (prompt, completion; the token's workspaces)",
                               labels=["agent", "kind"])


def _cost() -> CounterMetricFamily:
    return CounterMetricFamily("stratexec_llm_cost",
                               "Cost of those tokens by agent type, as priced by"
                               " price_per_1k_tokens (the token's workspaces)", labels=["agent"])


def _executions() -> GaugeMetricFamily:
    return GaugeMetricFamily("stratexec_executions",
                             "Executions by status (the token's workspaces)", labels=["status"])


def _tasks() -> GaugeMetricFamily:
    return GaugeMetricFamily("stratexec_tasks",
                             "Tasks by agent type and status (the token's workspaces)",
                             labels=["agent", "status"])
