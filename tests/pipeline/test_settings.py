"""Worker configuration: flags and MONITOR_* variables, validated with clear messages."""

from __future__ import annotations

import argparse

import pytest

from monitor.pipeline.settings import (
    WorkerSettings,
    add_worker_arguments,
    parse_duration_ms,
    worker_settings_from_args,
)


def settings_from(argv: list[str]) -> WorkerSettings:
    parser = argparse.ArgumentParser(exit_on_error=False)
    add_worker_arguments(parser)
    return worker_settings_from_args(parser.parse_args(argv))


@pytest.mark.parametrize(
    ("text", "ms"),
    [("90s", 90_000), ("30m", 1_800_000), ("6h", 21_600_000), ("1d", 86_400_000),
     ("250ms", 250), ("15", 15_000)],
)  # fmt: skip
def test_durations(text: str, ms: int) -> None:
    assert parse_duration_ms(text) == ms


def test_bad_duration_names_the_value() -> None:
    with pytest.raises(ValueError, match=r"invalid duration '6 hours'"):
        parse_duration_ms("6 hours")


def test_defaults() -> None:
    s = settings_from([])
    assert (s.lateness_ms, s.dedup_horizon_ms, s.session_timeout_ms) == (
        6 * 3_600_000, 24 * 3_600_000, 6_000)  # fmt: skip
    assert (s.partitions, s.web_port, s.max_contracts, s.store) == (8, 6066, 5000, "memory://")


def test_environment_sets_defaults_and_flags_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONITOR_LATENESS", "2h")
    monkeypatch.setenv("MONITOR_PARTITIONS", "12")
    s = settings_from(["--partitions", "4"])
    assert s.lateness_ms == 2 * 3_600_000
    assert s.partitions == 4


def test_non_numeric_environment_value_is_an_argparse_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MONITOR_PARTITIONS", "eight")
    with pytest.raises(argparse.ArgumentError, match="invalid int value: 'eight'"):
        settings_from([])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--session-timeout", "2s"], "session timeout must lie in 6s..30m"),
        (["--store", "redis://"], "store must be memory:// or rocksdb://"),
        (["--store", "rocksdb:///elsewhere"], "store must be memory:// or rocksdb://"),
        (["--partitions", "0"], "partitions must lie in 1..1024"),
        (["--max-contracts", "0"], "max contracts must be at least 1"),
        (["--contracts", "/nonexistent/contracts.csv"], "contract registry not found"),
    ],
)
def test_invalid_settings_are_refused_with_a_reason(argv: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        settings_from(argv)


def test_sasl_needs_mechanism_and_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="SASL_SSL needs --sasl-mechanism"):
        settings_from(["--security-protocol", "SASL_SSL"])
    monkeypatch.setenv("MONITOR_SASL_PASSWORD", "secret")
    s = settings_from(["--security-protocol", "SASL_SSL", "--sasl-mechanism", "SCRAM-SHA-512",
                       "--sasl-username", "monitor"])  # fmt: skip
    kwargs = s.security.aiokafka_kwargs()
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
    assert kwargs["sasl_plain_username"] == "monitor"
    assert kwargs["sasl_plain_password"] == "secret"
