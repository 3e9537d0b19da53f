"""The monitor's topics: created up front (Faust only creates its own internal topics, and
silently ignores a missing source topic), or, where the cluster's owners provision topics
(``--no-create-topics``), checked: each must exist with the partition count the worker
expects, since its state is partitioned exactly as its input."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from monitor.logs import get_logger
from monitor.pipeline.broker import probe
from monitor.pipeline.settings import KafkaSecurity

log = get_logger("monitor.topics")

_ALREADY_EXISTS = TopicAlreadyExistsError.errno
_PROBE_TIMEOUT_S = 10.0


class TopicsError(Exception):
    """Topics that could not be created, or that are missing or mis-partitioned."""


class TopicOptions(Protocol):
    """What :func:`prepare_topics` needs of a command's settings (``ProducerSettings``,
    ``WorkerSettings``)."""

    @property
    def bootstrap_servers(self) -> str: ...
    @property
    def security(self) -> KafkaSecurity: ...
    @property
    def topic_replication_factor(self) -> int: ...
    @property
    def topic_min_insync_replicas(self) -> int | None: ...
    @property
    def create_topics(self) -> bool: ...


async def prepare_topics(settings: TopicOptions, topics: Mapping[str, int]) -> list[str]:
    """Create the missing topics, or only check them with ``--no-create-topics``, as the
    settings say; return the names created. Raises :class:`TopicsError` (and, when the
    brokers cannot be reached or refuse the settings, ``BrokerUnreachableError``)."""
    return await ensure_topics(
        settings.bootstrap_servers,
        topics,
        settings.security,
        replication=settings.topic_replication_factor,
        min_insync_replicas=settings.topic_min_insync_replicas,
        create=settings.create_topics,
    )


def topic_problems(
    expected: Mapping[str, int], described: list[dict[str, Any]], servers: str
) -> list[str]:
    """What is wrong with the topics, from the brokers' metadata (``describe_topics``): one
    phrase per missing or mis-partitioned topic, in the order expected."""
    partitions = {
        entry["topic"]: len(entry.get("partitions", ()))
        for entry in described
        if entry.get("error_code", 0) == 0
    }
    problems = []
    for name, count in expected.items():
        found = partitions.get(name)
        if found is None:
            problems.append(f"topic {name} does not exist on {servers}")
        elif found != count:
            problems.append(f"topic {name} has {found} partitions, expected {count}")
    return problems


async def ensure_topics(
    bootstrap_servers: str,
    topics: Mapping[str, int],
    security: KafkaSecurity | None = None,
    replication: int = 1,
    *,
    min_insync_replicas: int | None = None,
    create: bool = True,
) -> list[str]:
    """Create the topics that do not exist yet (``create``), or check that all exist with their
    partition counts; return the names created.

    A broker that refuses the security settings fails here in one line, before the admin
    client's bootstrap hides why.
    """
    security = security or KafkaSecurity()
    await probe(bootstrap_servers, security, timeout_s=_PROBE_TIMEOUT_S)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, **security.aiokafka_kwargs())
    await admin.start()
    try:
        # All topics' metadata: asking for a topic by name makes a broker with auto-creation
        # on create it, with the broker's partition count.
        described = await admin.describe_topics()
        if not create:
            problems = topic_problems(topics, described, bootstrap_servers)
            if problems:
                raise TopicsError(
                    "; ".join(problems) + " (--no-create-topics: the cluster's owners "
                    "provision them)"
                )
            return []
        existing = {entry["topic"]: len(entry.get("partitions", ())) for entry in described}
        for name, count in topics.items():
            if name in existing and existing[name] != count:
                log.warning("topic_partitions_differ", topic=name, partitions=existing[name],
                            expected=count)  # fmt: skip
        configs = (
            {} if min_insync_replicas is None else {"min.insync.replicas": str(min_insync_replicas)}
        )
        missing = [
            NewTopic(
                name,
                num_partitions=partitions,
                replication_factor=replication,
                topic_configs=configs,
            )
            for name, partitions in topics.items()
            if name not in existing
        ]
        if not missing:
            return []
        response = await admin.create_topics(missing)
        created, failed = [], []
        for entry in response.to_object()["topic_errors"]:
            code = entry["error_code"]
            if code == 0:
                created.append(entry["topic"])
            elif code != _ALREADY_EXISTS:  # another worker won the race
                failed.append(f"{entry['topic']}: {entry.get('error_message') or code}")
        if created:
            log.info("topics_created", topics=created, replication_factor=replication,
                     min_insync_replicas=min_insync_replicas)  # fmt: skip
        if failed:
            raise TopicsError(f"cannot create topics on {bootstrap_servers}: {'; '.join(failed)}")
        return created
    finally:
        await admin.close()
