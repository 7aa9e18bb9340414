"""Every view, in the order the runner applies each event to them.

The order matters because views read each other's rows in the batch: executions reads a
task's previous status, so it comes before tasks changes it; metrics and feed read a task's
agent (which never changes); feed and health read the executions row, and feed's
execution-completed row needs its final counts, so executions comes first; feed reads an
agent circuit's type from its row, so circuits comes before it.
"""

from __future__ import annotations

from stratexec.projections.base import View
from stratexec.projections.circuits import AgentCircuitsView
from stratexec.projections.executions import ExecutionsView
from stratexec.projections.feed import FeedView
from stratexec.projections.health import HealthView
from stratexec.projections.metrics import MetricsView
from stratexec.projections.propagation import PropagationView
from stratexec.projections.strategies import StrategiesView
from stratexec.projections.tasks import TasksView

ALL: tuple[View, ...] = (
    StrategiesView(), ExecutionsView(), MetricsView(), TasksView(), HealthView(),
    PropagationView(), AgentCircuitsView(), FeedView(),
)
