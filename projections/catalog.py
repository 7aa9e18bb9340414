"""Every view, in the order the runner applies each event to them.

The order matters because views read each other's rows in the batch: executions reads a
task's previous status, so it comes before tasks changes it; metrics and feed read a task's
agent (which never changes); feed and health read the executions row, and feed's
execution-completed row needs its final counts, so executions comes first.
"""

from __future__ import annotations

from projections.base import View
from projections.executions import ExecutionsView
from projections.feed import FeedView
from projections.health import HealthView
from projections.metrics import MetricsView
from projections.propagation import PropagationView
from projections.strategies import StrategiesView
from projections.tasks import TasksView

ALL: tuple[View, ...] = (
    StrategiesView(), ExecutionsView(), MetricsView(), TasksView(), HealthView(),
    PropagationView(), FeedView(),
)
