"""Worker settings from flags and ``MONITOR_*`` environment variables, validated up front."""

from __future__ import annotations

import argparse
import os
import re
import ssl
from dataclasses import dataclass, field
from pathlib import Path

from monitor.engine.outages import OutageRules, parse_outage_rules

_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*(ms|s|m|h|d)?", re.ASCII)
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, None: 1000}
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
EVENT_LOOPS = ("uvloop", "aio")


def parse_duration_ms(text: str) -> int:
    """``90s``, ``30m``, ``6h``, ``1d``, ``250ms``; a bare number is seconds."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"invalid duration {text!r} (use e.g. 90s, 30m, 6h, 1d)")
    return int(float(match[1]) * _UNIT_MS[match[2]])


@dataclass(frozen=True, slots=True)
class KafkaSecurity:
    protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None
    ssl_cafile: str | None = None

    def __post_init__(self) -> None:
        if self.protocol not in SECURITY_PROTOCOLS:
            raise ValueError(f"security protocol must be one of {', '.join(SECURITY_PROTOCOLS)}")
        if self.protocol.startswith("SASL"):
            if self.sasl_mechanism not in SASL_MECHANISMS:
                raise ValueError(
                    f"{self.protocol} needs --sasl-mechanism {'|'.join(SASL_MECHANISMS)}"
                )
            if not self.sasl_username or not self.sasl_password:
                raise ValueError(
                    f"{self.protocol} needs a username and password "
                    "(MONITOR_SASL_USERNAME, MONITOR_SASL_PASSWORD)"
                )
        if self.ssl_cafile and not Path(self.ssl_cafile).is_file():
            raise ValueError(f"CA file not found: {self.ssl_cafile}")

    def aiokafka_kwargs(self) -> dict[str, object]:
        """Keyword arguments for aiokafka producers and consumers."""
        kwargs: dict[str, object] = {"security_protocol": self.protocol}
        if self.protocol in ("SSL", "SASL_SSL"):
            kwargs["ssl_context"] = ssl.create_default_context(cafile=self.ssl_cafile)
        if self.protocol.startswith("SASL"):
            kwargs.update(
                sasl_mechanism=self.sasl_mechanism,
                sasl_plain_username=self.sasl_username,
                sasl_plain_password=self.sasl_password,
            )
        return kwargs


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    bootstrap_servers: str = "127.0.0.1:9092"
    app_id: str = "callcenter-monitor"
    events_topic: str = "callcenter.events"
    dlq_topic: str = "callcenter.dlq"
    partitions: int = 8
    contracts_file: str | None = None
    hours_file: str | None = None
    outages_topic: str = "callcenter.outages"
    outage_rules: OutageRules = field(default_factory=OutageRules)
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    store: str = "memory://"
    data_dir: str = "var/worker"
    lateness_ms: int = 6 * 3_600_000
    dedup_horizon_ms: int = 24 * 3_600_000
    max_future_ms: int = 24 * 3_600_000
    max_contracts: int = 5_000
    batch_messages: int = 500
    batch_seconds: float = 0.2
    # How long the group waits for a silent member before giving its partitions away: what a
    # kill -9 costs before another worker (or the restarted one) resumes. Kafka brokers accept
    # 6 s .. 30 min by default.
    session_timeout_ms: int = 6_000
    # uvloop runs Faust's per-message machinery markedly faster than asyncio's default loop.
    event_loop: str = "uvloop"
    # At start, how long to retry an unreachable broker before giving up (exit status 1).
    connect_timeout_ms: int = 60_000
    # /readyz turns 503 once the broker has been unreachable this long.
    ready_broker_timeout_ms: int = 15_000
    # SIGTERM/SIGINT: what is not flushed by then is abandoned (re-read after the restart).
    # Below Kubernetes' default grace of 30 s, with room for the process to exit.
    shutdown_timeout_ms: int = 8_000
    security: KafkaSecurity = KafkaSecurity()

    def __post_init__(self) -> None:
        if not self.bootstrap_servers.strip():
            raise ValueError("bootstrap servers must not be empty")
        if not 1 <= self.partitions <= 1024:
            raise ValueError("partitions must lie in 1..1024")
        if not 0 <= self.web_port <= 65_535:
            raise ValueError("web port must lie in 0..65535")
        if self.store not in ("memory://", "rocksdb://"):
            raise ValueError(f"store must be memory:// or rocksdb://, not {self.store!r}")
        if self.lateness_ms <= 0 or self.dedup_horizon_ms <= 0:
            raise ValueError("lateness and de-duplication horizon must be positive")
        if self.max_contracts < 1:
            raise ValueError("max contracts must be at least 1")
        if self.batch_messages < 1 or self.batch_seconds <= 0:
            raise ValueError("batch size and batch seconds must be positive")
        if not 6_000 <= self.session_timeout_ms <= 1_800_000:
            raise ValueError("session timeout must lie in 6s..30m (the broker's default bounds)")
        if self.connect_timeout_ms < 0 or self.ready_broker_timeout_ms < 1_000:
            raise ValueError("connect timeout must be >= 0 and readiness broker timeout >= 1s")
        if not 1_000 <= self.shutdown_timeout_ms <= 300_000:
            raise ValueError("shutdown timeout must lie in 1s..5m")
        if self.event_loop not in EVENT_LOOPS:
            raise ValueError(f"event loop must be one of {', '.join(EVENT_LOOPS)}")
        if self.contracts_file and not Path(self.contracts_file).is_file():
            raise ValueError(f"contract registry not found: {self.contracts_file}")
        if self.hours_file and not Path(self.hours_file).is_file():
            raise ValueError(f"operating-hours file not found: {self.hours_file}")

    @property
    def broker_probe_every_s(self) -> float:
        """How often the worker probes the broker: a few probes fit in the readiness limit."""
        return min(2.0, self.ready_broker_timeout_ms / 3000)

    @property
    def repartition_topic(self) -> str:
        return f"{self.events_topic}.repartition"

    @property
    def broker_urls(self) -> list[str]:
        return [f"kafka://{host.strip()}" for host in self.bootstrap_servers.split(",")]


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"MONITOR_{name}", default)


def add_kafka_arguments(parser: argparse.ArgumentParser) -> None:
    """Connection flags shared by every command that talks to Kafka."""
    parser.add_argument(
        "--bootstrap-servers",
        default=_env("BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
        help="Kafka bootstrap servers, comma-separated (MONITOR_BOOTSTRAP_SERVERS)",
    )
    parser.add_argument(
        "--events-topic",
        default=_env("EVENTS_TOPIC", "callcenter.events"),
        help="input topic (MONITOR_EVENTS_TOPIC)",
    )
    parser.add_argument(
        "--security-protocol",
        default=_env("SECURITY_PROTOCOL", "PLAINTEXT"),
        choices=SECURITY_PROTOCOLS,
        help="(MONITOR_SECURITY_PROTOCOL)",
    )
    parser.add_argument(
        "--sasl-mechanism",
        default=_env("SASL_MECHANISM"),
        choices=SASL_MECHANISMS,
        help="(MONITOR_SASL_MECHANISM)",
    )
    parser.add_argument(
        "--sasl-username", default=_env("SASL_USERNAME"), help="(MONITOR_SASL_USERNAME)"
    )
    parser.add_argument(
        "--ssl-cafile",
        default=_env("SSL_CAFILE"),
        help="CA bundle for SSL/SASL_SSL (MONITOR_SSL_CAFILE)",
    )
    # The password is read from MONITOR_SASL_PASSWORD only: flags show up in process lists.


def security_from_args(args: argparse.Namespace) -> KafkaSecurity:
    return KafkaSecurity(
        protocol=args.security_protocol,
        sasl_mechanism=args.sasl_mechanism,
        sasl_username=args.sasl_username,
        sasl_password=_env("SASL_PASSWORD"),
        ssl_cafile=args.ssl_cafile,
    )


def add_outage_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags that decide outages: the stream and ``monitor report`` must share them."""
    parser.add_argument(
        "--hours",
        metavar="FILE",
        default=_env("HOURS"),
        help="operating-hours CSV contract_id,line,hours overriding the CMS hours (MONITOR_HOURS)",
    )
    parser.add_argument(
        "--outage-rules",
        metavar="NAME=VALUE,...",
        default=_env("OUTAGE_RULES"),
        help="outage thresholds, e.g. no_answer_min_requests=10,drop_ratio=0.5 "
        "(MONITOR_OUTAGE_RULES)",
    )


