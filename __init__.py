"""stratexec: executes business strategies with many agents.

The repository root is this package (`stratexec.domain`, `stratexec.actors`, ...): the
layout a reader sees is the import path. `python -m stratexec` is the `stratexec` command.
"""
