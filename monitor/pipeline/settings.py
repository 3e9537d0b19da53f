"""Every setting of the commands, declared once: type, default, validation and help.

The models here are the single source: :mod:`monitor.pipeline.settings_flags` derives the
command-line flags, ``--print-config`` and the docs table (docs/settings.md) from them, and
pydantic-settings reads the ``MONITOR_*`` environment variables and secret files. Precedence:
a flag, then ``MONITOR_<NAME>``, then a file ``<name>`` in ``--secrets-dir`` (a mounted
Kubernetes Secret), then the default.
"""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import BeforeValidator, Field, SecretStr, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
)

from monitor.engine.outages import OutageRules, parse_outage_rules

ENV_PREFIX = "MONITOR_"
_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h|d)?", re.ASCII)
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, None: 1000}
SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER", "AWS_MSK_IAM"]
_PASSWORD_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
EventLoop = Literal["uvloop", "aio"]
Store = Literal["memory://", "rocksdb://"]


def parse_duration_ms(text: str) -> int:
    """``90s``, ``30m``, ``6h``, ``1d``, ``250ms``; a bare number is seconds."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"invalid duration {text!r} (use e.g. 90s, 30m, 6h, 1d)")
    return int(float(match[1]) * _UNIT_MS[match[2]])


def format_duration_ms(ms: int) -> str:
    """The inverse of :func:`parse_duration_ms` in the largest unit that divides evenly."""
    for unit in ("d", "h", "m", "s"):
        if ms and ms % _UNIT_MS[unit] == 0:
            return f"{ms // _UNIT_MS[unit]}{unit}"
    return f"{ms}ms"


def _duration(value: Any) -> Any:
    return parse_duration_ms(value) if isinstance(value, str) else value


def _outage_rules(value: Any) -> Any:
    return parse_outage_rules(value) if value is None or isinstance(value, str) else value


class DurationMarker:
    """Marks a field as a duration: given as ``90s``/``6h``, held in integer milliseconds."""


#: A duration in integer milliseconds, written ``250ms``, ``90s``, ``30m``, ``6h`` or ``1d``.
Milliseconds = Annotated[int, BeforeValidator(_duration), DurationMarker()]


def _file(what: str) -> Any:
    """A path that must name an existing file (checked when the settings are read)."""
    return Field(default=None, description=what, json_schema_extra={"metavar": "FILE"})


def _env_only(description: str) -> Any:
    """A secret: no flag (flags show up in process lists), only the environment or a file."""
    return Field(default=None, description=description, json_schema_extra={"flag": False})


@dataclass(frozen=True, slots=True)
class KafkaSecurity:
    """How a client authenticates to the brokers: what producers, consumers and Faust need."""

    protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_cafile: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    ssl_key_password: str | None = field(default=None, repr=False)
    oauth_token_provider: str | None = None
    aws_region: str | None = None

    def ssl_context(self) -> ssl.SSLContext:
        """The CA file, else the system CAs; a client certificate for mutual TLS."""
        from monitor.pipeline import kafka_security  # noqa: PLC0415  (brings in aiokafka)

        return kafka_security.ssl_context(self)

    def aiokafka_kwargs(self) -> dict[str, object]:
        """Keyword arguments for aiokafka producers, consumers and admin clients."""
        from monitor.pipeline import kafka_security  # noqa: PLC0415  (brings in aiokafka)

        return kafka_security.aiokafka_kwargs(self)

    def faust_credentials(self) -> Any:
        """Faust's ``broker_credentials`` (``None`` for plaintext)."""
        from monitor.pipeline import kafka_security  # noqa: PLC0415  (brings in aiokafka)

        return kafka_security.faust_credentials(self)


