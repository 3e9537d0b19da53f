"""Creating the monitor's topics up front (Faust only creates its own internal topics, and
silently ignores a missing source topic)."""

from __future__ import annotations

import contextlib

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from monitor.logs import get_logger
from monitor.pipeline.settings import KafkaSecurity

log = get_logger("monitor.topics")


async def ensure_topics(
    bootstrap_servers: str,
    topics: dict[str, int],
    security: KafkaSecurity | None = None,
    replication: int = 1,
) -> list[str]:
    """Create the topics that do not exist yet; return the names created."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, **(security or KafkaSecurity()).aiokafka_kwargs()
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(name, num_partitions=partitions, replication_factor=replication)
            for name, partitions in topics.items()
            if name not in existing
        ]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another worker won the race
                await admin.create_topics(missing)
            log.info("topics_created", topics=[t.name for t in missing])
        return [t.name for t in missing]
    finally:
        await admin.close()
