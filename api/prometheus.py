"""A small renderer of the Prometheus text exposition format 0.0.4, and a histogram.

`render([Metric(...), histogram, ...])` writes one family per metric: its `# HELP` and
`# TYPE` lines, then one line per sample. A sample is `(labels, value)`, or
`(suffix, labels, value)` for the `_bucket`, `_sum` and `_count` series of a histogram.
"""

from __future__ import annotations

import math
import re
import threading
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate, pairwise
from typing import Literal

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Kind = Literal["gauge", "counter", "histogram"]
Labels = Mapping[str, str]
Sample = tuple[Labels, float] | tuple[str, Labels, float]

_KINDS = ("gauge", "counter", "histogram")
_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_SUFFIXES = ("", "_bucket", "_sum", "_count", "_total")


@dataclass(frozen=True)
class Metric:
    name: str
    kind: Kind
    help: str
    samples: Sequence[Sample]

    def __post_init__(self) -> None:
        if not _METRIC_NAME.fullmatch(self.name):
            raise ValueError(f"invalid metric name {self.name!r}")
        if self.kind not in _KINDS:
            raise ValueError(f"invalid metric type {self.kind!r}; one of {', '.join(_KINDS)}")
        for sample in self.samples:
            suffix, labels, _ = _parts(sample)
            if suffix not in _SUFFIXES:
                raise ValueError(f"invalid sample suffix {suffix!r} for {self.name}")
            for label in labels:
                if not _LABEL_NAME.fullmatch(label) or label.startswith("__"):
                    raise ValueError(f"invalid label name {label!r} for {self.name}")


class Histogram:
    """Observations counted into fixed buckets (upper bounds, `+Inf` implied); thread-safe."""

    kind: Kind = "histogram"

    def __init__(self, name: str, help: str, buckets: Sequence[float]) -> None:
        bounds = [float(bound) for bound in buckets if bound != math.inf]
        if not bounds or any(math.isnan(b) for b in bounds):
            raise ValueError("a histogram needs at least one finite bucket bound")
        if any(low >= high for low, high in pairwise(bounds)):
            raise ValueError(f"bucket bounds must increase strictly: {bounds}")
        self.name = name
        self.help = help
        self.bounds = tuple(bounds)
        self._lock = threading.Lock()
        self._counts = [0] * (len(bounds) + 1)  # per bucket, not cumulative; last is +Inf
        self._sum = 0.0

    def observe(self, value: float) -> None:
        index = bisect_left(self.bounds, value)  # the first bound >= value: `le` semantics
        with self._lock:
            self._counts[index] += 1
            self._sum += value

    def metric(self) -> Metric:
        """A consistent snapshot: cumulative `_bucket` series, `_sum` and `_count`."""
        with self._lock:
            counts, total = list(self._counts), self._sum
        cumulative = list(accumulate(counts))
        buckets: list[Sample] = [
            ("_bucket", {"le": format_value(bound)}, count)
            for bound, count in zip((*self.bounds, math.inf), cumulative, strict=True)]
        return Metric(self.name, self.kind, self.help,
                      [*buckets, ("_sum", {}, total), ("_count", {}, cumulative[-1])])


def render(metrics: Iterable[Metric | Histogram]) -> str:
    return "".join(_family(m.metric() if isinstance(m, Histogram) else m) for m in metrics)


def _family(metric: Metric) -> str:
    lines = [f"# HELP {metric.name} {escape_help(metric.help)}",
             f"# TYPE {metric.name} {metric.kind}"]
    for sample in metric.samples:
        suffix, labels, value = _parts(sample)
        lines.append(f"{metric.name}{suffix}{_labels(labels)} {format_value(value)}")
    return "\n".join(lines) + "\n"


def _parts(sample: Sample) -> tuple[str, Labels, float]:
    if len(sample) == 2:
        return "", sample[0], sample[1]
    return sample


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    pairs = (f'{name}="{escape_label_value(str(value))}"' for name, value in labels.items())
    return "{" + ",".join(pairs) + "}"


def escape_label_value(text: str) -> str:
    return text.replace("\\", r"\\").replace('"', r"\"").replace("\n", r"\n")


def escape_help(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n")


def format_value(value: float) -> str:
    if isinstance(value, int):
        return str(int(value))
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))