class _Settings(BaseSettings):
    """Common configuration: ``MONITOR_`` variables, secret files without the prefix."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, frozen=True, extra="forbid", arbitrary_types_allowed=True
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # A mounted Kubernetes Secret names its files after the keys (`sasl_password`), so
        # the secrets directory is read without the environment prefix. No .env files: the
        # systemd units and the chart pass the environment themselves.
        secrets_dir = getattr(file_secret_settings, "secrets_dir", None)
        plain_secrets = SecretsSettingsSource(settings_cls, secrets_dir=secrets_dir, env_prefix="")
        return init_settings, env_settings, plain_secrets


class KafkaSettings(_Settings):
    """How every command that talks to Kafka reaches and authenticates to the brokers."""

    bootstrap_servers: str = Field(
        "127.0.0.1:9092", description="Kafka bootstrap servers, comma-separated"
    )
    events_topic: str = Field("callcenter.events", description="input topic of call events")
    security_protocol: SecurityProtocol = Field(
        "PLAINTEXT", description="how clients talk to the brokers"
    )
    sasl_mechanism: SaslMechanism | None = Field(None, description="SASL mechanism (with SASL_*)")
    sasl_username: str | None = Field(None, description="SASL user (PLAIN, SCRAM)")
    sasl_password: SecretStr | None = _env_only("SASL password (PLAIN, SCRAM)")
    sasl_password_file: str | None = _file("file holding the SASL password")
    ssl_cafile: str | None = _file("CA bundle that signs the brokers (default: the system CAs)")
    ssl_certfile: str | None = _file("client certificate (PEM) for mutual TLS")
    ssl_keyfile: str | None = _file("private key (PEM) of the client certificate")
    ssl_key_password: SecretStr | None = _env_only("password of the client key")
    ssl_key_password_file: str | None = _file("file holding the password of the client key")
    sasl_oauth_token_provider: str | None = Field(
        None,
        description="OAUTHBEARER: MODULE:CALLABLE returning a token",
        json_schema_extra={"metavar": "MODULE:CALLABLE"},
    )
    aws_region: str | None = Field(None, description="AWS_MSK_IAM: the cluster's AWS region")
    secrets_dir: str | None = Field(
        None,
        description="directory of files named after settings (e.g. sasl_password), read "
        "as those settings: a mounted Kubernetes Secret",
        json_schema_extra={"metavar": "DIR"},
    )

    @model_validator(mode="after")
    def _check_security(self) -> Self:
        for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile", "sasl_password_file",
                     "ssl_key_password_file"):  # fmt: skip
            path = getattr(self, name)
            if path and not Path(path).is_file():
                raise ValueError(f"{flag_name(name)}: file not found: {path}")
        if self.secrets_dir and not Path(self.secrets_dir).is_dir():
            raise ValueError(f"--secrets-dir: directory not found: {self.secrets_dir}")
        for secret, source in (("sasl_password", "sasl_password_file"),
                               ("ssl_key_password", "ssl_key_password_file")):  # fmt: skip
            if getattr(self, secret) is not None and getattr(self, source):
                raise ValueError(f"give {env_name(secret)} or {flag_name(source)}, not both")
        if bool(self.ssl_certfile) != bool(self.ssl_keyfile) and not self._key_in_certfile():
            raise ValueError("mutual TLS needs --ssl-certfile and --ssl-keyfile")
        if self.security_protocol.startswith("SASL"):
            self._check_sasl()
        # Certificates that do not load, a token hook that does not import, MSK support not
        # installed: settings errors now, not failures at the first connection. Imported here:
        # it brings in aiokafka, which the commands without Kafka (report) do not need.
        from monitor.pipeline import kafka_security  # noqa: PLC0415

        kafka_security.check(self.security)
        return self

    def _key_in_certfile(self) -> bool:
        """A PEM file may hold the certificate and its key together."""
        if not self.ssl_certfile or self.ssl_keyfile:
            return False
        return b"PRIVATE KEY-----" in Path(self.ssl_certfile).read_bytes()

    def _check_sasl(self) -> None:
        protocol, mechanism = self.security_protocol, self.sasl_mechanism
        if mechanism is None:
            raise ValueError(f"{protocol} needs --sasl-mechanism {'|'.join(_MECHANISMS)}")
        if mechanism in _PASSWORD_MECHANISMS and (
            not self.sasl_username or self._sasl_password() is None
        ):
            raise ValueError(
                f"{protocol} {mechanism} needs a username and password (--sasl-username; "
                "MONITOR_SASL_PASSWORD or --sasl-password-file)"
            )
        if mechanism == "OAUTHBEARER" and not self.sasl_oauth_token_provider:
            raise ValueError("OAUTHBEARER needs --sasl-oauth-token-provider MODULE:CALLABLE")
        if mechanism == "AWS_MSK_IAM" and not self.aws_region:
            raise ValueError("AWS_MSK_IAM needs --aws-region")

    def _sasl_password(self) -> str | None:
        return _secret(self.sasl_password, self.sasl_password_file)

    @property
    def security(self) -> KafkaSecurity:
        return KafkaSecurity(
            protocol=self.security_protocol,
            sasl_mechanism=self.sasl_mechanism,
            sasl_username=self.sasl_username,
            sasl_password=self._sasl_password(),
            ssl_cafile=self.ssl_cafile,
            ssl_certfile=self.ssl_certfile,
            ssl_keyfile=self.ssl_keyfile,
            ssl_key_password=_secret(self.ssl_key_password, self.ssl_key_password_file),
            oauth_token_provider=self.sasl_oauth_token_provider,
            aws_region=self.aws_region,
        )


_MECHANISMS = SaslMechanism.__args__  # type: ignore[attr-defined]


class TopicSettings(_Settings):
    """The topics a command creates, or only checks where the cluster's owners provision them."""

    partitions: int = Field(8, description="partitions of the input topic")
    topic_replication_factor: int = Field(
        1, description="replication factor of the topics the monitor creates (managed clusters: 3)"
    )
    topic_min_insync_replicas: int | None = Field(
        None, description="min.insync.replicas of the created topics (default: the broker's)"
    )
    create_topics: bool = Field(
        True, description="create missing topics; --no-create-topics only checks them"
    )

    @model_validator(mode="after")
    def _check_topics(self) -> Self:
        if not 1 <= self.partitions <= 1024:
            raise ValueError("partitions must lie in 1..1024")
        if self.topic_replication_factor < 1:
            raise ValueError("topic replication factor must be at least 1")
        if self.topic_min_insync_replicas is not None and not (
            1 <= self.topic_min_insync_replicas <= self.topic_replication_factor
        ):
            raise ValueError("topic min.insync.replicas must lie in 1..replication factor")
        return self


