"""What --no-create-topics says about the topics the brokers describe."""

from __future__ import annotations

from typing import Any

from monitor.pipeline.topics import topic_problems


def described(**partitions: int) -> list[dict[str, Any]]:
    """Metadata entries as aiokafka's describe_topics gives them."""
    return [
        {"error_code": 0, "topic": name.replace("_", "."), "is_internal": False,
         "partitions": [{"error_code": 0, "partition": p, "leader": 1} for p in range(count)]}
        for name, count in partitions.items()
    ]  # fmt: skip


def test_all_present_with_their_partitions() -> None:
    expected = {"callcenter.events": 8, "callcenter.dlq": 8}
    assert (
        topic_problems(expected, described(callcenter_events=8, callcenter_dlq=8), "k:9092") == []
    )


def test_missing_and_mis_partitioned_topics_in_the_order_expected() -> None:
    expected = {"callcenter.events": 8, "callcenter.events.repartition": 8, "callcenter.dlq": 8}
    problems = topic_problems(expected, described(callcenter_events=4, other=8), "k:9092")
    assert problems == [
        "topic callcenter.events has 4 partitions, expected 8",
        "topic callcenter.events.repartition does not exist on k:9092",
        "topic callcenter.dlq does not exist on k:9092",
    ]


def test_a_topic_the_metadata_reports_an_error_for_counts_as_missing() -> None:
    entries = described(callcenter_events=8)
    entries[0]["error_code"] = 3  # UNKNOWN_TOPIC_OR_PARTITION
    assert topic_problems({"callcenter.events": 8}, entries, "k:9092") == [
        "topic callcenter.events does not exist on k:9092"
    ]
