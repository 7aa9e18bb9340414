"""/docs: the API reference page is public, names nothing outside this server, and every
asset it names is served (a vendored, pinned Redoc, with its licence)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

from api_support import running_server

ROOT = Path(__file__).resolve().parents[2]
VENDOR = ROOT / "static" / "vendor"
MiB = 1024 * 1024


class References(HTMLParser):
    """Every address the page names (src, href, spec-url) and its CSP, if any."""

    def __init__(self) -> None:
        super().__init__()
        self.addresses: list[str] = []
        self.policy: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.addresses += [value for name, value in attrs
                           if name in ("src", "href", "spec-url") and value is not None]
        if (attributes.get("http-equiv") or "").lower() == "content-security-policy":
            self.policy = attributes.get("content")


async def test_docs_is_served_without_a_token_and_names_no_external_address(
        tmp_path: Path) -> None:
    async with running_server(tmp_path) as (api, _):
        page = await api.with_token(None).get("/docs")
        assert page.status == 200
        assert page.headers["Content-Type"].startswith("text/html")
        assert not re.search(r"(https?:)?//", page.body), "the page names another host"
        references = References()
        references.feed(page.body)
        local = [a for a in references.addresses if not a.startswith("data:")]
        assert "/api/openapi.json" in local
        assert any(re.fullmatch(r"/static/vendor/redoc-[\d.]+/redoc\.standalone\.js", a)
                   for a in local)
        for address in local:
            assert address.startswith("/"), address
            async with api.session.get(address) as response:  # no token: all public
                assert response.status == 200, address
        assert references.policy is not None
        sources = re.findall(r"[\w-]+-src ([^;]+)", references.policy)
        assert "default-src 'none'" in references.policy
        assert all(re.fullmatch(r"(('none'|'self'|'unsafe-inline'|data:|blob:) ?)+", s.strip())
                   for s in sources), references.policy


def test_the_vendored_copy_is_pinned_licensed_and_small() -> None:
    (folder,) = VENDOR.glob("redoc-*")
    assert re.fullmatch(r"redoc-\d+\.\d+\.\d+", folder.name)
    assert "MIT License" in (folder / "LICENSE").read_text()
    version = folder.name.removeprefix("redoc-")
    bundle = folder / "redoc.standalone.js"
    assert f'Version: "{version}"' in (folder / "redoc.standalone.js.LICENSE.txt").read_text()
    assert f"/static/vendor/{folder.name}/redoc.standalone.js" in (
        ROOT / "static" / "docs.html").read_text()
    assert all(path.stat().st_size < MiB for path in folder.iterdir()), bundle