class OutageSettings(_Settings):
    """What decides outages: the stream and ``monitor report`` must share these."""

    contracts: str | None = _file("contract registry CSV")
    hours: str | None = _file("operating-hours CSV contract_id,line,hours overriding the CMS hours")
    # NoDecode: pydantic-settings would read a structured field's variable as JSON first.
    outage_rules: Annotated[OutageRules, NoDecode, BeforeValidator(_outage_rules)] = Field(
        default_factory=OutageRules,
        description="outage thresholds, e.g. no_answer_min_requests=12,drop_ratio=0.6",
        json_schema_extra={"metavar": "NAME=VALUE,..."},
    )

    # The files are checked by their loaders, whose messages say what is wrong with them.


class ProducerSettings(TopicSettings, KafkaSettings):
    """``monitor publish``, ``simulate --sink kafka``, ``ingest --sink kafka``."""


class WorkerSettings(OutageSettings, TopicSettings, KafkaSettings):
    """``monitor worker``: the streaming worker."""

    app_id: str = Field("callcenter-monitor", description="consumer group and state topic prefix")
    dlq_topic: str = Field("callcenter.dlq", description="dead-letter topic")
    outages_topic: str = Field("callcenter.outages", description="audit topic of outage records")
    web_host: str = Field("127.0.0.1", description="address of /metrics, /healthz and /readyz")
    web_port: int = Field(6066, description="port of /metrics, /healthz and /readyz")
    store: Store = Field(
        "memory://", description="table store; rocksdb:// keeps RocksDB under --data-dir"
    )
    data_dir: str = Field(
        "var/worker", description="worker data directory", json_schema_extra={"metavar": "DIR"}
    )
    lateness: Milliseconds = Field(
        6 * 3_600_000, description="events older than the watermark minus this go to the DLQ"
    )
    dedup_horizon: Milliseconds = Field(
        24 * 3_600_000, description="how long event ids are remembered, in event time"
    )
    max_future: Milliseconds = Field(
        24 * 3_600_000, description="refuse events this far past the wall clock"
    )
    max_contracts: int = Field(5_000, description="hard cap on tracked contracts")
    batch_messages: int = Field(500, description="Kafka messages per processing batch")
    batch_seconds: float = Field(0.2, description="longest wait to fill a batch, in seconds")
    # uvloop runs Faust's per-message machinery markedly faster than asyncio's default loop.
    event_loop: EventLoop = Field("uvloop", description="asyncio event loop; aio is Python's own")
    # What a kill -9 costs before another worker (or the restarted one) resumes. Kafka brokers
    # accept 6 s .. 30 min by default.
    session_timeout: Milliseconds = Field(
        6_000, description="a silent worker loses its partitions after this"
    )
    connect_timeout: Milliseconds = Field(
        60_000, description="at start, retry an unreachable broker this long, then exit 1"
    )
    ready_broker_timeout: Milliseconds = Field(
        15_000, description="/readyz answers 503 once the broker is unreachable this long"
    )
    # Below Kubernetes' default grace of 30 s, with room for the process to exit.
    shutdown_timeout: Milliseconds = Field(
        8_000,
        description="on SIGTERM/SIGINT, exit after this at the latest; what is not committed "
        "is re-read on restart",
    )

    @model_validator(mode="after")
    def _check_worker(self) -> Self:
        if not self.bootstrap_servers.strip():
            raise ValueError("bootstrap servers must not be empty")
        if not 0 <= self.web_port <= 65_535:
            raise ValueError("web port must lie in 0..65535")
        if self.lateness <= 0 or self.dedup_horizon <= 0:
            raise ValueError("lateness and de-duplication horizon must be positive")
        if self.max_contracts < 1:
            raise ValueError("max contracts must be at least 1")
        if self.batch_messages < 1 or self.batch_seconds <= 0:
            raise ValueError("batch size and batch seconds must be positive")
        if not 6_000 <= self.session_timeout <= 1_800_000:
            raise ValueError("session timeout must lie in 6s..30m (the broker's default bounds)")
        if self.connect_timeout < 0 or self.ready_broker_timeout < 1_000:
            raise ValueError("connect timeout must be >= 0 and readiness broker timeout >= 1s")
        if not 1_000 <= self.shutdown_timeout <= 300_000:
            raise ValueError("shutdown timeout must lie in 1s..5m")
        return self

    @property
    def broker_probe_every_s(self) -> float:
        """How often the worker probes the broker: a few probes fit in the readiness limit."""
        return min(2.0, self.ready_broker_timeout / 3000)

    @property
    def repartition_topic(self) -> str:
        return f"{self.events_topic}.repartition"

    @property
    def broker_urls(self) -> list[str]:
        return [f"kafka://{host.strip()}" for host in self.bootstrap_servers.split(",")]

    @property
    def topic_partitions(self) -> dict[str, int]:
        """Every topic the worker reads or writes, with its partition count."""
        topics = (self.events_topic, self.repartition_topic, self.dlq_topic, self.outages_topic)
        return dict.fromkeys(topics, self.partitions)


def _secret(value: SecretStr | None, path: str | None) -> str | None:
    if value is not None:
        return value.get_secret_value()
    if path:
        # Secret files usually end in a newline that is not part of the secret.
        return Path(path).read_text(encoding="utf-8").rstrip("\r\n")
    return None


def flag_name(field: str) -> str:
    """The command-line flag of a setting: ``web_port`` is ``--web-port``."""
    return "--" + field.replace("_", "-")


def env_name(field: str) -> str:
    """The environment variable of a setting: ``web_port`` is ``MONITOR_WEB_PORT``."""
    return ENV_PREFIX + field.upper()
