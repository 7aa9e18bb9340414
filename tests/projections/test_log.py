"""The projection runner's page reader gives what eventsourcing's own reading gives."""

from __future__ import annotations

from projection_scenarios import drive_to_failure
from projection_scenarios import start_execution as start

from stratexec.domain.application import StratexecApp
from stratexec.projections.log import read_events


def test_pages_of_events_are_the_mappers_events_in_log_order(app: StratexecApp) -> None:
    execution = start(app)
    drive_to_failure(app, execution)
    expected = [(n.id, app.mapper.to_domain_event(n)) for n in app.read_notifications()]
    assert len(expected) > 10

    assert read_events(app, 0, 1000) == expected
    paged, position = [], 0
    while page := read_events(app, position, 3):
        assert len(page) <= 3
        paged.extend(page)
        position = page[-1][0]
    assert paged == expected
    assert read_events(app, expected[4][0], 2) == expected[5:7]
    assert all(type(ours) is type(theirs) and vars(ours) == vars(theirs)
               for (_, ours), (_, theirs) in zip(paged, expected, strict=True))
