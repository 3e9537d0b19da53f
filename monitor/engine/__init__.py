"""The pure-Python compliance engine: no Kafka, Faust or Prometheus imports here.

The same code serves the stream workers, ``monitor report`` replays and the tests.
"""

from monitor.engine.aggregates import ROW_FIELDS, DailyFigures, DayKey
from monitor.engine.calls import CallFacts, CallState
from monitor.engine.engine import ComplianceEngine, EngineStats
from monitor.engine.events import DEFAULT_LINE, CallEvent, EventType
from monitor.engine.registry import Contract, ContractRegistry, RegistryError
from monitor.engine.schema import load_event_schema
from monitor.engine.validation import (
    Rejection,
    RejectReason,
    is_blank,
    validate_object,
    validate_record,
)

__all__ = [
    "DEFAULT_LINE",
    "ROW_FIELDS",
    "CallEvent",
    "CallFacts",
    "CallState",
    "ComplianceEngine",
    "Contract",
    "ContractRegistry",
    "DailyFigures",
    "DayKey",
    "EngineStats",
    "EventType",
    "RegistryError",
    "RejectReason",
    "Rejection",
    "is_blank",
    "load_event_schema",
    "validate_object",
    "validate_record",
]
