"""The benchmark: `stratexec bench` (see `bench.report`)."""