def add_worker_arguments(parser: argparse.ArgumentParser) -> None:
    add_kafka_arguments(parser)
    parser.add_argument(
        "--app-id",
        default=_env("APP_ID", "callcenter-monitor"),
        help="consumer group and state topic prefix (MONITOR_APP_ID)",
    )
    parser.add_argument(
        "--dlq-topic",
        default=_env("DLQ_TOPIC", "callcenter.dlq"),
        help="dead-letter topic (MONITOR_DLQ_TOPIC)",
    )
    parser.add_argument(
        "--partitions",
        type=int,
        default=_env("PARTITIONS", "8"),  # argparse converts and checks string defaults
        help="partitions of the input topic (MONITOR_PARTITIONS)",
    )
    parser.add_argument(
        "--contracts", default=_env("CONTRACTS"), help="contract registry CSV (MONITOR_CONTRACTS)"
    )
    add_outage_arguments(parser)
    parser.add_argument(
        "--outages-topic",
        default=_env("OUTAGES_TOPIC", "callcenter.outages"),
        help="audit topic of outage records (MONITOR_OUTAGES_TOPIC)",
    )
    parser.add_argument(
        "--web-host",
        default=_env("WEB_HOST", "127.0.0.1"),
        help="address of the /metrics endpoint (MONITOR_WEB_HOST)",
    )
    parser.add_argument(
        "--web-port",
        type=int,
        default=_env("WEB_PORT", "6066"),  # argparse converts and checks string defaults
        help="port of the /metrics endpoint (MONITOR_WEB_PORT)",
    )
    parser.add_argument(
        "--store",
        default=_env("STORE", "memory://"),
        help="table store: memory:// or rocksdb:// (RocksDB under --data-dir) (MONITOR_STORE)",
    )
    parser.add_argument(
        "--data-dir",
        default=_env("DATA_DIR", "var/worker"),
        help="worker data directory (MONITOR_DATA_DIR)",
    )
    parser.add_argument(
        "--lateness",
        default=_env("LATENESS", "6h"),
        help="events older than watermark minus this go to the DLQ (MONITOR_LATENESS)",
    )
    parser.add_argument(
        "--dedup-horizon",
        default=_env("DEDUP_HORIZON", "24h"),
        help="how long event ids are remembered, event time (MONITOR_DEDUP_HORIZON)",
    )
    parser.add_argument(
        "--max-future",
        default=_env("MAX_FUTURE", "24h"),
        help="refuse events this far past the wall clock (MONITOR_MAX_FUTURE)",
    )
    parser.add_argument(
        "--max-contracts",
        type=int,
        default=_env("MAX_CONTRACTS", "5000"),  # argparse converts and checks string defaults
        help="hard cap on tracked contracts (MONITOR_MAX_CONTRACTS)",
    )
    parser.add_argument(
        "--batch-messages",
        type=int,
        default=_env("BATCH_MESSAGES", "500"),  # argparse converts and checks string defaults
        help="Kafka messages per processing batch (MONITOR_BATCH_MESSAGES)",
    )
    parser.add_argument(
        "--batch-seconds",
        type=float,
        default=_env("BATCH_SECONDS", "0.2"),  # argparse converts and checks string defaults
        help="longest wait to fill a batch (MONITOR_BATCH_SECONDS)",
    )
    parser.add_argument(
        "--event-loop",
        default=_env("EVENT_LOOP", "uvloop"),
        choices=EVENT_LOOPS,
        help="asyncio event loop; aio is Python's own (MONITOR_EVENT_LOOP)",
    )
    parser.add_argument(
        "--session-timeout",
        default=_env("SESSION_TIMEOUT", "6s"),
        help="a silent worker loses its partitions after this (MONITOR_SESSION_TIMEOUT)",
    )
    parser.add_argument(
        "--connect-timeout",
        default=_env("CONNECT_TIMEOUT", "60s"),
        help="at start, retry an unreachable broker this long, then exit 1 "
        "(MONITOR_CONNECT_TIMEOUT)",
    )
    parser.add_argument(
        "--ready-broker-timeout",
        default=_env("READY_BROKER_TIMEOUT", "15s"),
        help="/readyz answers 503 once the broker is unreachable this long "
        "(MONITOR_READY_BROKER_TIMEOUT)",
    )
    parser.add_argument(
        "--shutdown-timeout",
        default=_env("SHUTDOWN_TIMEOUT", "8s"),
        help="on SIGTERM/SIGINT, exit after this at the latest; what is not committed is "
        "re-read on restart (MONITOR_SHUTDOWN_TIMEOUT)",
    )


