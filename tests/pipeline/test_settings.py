"""Settings: one model gives flags, MONITOR_* variables, secret files, messages and docs."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from monitor.cli import main
from monitor.pipeline.settings import (
    KafkaSettings,
    WorkerSettings,
    format_duration_ms,
    parse_duration_ms,
)
from monitor.pipeline.settings_flags import (
    MASK,
    add_arguments,
    render_config,
    settings_document,
    settings_from_args,
)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "settings.md"


@pytest.fixture(autouse=True)
def _no_monitor_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("MONITOR_"):
            monkeypatch.delenv(name)


def settings_from(argv: list[str], model: type[KafkaSettings] = WorkerSettings) -> KafkaSettings:
    parser = argparse.ArgumentParser(exit_on_error=False)
    add_arguments(parser, model)
    return settings_from_args(model, parser.parse_args(argv))


@pytest.mark.parametrize(
    ("text", "ms"),
    [("90s", 90_000), ("30m", 1_800_000), ("6h", 21_600_000), ("1d", 86_400_000),
     ("250ms", 250), ("15", 15_000)],
)  # fmt: skip
def test_durations(text: str, ms: int) -> None:
    assert parse_duration_ms(text) == ms
    assert parse_duration_ms(format_duration_ms(ms)) == ms


def test_bad_duration_names_the_value() -> None:
    with pytest.raises(ValueError, match=r"invalid duration '6 hours'"):
        parse_duration_ms("6 hours")


def test_defaults() -> None:
    s = settings_from([])
    assert isinstance(s, WorkerSettings)
    assert (s.lateness, s.dedup_horizon, s.session_timeout) == (6 * 3_600_000, 24 * 3_600_000,
                                                                6_000)  # fmt: skip
    assert (s.partitions, s.web_port, s.max_contracts, s.store) == (8, 6066, 5000, "memory://")
    assert s.create_topics is True and s.topic_replication_factor == 1


def test_environment_sets_defaults_and_flags_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONITOR_LATENESS", "2h")
    monkeypatch.setenv("MONITOR_PARTITIONS", "12")
    monkeypatch.setenv("MONITOR_CREATE_TOPICS", "false")
    s = settings_from(["--partitions", "4"])
    assert isinstance(s, WorkerSettings)
    assert s.lateness == 2 * 3_600_000
    assert s.partitions == 4
    assert s.create_topics is False
    assert settings_from(["--create-topics"]).create_topics is True  # type: ignore[attr-defined]


def test_outage_rules_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONITOR_OUTAGE_RULES", "drop_ratio=0.6,escalation_hours=12/24")
    s = settings_from([])
    assert isinstance(s, WorkerSettings)
    assert (s.outage_rules.drop_ratio, s.outage_rules.escalation_hours) == (0.6, (12, 24))
    assert "MONITOR_OUTAGE_RULES=drop_ratio=0.6,escalation_hours=12/24" in render_config(s)


def test_a_bad_value_names_its_flag_and_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONITOR_PARTITIONS", "eight")
    with pytest.raises(ValueError, match=r"^--partitions / MONITOR_PARTITIONS: .*valid integer"):
        settings_from([])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--session-timeout", "2s"], "session timeout must lie in 6s..30m"),
        (["--lateness", "6 hours"], "--lateness / MONITOR_LATENESS: invalid duration '6 hours'"),
        (["--partitions", "0"], "partitions must lie in 1..1024"),
        (["--max-contracts", "0"], "max contracts must be at least 1"),
        (["--topic-replication-factor", "1", "--topic-min-insync-replicas", "2"],
         "min.insync.replicas must lie in 1..replication factor"),
        (["--ssl-cafile", "/nonexistent/ca.pem"], "--ssl-cafile: file not found"),
        (["--outage-rules", "drop_ratio=2"], "mass-drop ratio must lie in"),
    ],
)  # fmt: skip
def test_invalid_settings_are_refused_with_a_reason(argv: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        settings_from(argv)


def test_an_unknown_choice_is_an_argparse_error() -> None:
    with pytest.raises(argparse.ArgumentError, match="invalid choice: 'redis://'"):
        settings_from(["--store", "redis://"])


def test_sasl_needs_mechanism_and_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="SASL_SSL needs --sasl-mechanism"):
        settings_from(["--security-protocol", "SASL_SSL"])
    with pytest.raises(ValueError, match="SCRAM-SHA-512 needs a username and password"):
        settings_from(["--security-protocol", "SASL_SSL", "--sasl-mechanism", "SCRAM-SHA-512"])
    with pytest.raises(ValueError, match="OAUTHBEARER needs --sasl-oauth-token-provider"):
        settings_from(["--security-protocol", "SASL_SSL", "--sasl-mechanism", "OAUTHBEARER"])
    monkeypatch.setenv("MONITOR_SASL_PASSWORD", "secret")
    s = settings_from(["--security-protocol", "SASL_SSL", "--sasl-mechanism", "SCRAM-SHA-512",
                       "--sasl-username", "monitor"])  # fmt: skip
    kwargs = s.security.aiokafka_kwargs()
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
    assert kwargs["sasl_plain_username"] == "monitor"
    assert kwargs["sasl_plain_password"] == "secret"


def test_a_password_file_and_a_secrets_directory(tmp_path: Path) -> None:
    (tmp_path / "password").write_text("from-a-file\n")
    s = settings_from(["--security-protocol", "SASL_PLAINTEXT", "--sasl-mechanism", "PLAIN",
                       "--sasl-username", "u", "--sasl-password-file", str(tmp_path / "password")],
                      KafkaSettings)  # fmt: skip
    assert s.security.sasl_password == "from-a-file"
    secrets = tmp_path / "secret"  # as Kubernetes mounts a Secret: one file per key
    secrets.mkdir()
    (secrets / "sasl_username").write_text("mounted-user")
    (secrets / "sasl_password").write_text("mounted-password")
    s = settings_from(["--security-protocol", "SASL_SSL", "--sasl-mechanism", "SCRAM-SHA-256",
                       "--secrets-dir", str(secrets)], KafkaSettings)  # fmt: skip
    assert (s.security.sasl_username, s.security.sasl_password) == ("mounted-user",
                                                                    "mounted-password")  # fmt: skip
    # A flag still wins over the mounted file.
    s = settings_from(
        ["--sasl-username", "flag-user", "--secrets-dir", str(secrets)], KafkaSettings
    )
    assert s.sasl_username == "flag-user"


def test_a_secret_given_twice_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "password").write_text("x")
    monkeypatch.setenv("MONITOR_SASL_PASSWORD", "y")
    with pytest.raises(ValueError, match="give MONITOR_SASL_PASSWORD or --sasl-password-file"):
        settings_from(["--sasl-password-file", str(tmp_path / "password")], KafkaSettings)


def test_secrets_never_show(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONITOR_SASL_PASSWORD", "hunter2-secret")
    monkeypatch.setenv("MONITOR_SSL_KEY_PASSWORD", "key-secret")
    s = settings_from(["--security-protocol", "SASL_SSL", "--sasl-mechanism", "PLAIN",
                       "--sasl-username", "u"])  # fmt: skip
    shown = render_config(s) + repr(s) + str(s) + repr(s.security)
    assert "hunter2-secret" not in shown and "key-secret" not in shown
    assert f"MONITOR_SASL_PASSWORD={MASK}" in render_config(s)


def test_print_config_shows_the_effective_settings(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MONITOR_SASL_PASSWORD", "hunter2-secret")
    monkeypatch.setenv("MONITOR_WEB_PORT", "7070")
    assert main(["worker", "--print-config", "--lateness", "90m", "--security-protocol",
                 "SASL_SSL", "--sasl-mechanism", "PLAIN", "--sasl-username", "u"]) == 0  # fmt: skip
    lines = set(capsys.readouterr().out.splitlines())
    assert {"MONITOR_WEB_PORT=7070", "MONITOR_LATENESS=90m", "MONITOR_SECURITY_PROTOCOL=SASL_SSL",
            f"MONITOR_SASL_PASSWORD={MASK}", "MONITOR_SESSION_TIMEOUT=6s"} <= lines  # fmt: skip
    assert not any("hunter2" in line for line in lines)


def test_a_bad_setting_is_one_line_and_exit_status_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MONITOR_WEB_PORT", "many")
    assert main(["worker"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("monitor worker: error: --web-port / MONITOR_WEB_PORT: ")
    assert "\n" not in err


def test_every_setting_has_a_flag_help_and_the_docs_table_equals_the_model() -> None:
    for name, info in WorkerSettings.model_fields.items():
        assert info.description, name
    assert DOCS.read_text(encoding="utf-8") == settings_document(), "run `make docs`"
