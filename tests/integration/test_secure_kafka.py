"""Every Kafka command against a broker that requires what managed clusters require: SASL_SSL
with SCRAM-SHA-512, SCRAM-SHA-256, PLAIN and OAUTHBEARER, mutual TLS, a CA file and the system
CAs; and the refusals (wrong password, a mechanism the listener does not offer, certificates
from the wrong CA) as one line and exit status 1 within seconds, not a retry loop."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from monitor.pipeline.messages import decode_message
from monitor.pipeline.worker import changelog_topic
from tests.integration.secure_kafka import PLAIN_USER, SCRAM_USERS, SecureKafka
from tests.integration.services import MONITOR, ROOT, WorkerProcess, scrape, wait_for

pytestmark = pytest.mark.integration

PARTITIONS = 2
CONTRACT = "H5150"
TOKENS = "tests.integration.oauth_token:token"
# What a refusal may take: the connect timeout given to the worker, with room for a slow start.
REFUSAL_BOUND_S = 30
SET_ON_THE_TOPIC = 1  # DescribeConfigs' config_source DYNAMIC_TOPIC_CONFIG


@dataclass
class Client:
    """How a command reaches one listener: its flags and the environment they need."""

    listener: str
    flags: list[str]
    env: dict[str, str] = field(default_factory=dict)

    def args(self, kafka: SecureKafka) -> list[str]:
        return ["--bootstrap-servers", kafka.address(self.listener), *self.flags]


def client(kafka: SecureKafka, case: str, tmp: Path) -> Client:
    """The settings of each way in. The SASL password travels a different way in each case:
    a secrets directory, a password file, the environment."""
    certs = kafka.certs
    assert certs is not None
    ca = ["--ssl-cafile", str(certs.ca)]
    system_cas = {"SSL_CERT_FILE": str(certs.ca)}  # OpenSSL's default verify paths honour it
    if case == "scram-sha-512":
        user, password = SCRAM_USERS["SCRAM-SHA-512"]
        secrets = tmp / "secrets"
        secrets.mkdir(exist_ok=True)
        (secrets / "sasl_password").write_text(password + "\n")  # as a Kubernetes Secret mounts it
        return Client("sasl_ssl", ["--security-protocol", "SASL_SSL", "--sasl-mechanism",
                                   "SCRAM-SHA-512", "--sasl-username", user,
                                   "--secrets-dir", str(secrets), *ca])  # fmt: skip
    if case == "scram-sha-256":
        user, password = SCRAM_USERS["SCRAM-SHA-256"]
        password_file = tmp / "scram256.password"
        password_file.write_text(password + "\n")
        return Client("sasl_ssl", ["--security-protocol", "SASL_SSL", "--sasl-mechanism",
                                   "SCRAM-SHA-256", "--sasl-username", user,
                                   "--sasl-password-file", str(password_file), *ca])  # fmt: skip
    if case == "plain":  # Confluent Cloud's way: an API key and secret, the system CAs
        user, password = PLAIN_USER
        return Client("sasl_ssl", ["--security-protocol", "SASL_SSL", "--sasl-mechanism", "PLAIN",
                                   "--sasl-username", user],
                      {"MONITOR_SASL_PASSWORD": password, **system_cas})  # fmt: skip
    if case == "oauthbearer":
        return Client("sasl_ssl", ["--security-protocol", "SASL_SSL", "--sasl-mechanism",
                                   "OAUTHBEARER", "--sasl-oauth-token-provider", TOKENS,
                                   *ca])  # fmt: skip
    if case == "mtls":
        return Client("mtls", ["--security-protocol", "SSL", *ca,
                               "--ssl-certfile", str(certs.client_cert),
                               "--ssl-keyfile", str(certs.client_key)])  # fmt: skip
    if case == "ca-file":
        return Client("tls", ["--security-protocol", "SSL", *ca])
    if case == "system-cas":
        return Client("tls", ["--security-protocol", "SSL"], system_cas)
    raise AssertionError(case)


def monitor(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    environment = {**os.environ, "MONITOR_LOG_FORMAT": "json", **(env or {})}
    return subprocess.run([*MONITOR, *args], cwd=ROOT, capture_output=True, env=environment,
                          timeout=120, check=False)  # fmt: skip


def event(n: int) -> bytes:
    return orjson.dumps({"event_id": f"s{n}", "call_id": f"c{n}", "contract_id": CONTRACT,
                         "type": "call_received",
                         "ts": f"2026-02-02T15:{n // 60:02d}:{n % 60:02d}.000Z"})  # fmt: skip


def events_file(tmp: Path, count: int, bad: int = 0) -> Path:
    path = tmp / "events.jsonl"
    lines = [event(n) for n in range(count)] + [b'{"event_id": "broken", '] * bad
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def publish(kafka: SecureKafka, way: Client, topic: str, path: Path) -> None:
    done = monitor("publish", "--input", str(path), *way.args(kafka), "--events-topic", topic,
                   "--partitions", str(PARTITIONS), env=way.env)  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()


async def _read_events(bootstrap: str, topic: str) -> list[bytes]:
    """Every event on the topic, read over the plaintext listener (not the way under test)."""
    described = {entry["topic"]: entry["partitions"] for entry in await _describe(bootstrap)}
    assert topic in described, f"no topic {topic}"
    partitions = [TopicPartition(topic, p["partition"]) for p in described[topic]]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False)  # fmt: skip
    await consumer.start()
    try:
        ends = await consumer.end_offsets(partitions)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        out: list[bytes] = []
        while any([await consumer.position(tp) < ends[tp] for tp in partitions]):
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                for record in records:
                    decoded = decode_message(record.value, record.headers)
                    out += [decoded.raw(i) for i in range(len(decoded.items))]
        return out
    finally:
        await consumer.stop()


def topic_events(kafka: SecureKafka, topic: str) -> list[bytes]:
    return asyncio.run(_read_events(kafka.bootstrap, topic))


def refused(done: subprocess.CompletedProcess[bytes], started: float, command: str) -> str:
    """The error line of a refused command: exit 1, soon, and only that line apart from the
    JSON log records before it."""
    elapsed = time.monotonic() - started
    stderr = done.stderr.decode()
    assert done.returncode == 1, stderr
    assert elapsed < REFUSAL_BOUND_S, f"{elapsed:.1f} s"
    assert "Traceback" not in stderr
    plain = [line for line in stderr.splitlines() if not line.startswith("{")]
    assert len(plain) == 1, stderr
    assert plain[0] == stderr.splitlines()[-1]
    assert plain[0].startswith(f"monitor {command}: error: "), plain[0]
    return plain[0]


# -- the worker path: publish -> worker -> /metrics, and the dead-letter tools ------------------


def run_worker(kafka: SecureKafka, way: Client, tmp: Path, name: str, *extra: str) -> WorkerProcess:
    prefix = f"it-secure-{name}"
    worker = WorkerProcess(kafka, app_id=prefix, events_topic=f"{prefix}.events",
                           dlq_topic=f"{prefix}.dlq", data_dir=tmp / "worker",
                           partitions=PARTITIONS, extra=[*way.args(kafka), *extra,
                           "--outages-topic", f"{prefix}.outages"])  # fmt: skip
    assert not way.env, "WorkerProcess passes only the test's own environment"
    return worker.start()


def counts(worker: WorkerProcess) -> tuple[float, float]:
    m = scrape(worker.metrics_url)
    return (m["callcenter_events_accepted_total"][()],
            sum(m["callcenter_events_rejected_total"].values()))  # fmt: skip


def test_worker_and_dead_letter_tools_over_scram_sha_512(
    secure_kafka: SecureKafka, tmp_path: Path
) -> None:
    way = client(secure_kafka, "scram-sha-512", tmp_path)
    worker = run_worker(secure_kafka, way, tmp_path, "scram")
    try:
        worker.wait_ready(partitions=PARTITIONS)
        publish(secure_kafka, way, worker.events_topic, events_file(tmp_path, 40, bad=2))
        wait_for(lambda: counts(worker) == (40, 2), 60, "the worker to take the file")
        assert scrape(worker.metrics_url)["callcenter_broker_reachable"][()] == 1
    finally:
        worker.stop()

    def inspected() -> dict[str, Any]:
        done = monitor("dlq", "inspect", *way.args(secure_kafka), "--dlq-topic",
                       worker.dlq_topic, "--format", "json")  # fmt: skip
        assert done.returncode == 0, done.stderr.decode()
        result: dict[str, Any] = orjson.loads(done.stdout)
        return result

    wait_for(lambda: inspected()["total"] == 2, 30, "the two dead letters")
    assert inspected()["by_reason"] == {"invalid_json": 2}


def test_worker_over_mutual_tls_with_provisioned_topics(
    secure_kafka: SecureKafka, tmp_path: Path
) -> None:
    name = "mtls"
    topics = [f"it-secure-{name}.{t}" for t in ("events", "events.repartition", "dlq", "outages")]
    topics.append(changelog_topic(f"it-secure-{name}"))
    asyncio.run(create_topics(secure_kafka.bootstrap, dict.fromkeys(topics, PARTITIONS)))
    way = client(secure_kafka, "mtls", tmp_path)
    worker = run_worker(secure_kafka, way, tmp_path, name, "--no-create-topics")
    try:
        worker.wait_ready(partitions=PARTITIONS)
        publish(secure_kafka, way, worker.events_topic, events_file(tmp_path, 25))
        wait_for(lambda: counts(worker) == (25, 0), 60, "the worker to take the file")
    finally:
        worker.stop()
    assert b"Traceback" not in (worker.log_path or Path("/dev/null")).read_bytes()


# -- publish, simulate, ingest over each other way in -----------------------------------------


@pytest.mark.parametrize("case", ["scram-sha-256", "plain", "oauthbearer", "ca-file", "system-cas"])
def test_publish(secure_kafka: SecureKafka, tmp_path: Path, case: str) -> None:
    topic = f"it-secure-publish-{case}"
    publish(secure_kafka, client(secure_kafka, case, tmp_path), topic, events_file(tmp_path, 30))
    assert sorted(topic_events(secure_kafka, topic)) == sorted(event(n) for n in range(30))


def test_simulate_over_oauthbearer(secure_kafka: SecureKafka, tmp_path: Path) -> None:
    way = client(secure_kafka, "oauthbearer", tmp_path)
    topic = "it-secure-simulate"
    done = monitor("simulate", "--sink", "kafka", "--events", "300", "--seed", "7",
                   "--contract-count", "3", *way.args(secure_kafka), "--events-topic", topic,
                   "--partitions", str(PARTITIONS), env=way.env)  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    summary = next(orjson.loads(line) for line in done.stderr.splitlines()
                   if b'"simulate_done"' in line)  # fmt: skip
    assert summary["events"] > 0
    assert len(topic_events(secure_kafka, topic)) == summary["events"]


def test_ingest_over_plain_with_the_system_cas(secure_kafka: SecureKafka, tmp_path: Path) -> None:
    way = client(secure_kafka, "plain", tmp_path)
    topic = "it-secure-ingest"
    fixtures = ROOT / "tests" / "adapters" / "fixtures"
    done = monitor("ingest", "asterisk", "--input", str(fixtures / "queue_log"), "--queues",
                   str(fixtures / "queues.csv"), "--sink", "kafka", *way.args(secure_kafka),
                   "--events-topic", topic, "--partitions", str(PARTITIONS),
                   env=way.env)  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    report = orjson.loads(done.stderr.splitlines()[-1])
    assert report["sent"] > 0
    assert len(topic_events(secure_kafka, topic)) == report["sent"]


# -- topics as a managed cluster wants them ---------------------------------------------------


async def create_topics(bootstrap: str, topics: dict[str, int]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(t, n, 1) for t, n in topics.items()])
    finally:
        await admin.close()


async def topic_config(bootstrap: str, topic: str, key: str) -> tuple[str, bool]:
    """A topic config's value, and whether it is set on the topic itself."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        await admin.close()
    for entry in response.to_object()["resources"][0]["config_entries"]:
        if entry["config_names"] == key:
            return entry["config_value"], entry["config_source"] == SET_ON_THE_TOPIC
    raise AssertionError(f"{topic} has no {key}")