def worker_settings_from_args(args: argparse.Namespace) -> WorkerSettings:
    return WorkerSettings(
        bootstrap_servers=args.bootstrap_servers,
        app_id=args.app_id,
        events_topic=args.events_topic,
        dlq_topic=args.dlq_topic,
        partitions=args.partitions,
        contracts_file=args.contracts,
        hours_file=args.hours,
        outages_topic=args.outages_topic,
        outage_rules=parse_outage_rules(args.outage_rules),
        web_host=args.web_host,
        web_port=args.web_port,
        store=args.store,
        data_dir=args.data_dir,
        lateness_ms=parse_duration_ms(args.lateness),
        dedup_horizon_ms=parse_duration_ms(args.dedup_horizon),
        max_future_ms=parse_duration_ms(args.max_future),
        max_contracts=args.max_contracts,
        batch_messages=args.batch_messages,
        batch_seconds=args.batch_seconds,
        session_timeout_ms=parse_duration_ms(args.session_timeout),
        event_loop=args.event_loop,
        connect_timeout_ms=parse_duration_ms(args.connect_timeout),
        ready_broker_timeout_ms=parse_duration_ms(args.ready_broker_timeout),
        shutdown_timeout_ms=parse_duration_ms(args.shutdown_timeout),
        security=security_from_args(args),
    )
