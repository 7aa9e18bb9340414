"""Writes the stored events of one execution and its health as JSON, for `test_health_versions`.

The fixture `fixtures/health-v1-events.json` was written by this script on the code of
commit 495cb3a, whose `ExecutionHealth.Assessed` events were version 1 (camelCase fields,
no `class_version`). The events are the stored rows as that code wrote them: topic,
originator, version and the msgpack state (base64), in log order:

    .venv/bin/python tests/projections/write_health_fixture.py OUT.json

Run on later code it writes that code's events instead, which are no fixture for version 1.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from projection_scenarios import drive_to_failure, start_execution

from stratexec.domain.application import StratexecApp


def main(out: Path) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        app = StratexecApp(env={"PERSISTENCE_MODULE": "eventsourcing.sqlite",
                                "SQLITE_DBNAME": str(Path(scratch) / "events.sqlite")})
        execution = drive_to_failure(app, start_execution(app))
        events = [{"topic": n.topic, "originator_id": str(n.originator_id),
                   "originator_version": n.originator_version,
                   "state": base64.b64encode(n.state).decode()}
                  for n in app.read_notifications()]
        app.close()
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                            check=False).stdout.strip()
    out.write_text(json.dumps({"written_by": f"stratexec at commit {commit}",
                               "execution_id": str(execution.id), "events": events},
                              indent=1) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