def test_replication_and_min_insync_replicas_of_created_topics(
    secure_kafka: SecureKafka, tmp_path: Path
) -> None:
    way = client(secure_kafka, "scram-sha-512", tmp_path)
    path = events_file(tmp_path, 3)
    topic = "it-secure-topics.isr"
    done = monitor("publish", "--input", str(path), *way.args(secure_kafka), "--events-topic",
                   topic, "--topic-min-insync-replicas", "1")  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    assert asyncio.run(topic_config(secure_kafka.bootstrap, topic, "min.insync.replicas")) == (
        "1",
        True,
    )
    # A managed cluster's replication factor on one broker: the broker's own refusal, one line.
    started = time.monotonic()
    done = monitor("publish", "--input", str(path), *way.args(secure_kafka), "--events-topic",
                   "it-secure-topics.rf3", "--topic-replication-factor", "3")  # fmt: skip
    line = refused(done, started, "publish")
    assert "cannot create topics" in line and "replication factor of 3" in line, line


def test_provisioned_topics_are_checked_not_created(
    secure_kafka: SecureKafka, tmp_path: Path
) -> None:
    name = "it-secure-check"
    asyncio.run(create_topics(secure_kafka.bootstrap, {f"{name}.events": 1}))
    way = client(secure_kafka, "mtls", tmp_path)
    started = time.monotonic()
    done = monitor("worker", *way.args(secure_kafka), "--app-id", name, "--events-topic",
                   f"{name}.events", "--dlq-topic", f"{name}.dlq", "--outages-topic",
                   f"{name}.outages", "--partitions", str(PARTITIONS), "--no-create-topics",
                   "--web-port", "0", "--data-dir", str(tmp_path / "w"))  # fmt: skip
    line = refused(done, started, "worker")
    assert f"topic {name}.events has 1 partitions, expected {PARTITIONS}" in line
    assert f"topic {name}.events.repartition does not exist" in line
    assert f"topic {changelog_topic(name)} does not exist" in line
    listed = [entry["topic"] for entry in asyncio.run(_describe(secure_kafka.bootstrap))]
    assert f"{name}.dlq" not in listed  # checking created nothing


