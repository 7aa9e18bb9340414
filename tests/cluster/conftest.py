"""Fixtures of the cluster tests: nodes on one fresh PostgreSQL database, an HTTP session."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from cluster_support import Cluster


@pytest.fixture
def cluster(tmp_path: Path, postgres_env: dict[str, str]) -> Iterator[Cluster]:
    nodes = Cluster(tmp_path, postgres_env)
    yield nodes
    nodes.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client
