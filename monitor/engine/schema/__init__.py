"""The canonical call event contract as a JSON Schema, shipped for producers to validate with."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

EVENT_SCHEMA_FILE = "call_event.v1.schema.json"


def load_event_schema() -> dict[str, Any]:
    text = resources.files(__name__).joinpath(EVENT_SCHEMA_FILE).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema
