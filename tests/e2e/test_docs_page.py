"""/docs in a browser (Debian's Chromium, driven by Playwright, against `stratexec serve`):
Redoc renders the server's own OpenAPI document, and nothing is loaded from another host.
The bundle's sidebar asks for a logo on Redocly's CDN: the page's Content-Security-Policy
blocks that request before it is sent (the browser reports the failure as `csp`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from api_support import ServerProcess
from playwright.sync_api import BrowserContext, Request, Response


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    running = ServerProcess.start(tmp_path / "data")
    try:
        yield running
    finally:
        running.stop()
        for pipe in (running.process.stdout, running.process.stderr):
            if pipe is not None:
                pipe.close()


def test_docs_renders_the_document_from_this_server_only(
        browser: BrowserContext, server: ServerProcess, tmp_path: Path) -> None:
    page = browser.new_page()
    asked: list[Request] = []
    answered: list[Response] = []

    def on_request(request: Request) -> None:  # Playwright wraps the handler: not list.append
        asked.append(request)

    def on_response(response: Response) -> None:
        answered.append(response)

    page.on("request", on_request)
    page.on("response", on_response)
    page.goto(server.url + "/docs")
    page.locator("h2", has_text="Define a strategy").first.wait_for()
    page.locator("h2", has_text="Live events of one execution (SSE)").first.wait_for()
    page.screenshot(path=tmp_path / "docs.png")
    here = urlsplit(server.url).netloc
    origins = {urlsplit(r.url).netloc for r in answered if not r.url.startswith("blob:")}
    assert origins == {here}, sorted(r.url for r in answered)
    elsewhere = [r for r in asked if urlsplit(r.url).scheme in ("http", "https")
                 and urlsplit(r.url).netloc != here]
    for request in elsewhere:
        assert request.response() is None, request.url  # waits for the request to end
        assert request.failure == "csp", (request.url, request.failure)
    spec = next(r for r in answered if r.url.endswith("/api/openapi.json"))
    assert spec.status == 200
