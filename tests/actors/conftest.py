"""Fixtures of the actor tests: every actor stopped after each test, and an inbox."""

from __future__ import annotations

from collections.abc import Iterator

import pykka
import pytest
from helpers import Inbox


@pytest.fixture(autouse=True)
def _stop_actors() -> Iterator[None]:
    yield
    pykka.ActorRegistry.stop_all()


@pytest.fixture
def inbox() -> Inbox:
    return Inbox()
