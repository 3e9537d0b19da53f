from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.secure_kafka import SecureKafka
from tests.integration.services import Kafka, free_port


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kafka]:
    """One real Apache Kafka broker (KRaft, 127.0.0.1) for the whole test session."""
    broker = Kafka(port=free_port(), data_dir=Path(tmp_path_factory.mktemp("kafka")))
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def secure_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureKafka]:
    """One broker with TLS, SASL and mutual-TLS listeners (tests/integration/secure_kafka.py)."""
    broker = SecureKafka(port=free_port(), data_dir=Path(tmp_path_factory.mktemp("secure-kafka")))
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