async def _describe(bootstrap: str) -> list[dict[str, Any]]:
    """Every topic's metadata (asking for one by name would have the broker create it)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return list(await admin.describe_topics())
    finally:
        await admin.close()


# -- refusals: one line, exit 1, within seconds -----------------------------------------------


def wrong(way: Client, flag: str, value: str) -> Client:
    flags = list(way.flags)
    flags[flags.index(flag) + 1] = value
    return Client(way.listener, flags, way.env)


def refusal_cases(kafka: SecureKafka, tmp: Path) -> dict[str, tuple[Client, str]]:
    certs = kafka.certs
    assert certs is not None
    bad_password = tmp / "bad.password"
    bad_password.write_text("not-the-password\n")
    scram256 = client(kafka, "scram-sha-256", tmp)
    mtls = client(kafka, "mtls", tmp)
    other_client = wrong(wrong(mtls, "--ssl-certfile", str(certs.other_client_cert)),
                         "--ssl-keyfile", str(certs.other_client_key))  # fmt: skip
    # PLAIN where only SCRAM-SHA-512 is offered.
    user, password = PLAIN_USER
    mechanism = Client("sasl_plaintext", ["--security-protocol", "SASL_PLAINTEXT",
                                          "--sasl-mechanism", "PLAIN", "--sasl-username", user],
                       {"MONITOR_SASL_PASSWORD": password})  # fmt: skip
    expired = wrong(client(kafka, "oauthbearer", tmp), "--sasl-oauth-token-provider",
                    "tests.integration.oauth_token:expired_token")  # fmt: skip
    return {
        "wrong password": (
            wrong(scram256, "--sasl-password-file", str(bad_password)),
            "SASL authentication failed (SCRAM-SHA-256 as scram256)",
        ),
        "unknown mechanism": (mechanism, "does not offer SASL mechanism PLAIN on this listener"),
        "client certificate from another CA": (
            other_client, "TLS: the broker refused the client certificate",
        ),
        "CA file that does not sign the broker": (
            wrong(client(kafka, "ca-file", tmp), "--ssl-cafile", str(certs.other_ca)),
            f"--ssl-cafile {certs.other_ca} does not hold the CA that signed the brokers",
        ),
        "expired token": (expired, "SASL authentication failed"),
    }  # fmt: skip


REFUSALS = ["wrong password", "unknown mechanism", "client certificate from another CA",
            "CA file that does not sign the broker", "expired token"]  # fmt: skip


@pytest.mark.parametrize("case", REFUSALS)
def test_a_refused_worker_exits_1_with_one_line(
    secure_kafka: SecureKafka, tmp_path: Path, case: str
) -> None:
    way, expected = refusal_cases(secure_kafka, tmp_path)[case]
    started = time.monotonic()
    # A connect timeout far longer than the bound: a refusal must not wait for it.
    done = monitor("worker", *way.args(secure_kafka), "--app-id", "it-secure-refused",
                   "--connect-timeout", "5m", "--web-port", "0",
                   "--data-dir", str(tmp_path / "w"), env=way.env)  # fmt: skip
    line = refused(done, started, "worker")
    address = secure_kafka.address(way.listener)
    assert (
        line.startswith(f"monitor worker: error: Kafka at {address}: ") and line.count(address) == 1
    )
    assert expected in line, line


@pytest.mark.parametrize("case", ["wrong password", "client certificate from another CA"])
def test_refused_producers_and_dead_letter_tools(
    secure_kafka: SecureKafka, tmp_path: Path, case: str
) -> None:
    way, expected = refusal_cases(secure_kafka, tmp_path)[case]
    path = events_file(tmp_path, 3)
    topic = "it-secure-refused"
    commands = {
        "publish": ["publish", "--input", str(path), "--events-topic", topic],
        "simulate": ["simulate", "--sink", "kafka", "--events", "10", "--events-topic", topic],
        "dlq inspect": ["dlq", "inspect", "--timeout", "5s", "--dlq-topic", topic],
    }
    for command, args in commands.items():
        started = time.monotonic()
        line = refused(monitor(*args, *way.args(secure_kafka), env=way.env), started, command)
        assert expected in line, line


def test_an_unknown_mechanism_name_is_a_usage_error(secure_kafka: SecureKafka) -> None:
    done = monitor("publish", "--input", "-", "--bootstrap-servers",
                   secure_kafka.address("sasl_ssl"), "--security-protocol", "SASL_SSL",
                   "--sasl-mechanism", "GSSAPI")  # fmt: skip
    assert done.returncode == 2
    assert "invalid choice: 'GSSAPI'" in done.stderr.decode().splitlines()[-1]
