"""The stratexec HTTP service: `create_app(settings)`, and `main(argv)` for `stratexec serve`.

The application's `cleanup_ctx` owns the running parts (`api.services.Services`): the store,
the projection runner, the actors and the stream hub. On the first start with an empty data
directory it creates the demo workspace's token and example strategies; every start
recovers unfinished executions and prints the dashboard link carrying the token.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from aiohttp import web

from stratexec import logs, startup, usecases
from stratexec.api import handlers
from stratexec.api.auth import (
    COOKIE,
    EVENT_APP,
    TOKENS,
    TokenCache,
    auth_middleware,
    presented_secret,
)
from stratexec.api.errors import ApiError, error_middleware
from stratexec.api.handlers import SERVICES, SETTINGS
from stratexec.api.metrics import metrics
from stratexec.api.openapi import docs_page, openapi_document
from stratexec.api.services import Services
from stratexec.api.stream_guard import OPEN_STREAMS, OpenStreams
from stratexec.config import ConfigError, add_config_argument, load_config
from stratexec.domain.errors import InvalidStrategy
from stratexec.domain.strategy import parse_strategy
from stratexec.settings import (
    DataDirInUse,
    ServerSettings,
    StoreSettings,
    add_engine_arguments,
    add_store_arguments,
    engine_options,
)
from stratexec.startup import Parser, StartupError

logger = logging.getLogger("stratexec.server")

ROOT = Path(__file__).resolve().parent
STATIC = ROOT / "static"
EXAMPLES = ROOT / "examples"
DEMO_WORKSPACE = "demo"
DEMO_USER = "demo"
TOKEN_FILE = "dashboard-token"
FIRST_START_EXAMPLES = ("product-launch.json", "small-demo.json")
SERVE_HELP = "serve the HTTP API, the live streams and the dashboard"
EXIT_INVALID, EXIT_INTERRUPTED = 2, 130


DASHBOARD_SECRET = web.AppKey("dashboard_secret", str)


def create_app(settings: ServerSettings) -> web.Application:
    app = web.Application(client_max_size=settings.max_body_bytes,
                          middlewares=[error_middleware, auth_middleware])
    app[SETTINGS] = settings
    app[TOKENS] = TokenCache()
    app[OPEN_STREAMS] = OpenStreams()
    app.cleanup_ctx.append(_services)
    app.on_shutdown.append(_end_streams)
    app.router.add_get("/api/me", handlers.me)
    app.router.add_post("/api/strategies", handlers.create_strategy)
    app.router.add_get("/api/strategies", handlers.list_strategies)
    app.router.add_get("/api/strategies/{strategyId}", handlers.get_strategy)
    app.router.add_post("/api/executions/start", handlers.start_execution)
    app.router.add_get("/api/executions", handlers.list_executions)
    app.router.add_get("/api/executions/{executionId}/status", handlers.execution_status)
    app.router.add_post("/api/executions/{executionId}/pause", handlers.pause)
    app.router.add_post("/api/executions/{executionId}/resume", handlers.resume)
    app.router.add_post("/api/executions/{executionId}/cancel", handlers.cancel)
    app.router.add_post("/api/executions/{executionId}/retry", handlers.retry)
    app.router.add_post("/api/executions/{executionId}/tasks/{taskId}/retry",
                        handlers.retry_task)
    app.router.add_post("/api/agents/{agentType}/resume", handlers.resume_agent_type)
    app.router.add_get("/api/executions/{executionId}/events", handlers.execution_events)
    app.router.add_get("/api/executions/{executionId}/ws", handlers.execution_socket)
    app.router.add_get("/api/executions/{executionId}/history", handlers.execution_history)
    app.router.add_get("/api/executions/{executionId}/state", handlers.execution_state)
    app.router.add_get("/api/executions/{executionId}/health", handlers.execution_health)
    app.router.add_get("/api/workspaces/{workspaceId}/events", handlers.workspace_events)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/api/openapi.json", openapi)
    app.router.add_get("/docs", docs_page)
    app.router.add_get("/", page)
    app.router.add_get("/executions/{executionId}", page)
    app.router.add_get("/static/{path:.+}", static_file)
    return app


async def _services(app: web.Application) -> AsyncIterator[None]:
    """Start the services, and recover unfinished executions last, once everything else
    has started: a start-up that fails has run none of them. A part that fails stops
    the ones started before it."""
    services = await asyncio.to_thread(Services.start, app[SETTINGS])
    try:
        app[SERVICES] = services
        app[EVENT_APP] = services.engine.app
        app[DASHBOARD_SECRET] = await asyncio.to_thread(bootstrap, services)
        await services.caught_up()  # serve nothing older than what is already recorded
        await services.hub.start()
        services.engine.runner.subscribe(logs.log_feed_rows)
        for execution_id in await asyncio.to_thread(services.recover):
            logs.execution_recovered(execution_id)
    except BaseException:
        await asyncio.to_thread(services.stop)
        raise
    yield
    await asyncio.to_thread(services.stop)


async def _end_streams(app: web.Application) -> None:
    """Streams end at shutdown's first step: aiohttp waits for open handlers before it runs
    the cleanup context, and a stream handler would otherwise hold it up. The executions
    stop just before, so that their `execution-interrupted` events still reach the open
    streams (the views say the same while the server is down). A stream still writing to a
    client that stopped reading has its connection aborted soon after."""
    if SERVICES in app:
        services = app[SERVICES]
        await services.stop_executions()
        await services.hub.stop()
    await app[OPEN_STREAMS].close()


def bootstrap(services: Services) -> str:
    """The dashboard token's secret; on the first start, also the demo workspace's token
    and example strategies. The secret is kept in the data directory (readable by its owner
    only) so that later starts print the same link, as Jupyter does."""
    engine = services.engine
    path = engine.store.data_dir / TOKEN_FILE
    first_start = not path.exists()
    if not first_start:
        secret = path.read_text().strip()
        if usecases.find_token(engine.app, secret) is not None:
            return secret
    _, secret = usecases.issue_token(engine.app, DEMO_USER, [DEMO_WORKSPACE], label="dashboard")
    path.touch(mode=0o600)
    path.write_text(secret + "\n")
    if first_start:
        for name in FIRST_START_EXAMPLES:
            example = EXAMPLES / name
            if example.exists():
                document = json.loads(example.read_text()) | {"workspaceId": DEMO_WORKSPACE}
                try:
                    usecases.define_strategy(engine.app, parse_strategy(document),
                                             engine.rules)
                except InvalidStrategy as error:  # the config file's rules leave a type out
                    logger.warning("example %s not defined: %s", name, error)
    return secret


# ---------------------------------------------------------------- operations

async def healthz(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    try:
        state = await asyncio.to_thread(usecases.engine_state, services.engine)
        node = usecases.node_state(services.engine)
        paused = await asyncio.to_thread(usecases.paused_agent_types, services.engine.views)
    except Exception as store_error:  # the store is unreachable: say so, do not crash
        return web.json_response({"status": "unavailable", "store": {
            "kind": services.engine.store.store, "ok": False, "error": str(store_error)}},
            status=503)
    store: dict[str, object] = {"kind": state.store, "ok": True}
    projections: dict[str, object] = {"lag": state.lag, "error": state.projection_error}
    described: dict[str, object] = {"name": node.name, "runsProjections": node.runs_projections}
    if await _has_valid_token(request):  # log positions say how busy every workspace is
        store["position"], projections["position"] = state.position, state.projected
        described |= {"ownedExecutions": node.owned_executions, "takeovers": node.takeovers}
    health = {
        "status": "ok" if state.projection_error is None else "degraded",
        "node": described,
        "store": store, "projections": projections,
        "subscribers": services.hub.subscriber_count,
        "pausedAgentTypes": paused,
    }
    workers = await asyncio.to_thread(usecases.worker_health, services.engine)
    if workers is not None:
        health["workers"] = workers
    return web.json_response(health)


async def _has_valid_token(request: web.Request) -> bool:
    secret = presented_secret(request)
    return secret is not None and await request.app[TOKENS].grant_for(
        request.app[EVENT_APP], secret) is not None


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


async def static_file(request: web.Request) -> web.StreamResponse:
    """A file of the dashboard. aiohttp's own static route answers a missing file with an
    empty `application/octet-stream` 404; this one answers the JSON error, as every route
    does, and nothing outside `static/` (`..`, links) is ever served."""
    root = STATIC.resolve()
    try:
        wanted = (root / request.match_info["path"]).resolve()
        found = wanted.is_relative_to(root) and wanted.is_file()
    except (OSError, ValueError):  # a NUL byte, a name too long: no such file either
        found = False
    if not found:
        raise ApiError(404, "not_found", f"no file {request.path}")
    return web.FileResponse(wanted)


async def page(request: web.Request) -> web.StreamResponse:
    """A dashboard page. Opened with `?token=`, it sets the cookie and drops the token from
    the address, so that it is neither bookmarked nor sent in Referer headers."""
    secret = request.query.get("token")
    index = STATIC / "index.html"
    if secret is not None:
        grant = await request.app[TOKENS].grant_for(request.app[EVENT_APP], secret)
        if grant is None and index.exists():  # the page itself says so, as a person reads it
            return web.FileResponse(index, status=401)
        if grant is None:
            raise ApiError(401, "unauthorized", "the token in this link is unknown or revoked")
        others = {k: v for k, v in request.query.items() if k != "token"}
        response = web.Response(status=303,
                                headers={"Location": str(request.rel_url.with_query(others))})
        response.set_cookie(COOKIE, secret, httponly=True, samesite="Strict", path="/")
        return response
    if not index.exists():
        raise ApiError(404, "not_found", "the dashboard is not installed")
    return web.FileResponse(index)


# ----------------------------------------------------------------------- main

def freeze_startup_objects() -> None:
    """Leave what the imports and the start-up made out of every later garbage collection.

    Those objects (about 70,000: pydantic's schemas, the route table, the recovered engine)
    live as long as the process, yet each full collection walked them all, and a full
    collection stops the event loop mid-stream: 11.6 ms instead of 8.8 ms before pydantic
    came in, which showed as a worse 100-subscriber p99 in the benchmark."""
    gc.collect()
    gc.freeze()


async def serve(settings: ServerSettings) -> None:
    """Serve until SIGINT or SIGTERM; print the dashboard link once listening.
    `startup.StartupError` (with everything it started stopped) when it cannot start."""
    runner = await start(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
        logger.info("stopping; unfinished executions continue at the next start")
    finally:
        await runner.cleanup()


async def start(settings: ServerSettings) -> web.AppRunner:
    """Bind the port, check the data directory and the store, start the services (which
    recover unfinished executions last), then accept requests: each step only once the
    ones before it succeeded, so that a failure has run and recorded nothing."""
    sockets = startup.listen(settings.host, settings.port)
    runner = web.AppRunner(create_app(settings), handle_signals=False,
                           access_log=logs.requests, access_log_class=logs.RequestLog)
    try:
        await asyncio.to_thread(startup.check_store, settings.store)
        await runner.setup()
        freeze_startup_objects()
        for listener in sockets:
            await web.SockSite(runner, listener).start()
    except BaseException as error:
        await runner.cleanup()
        for listener in sockets:
            listener.close()
        raise _startup_error(error) from None
    _announce(settings, runner)
    return runner


def _startup_error(error: BaseException) -> BaseException:
    """What a start-up failure is reported as: its own one line when it is a known one,
    else its type and message (the traceback goes to the debug log)."""
    if isinstance(error, (StartupError, DataDirInUse, ConfigError)):
        return StartupError(str(error))
    if not isinstance(error, Exception):  # KeyboardInterrupt, SystemExit: not ours to say
        return error
    logger.debug("start-up failed", exc_info=error)
    return StartupError(f"start-up failed: {type(error).__name__}: {error}")


def _announce(settings: ServerSettings, runner: web.AppRunner) -> None:
    """The dashboard link on stdout (a script reads it there) and the start-up log line."""
    host, port = runner.addresses[0][:2]
    secret = runner.app[DASHBOARD_SECRET]
    name = f"[{settings.host}]" if ":" in settings.host else settings.host  # IPv6
    print(f"stratexec is serving http://{name}:{port} "
          f"{settings.config.describe_agents()}; open the dashboard: "
          f"http://{name}:{port}/?token={secret}", flush=True)
    logger.info("started", extra=logs.fields(
        host=host, port=port, store=settings.store.store,
        dataDir=str(settings.store.data_dir), pid=os.getpid(),
        concurrency=settings.engine.concurrency))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `stratexec serve` (and `python -m stratexec.server`)."""
    default = ServerSettings.__dataclass_fields__
    parser.add_argument("--host", default=default["host"].default,
                        help=f"address to listen on (default {default['host'].default})")
    parser.add_argument("--port", type=startup.port, default=default["port"].default,
                        help=f"port to listen on, 0 for any free one "
                             f"(default {default['port'].default})")
    add_store_arguments(parser)
    add_config_argument(parser)
    add_engine_arguments(parser)
    logs.add_log_arguments(parser)


def settings_from(args: argparse.Namespace) -> ServerSettings:
    """`config.ConfigError` for a mistake in the config file."""
    return ServerSettings(store=StoreSettings.from_environment(args.data_dir),
                          engine=engine_options(args), config=load_config(args),
                          host=args.host, port=args.port)


def run(settings: ServerSettings) -> int:
    """Serve until stopped; 0, or 2 (one line on stderr) when it cannot start: the port is
    in use, the data directory is in use or unusable, the store does not answer, or an
    agent handler cannot be built."""
    try:
        asyncio.run(serve(settings))
    except StartupError as error:
        print(f"stratexec: {error}", file=sys.stderr)
        return EXIT_INVALID
    except KeyboardInterrupt:  # Ctrl-C while it was still starting: it stopped what it began
        return EXIT_INTERRUPTED
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m stratexec.server [options]` is `stratexec serve [options]`."""
    parser = Parser(prog="stratexec serve", description=SERVE_HELP)
    add_arguments(parser)
    args = parser.parse_args(argv)
    logs.configure_from(args)
    try:
        settings = settings_from(args)
    except ConfigError as error:
        print(f"stratexec: {error}", file=sys.stderr)
        return EXIT_INVALID
    return run(settings)


if __name__ == "__main__":
    sys.exit(main())
