"""Which circuit breaker settings each agent type gets: its own table in the config file,
else the file's [circuit_breaker], else the --circuit-* flags."""

from __future__ import annotations

from stratexec.circuit_settings import CircuitSettings
from stratexec.config import parse
from stratexec.engine import circuits
from stratexec.settings import EngineOptions

FLAGS = EngineOptions(circuit=CircuitSettings(window=20, failure_rate=0.9, cool_down=5.0))


def test_without_a_file_table_the_flags_hold_for_every_type() -> None:
    config = parse({"agents": {"email": {"handler": "demo"}}}, "x.toml")
    chosen = circuits(FLAGS, config)
    assert set(chosen.values()) == {FLAGS.circuit}
    assert {"email", "research"} <= set(chosen)


def test_the_files_table_beats_the_flags_and_a_types_own_beats_both() -> None:
    config = parse({"circuit_breaker": {"window": 4},
                    "agents": {"email": {"circuit_breaker": {"failure_rate": 0.25}}}}, "x.toml")
    chosen = circuits(FLAGS, config)
    assert chosen["research"] == CircuitSettings(window=4)
    assert chosen["email"] == CircuitSettings(window=4, failure_rate=0.25)
