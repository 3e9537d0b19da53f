"""Amazon Connect -> canonical events: contact trace records (CTR) and EventBridge contact
events (docs/adapters.md has the mapping and its reasoning).

* One call for CMS is every contact record linked by ``InitialContactId`` (transfers create new
  contacts): the call id is ``connect-<InitialContactId>`` (or the contact's own id).
* CTRs are delivered more than once, with newer ``LastUpdateTimestamp``s: an ingest keeps the
  newest delivery of each ``ContactId``, and event ids are derived from the contact and the fact,
  not the delivery, so ingesting again changes nothing.
* Contract and line come from contact attributes (configurable names) or, failing that, from
  the queue-name mapping (``--queues``; EventBridge events carry the queue ARN, which the mapping
  may list as well).
* Caller phone numbers (``CustomerEndpoint``) are never read into events.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from monitor.adapters.asterisk import IngestStats
from monitor.adapters.queue_map import Target
from monitor.engine.validation import CONTRACT_ID_PATTERN, LINE_PATTERN

# DisconnectReason -> the canonical end of a call that never reached an agent, by whether it
# was waiting in a queue. A caller hanging up while waiting abandons; the network or the flow
# dropping a waiting caller is the regulation's "unexpectedly dropped".
UNANSWERED_END: dict[str, tuple[str, str]] = {  # reason: (queued, not queued)
    "CUSTOMER_DISCONNECT": ("abandoned", "ended"),
    "TELECOM_PROBLEM": ("disconnected", "disconnected"),
    "CONTACT_FLOW_DISCONNECT": ("disconnected", "ended"),
    "EXPIRED": ("disconnected", "disconnected"),
    "OTHER": ("disconnected", "ended"),
    "THIRD_PARTY_DISCONNECT": ("ended", "ended"),
    "AGENT_DISCONNECT": ("ended", "ended"),
    "API": ("ended", "ended"),
    "BARGED": ("ended", "ended"),
}
_DEFAULT_UNANSWERED = ("disconnected", "ended")


def iter_json_documents(data: bytes) -> Iterator[Any | str]:
    """JSON objects, arrays of them, or objects concatenated / one per line (as Kinesis
    Firehose writes them). Yields objects, or a reason string for an unreadable stretch."""
    text = data.decode("utf-8", "replace")
    decoder = json.JSONDecoder()
    position, size = 0, len(text)
    while position < size:
        while position < size and text[position] in " \t\r\n,":
            position += 1
        if position >= size:
            break
        try:
            value, end = decoder.raw_decode(text, position)
        except json.JSONDecodeError:
            yield "invalid_json"
            following = text.find("\n", position)
            if following < 0:
                break
            position = following + 1
            continue
        position = end
        if isinstance(value, list):
            yield from value
        else:
            yield value


def _ms(value: Any) -> int | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return None


@dataclass
class ConnectConverter:
    queues: dict[str, Target]
    contract_attribute: str = "cms_contract_id"
    line_attribute: str = "cms_line"
    stats: IngestStats = field(default_factory=IngestStats)
    reasons: Counter[str] = field(default_factory=Counter)

    # -- CTRs ---------------------------------------------------------------------------------

    def convert_ctrs(self, records: Iterable[Any | str]) -> list[dict[str, Any]]:
        newest: dict[str, dict[str, Any]] = {}
        for record in records:
            self.stats.lines += 1
            if isinstance(record, str):
                self.stats.bad[record] += 1
                continue
            if not isinstance(record, dict) or not isinstance(record.get("ContactId"), str):
                self.stats.bad["not_a_contact_record"] += 1
                continue
            if record.get("Channel", "VOICE") != "VOICE":
                self.stats.ignored[f"channel_{record.get('Channel')}"] += 1
                continue
            contact = record["ContactId"]
            kept = newest.get(contact)
            if kept is None or str(record.get("LastUpdateTimestamp", "")) >= str(
                kept.get("LastUpdateTimestamp", "")
            ):
                if kept is not None:
                    self.stats.ignored["older_delivery"] += 1
                newest[contact] = record
            else:
                self.stats.ignored["older_delivery"] += 1
        out: list[dict[str, Any]] = []
        for contact in sorted(newest):
            out.extend(self._ctr_events(newest[contact]))
        return out

    def _ctr_events(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        contact = record["ContactId"]
        call = f"connect-{record.get('InitialContactId') or contact}"
        queue = record.get("Queue") or {}
        agent = record.get("Agent") or {}
        target = self._target(record.get("Attributes") or {}, queue.get("Name"), queue.get("ARN"))
        if target is None:
            if not queue:
                self.stats.ignored["no_queue_no_contract_attribute"] += 1
            return []
        events: list[tuple[str, int | None]] = [
            ("call_received", _ms(record.get("InitiationTimestamp")))
        ]
        queued = _ms(queue.get("EnqueueTimestamp"))
        answered = _ms(agent.get("ConnectedToAgentTimestamp"))
        events.append(("queued", queued))
        events.append(("answered", answered))
        disconnect = _ms(record.get("DisconnectTimestamp"))
        reason = str(record.get("DisconnectReason") or "OTHER")
        self.reasons[reason] += 1
        if disconnect is not None and not record.get("NextContactId"):
            # A contact transferred onward is not the call's end: the last contact ends it.
            events.append((self._end(reason, queued is not None, answered is not None),
                           disconnect))  # fmt: skip
        return [self._event(f"connect-{contact}-{kind}", call, kind, ts, target)
                for kind, ts in events if ts is not None]  # fmt: skip

    def _end(self, reason: str, queued: bool, answered: bool) -> str:
        if answered:
            return "disconnected" if reason == "TELECOM_PROBLEM" else "ended"
        when_queued, not_queued = UNANSWERED_END.get(reason, _DEFAULT_UNANSWERED)
        return when_queued if queued else not_queued

    # -- EventBridge contact events -----------------------------------------------------------

    def convert_events(self, documents: Iterable[Any | str]) -> list[dict[str, Any]]:
        contacts: dict[str, dict[str, Any]] = {}
        out: list[dict[str, Any]] = []
        items = []
        for document in documents:
            self.stats.lines += 1
            if isinstance(document, str):
                self.stats.bad[document] += 1
                continue
            detail = document.get("detail") if isinstance(document, dict) else None
            if not isinstance(detail, dict) or not isinstance(detail.get("contactId"), str):
                self.stats.bad["not_a_contact_event"] += 1
                continue
            items.append((str(document.get("time", "")), detail))
        # Events arrive out of order: handle each contact's in time order.
        items.sort(key=lambda item: (item[0], str(item[1].get("eventType"))))
        for _time, detail in items:
            if detail.get("channel", "VOICE") != "VOICE":
                self.stats.ignored[f"channel_{detail.get('channel')}"] += 1
                continue
            contact = detail["contactId"]
            state = contacts.setdefault(contact, {"pending": []})
            kind = str(detail.get("eventType"))
            queue_info = detail.get("queueInfo") or {}
            agent_info = detail.get("agentInfo") or {}
            target = self._target({}, queue_info.get("queueName"), queue_info.get("queueArn"))
            if target is not None:
                state["target"] = target
            call = f"connect-{detail.get('initialContactId') or contact}"
            produced: list[tuple[str, int | None]] = []
            if kind == "INITIATED":
                produced.append(("call_received", _ms(detail.get("initiationTimestamp"))))
            elif kind == "QUEUED":
                state["queued"] = True
                produced.append(("queued", _ms(queue_info.get("enqueueTimestamp"))))
            elif kind == "CONNECTED_TO_AGENT":
                state["answered"] = True
                produced.append(("answered", _ms(agent_info.get("connectedToAgentTimestamp"))))
            elif kind == "DISCONNECTED":
                reason = str(detail.get("disconnectReason") or "OTHER")
                self.reasons[reason] += 1
                if not detail.get("nextContactId"):
                    end = self._end(reason, bool(state.get("queued")), bool(state.get("answered")))
                    produced.append((end, _ms(detail.get("disconnectTimestamp"))))
            else:
                self.stats.ignored[kind] += 1
                continue
            for name, ts in produced:
                if ts is not None:
                    state["pending"].append((f"connect-{contact}-{name}", call, name, ts))
            if state.get("target") is not None:
                for event_id, call_id, name, ts in state["pending"]:
                    out.append(self._event(event_id, call_id, name, ts, state["target"]))
                state["pending"] = []
        for contact, state in contacts.items():
            if state["pending"]:
                self.stats.unmapped_queues[f"contact {contact} without a mapped queue"] += 1
        return out

    # -- shared -------------------------------------------------------------------------------

    def _target(self, attributes: dict[str, Any], queue_name: Any, queue_arn: Any) -> Target | None:
        contract = attributes.get(self.contract_attribute)
        if isinstance(contract, str) and CONTRACT_ID_PATTERN.fullmatch(contract):
            line = attributes.get(self.line_attribute)
            if not (isinstance(line, str) and LINE_PATTERN.fullmatch(line)):
                line = "member_services"
            return Target(contract, line)
        for key in (queue_name, queue_arn):
            if isinstance(key, str) and key in self.queues:
                return self.queues[key]
        if queue_name or queue_arn:
            self.stats.unmapped_queues[str(queue_name or queue_arn)] += 1
        return None

    def _event(self, event_id: str, call_id: str, kind: str, ts_ms: int,
               target: Target) -> dict[str, Any]:  # fmt: skip
        self.stats.events[kind] += 1
        return {"event_id": event_id, "contract_id": target.contract_id, "call_id": call_id,
                "type": kind, "ts": ts_ms / 1000, "line": target.line,
                "source": "amazon_connect"}  # fmt: skip
