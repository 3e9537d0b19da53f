"""Can the worker reach its Kafka brokers? A probe, a watch that logs what an operator needs to
know about it, and a filter that keeps the client libraries' retry storm out of the logs.

While a broker is down, aiokafka and Faust log every failed connection, fetch, metadata and
heartbeat attempt: thousands of ERROR lines a minute that say one thing. The watch says it
once (``broker_lost``), then once a minute (``broker_still_lost``: attempts, the last error),
and once more when the broker is back (``broker_restored``). Nothing is lost meanwhile: the
consumer resumes from the last committed offsets and de-duplication absorbs what is re-read.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiokafka.conn import create_conn

from monitor.logs import get_logger
from monitor.pipeline.kafka_security import SecurityOptions, describe_refusal
from monitor.pipeline.settings import KafkaSecurity

log = get_logger("monitor.broker")

SUMMARY_EVERY_S = 60.0

# What aiokafka and Faust log about an unreachable broker or coordinator (messages as they
# spell them); each is one more attempt of the clients, not news to an operator.
_CONNECTION_NOISE = re.compile(
    r"Unable connect to|Unable to (update|request) metadata|Unable to bootstrap"
    r"|Failed fetch messages|Group Coordinator Request failed|Heartbeat (failed|send request"
    r" failed|session expired)|Error sending \w+Request|Marking the coordinator dead"
    r"|NodeNotReadyError|KafkaConnectionError|Connection at .* closed|Got error produce response"
    r"|OffsetCommit failed|Failed to (commit|send)|coordinator .* dead|Coordinator dead"
    r"|LeaveGroup request failed|GroupCoordinatorNotAvailable"
    # Faust's producer backpressure, every 100 ms while the broker is slow or away.
    r"|producer buffer full",
)
_NOISY_LOGGERS = ("aiokafka", "faust.transport", "faust.tables", "faust.sensors", "mode")


class BrokerUnreachableError(Exception):
    """No bootstrap server accepted a connection (TCP, TLS and SASL) in time."""


class BrokerRefusedError(BrokerUnreachableError):
    """A broker answered and refused this client, or this client refused the broker (password,
    mechanism, certificate): retrying will not help, so nothing retries it."""


def _hosts(bootstrap_servers: str) -> list[tuple[str, int]]:
    hosts = []
    for item in bootstrap_servers.split(","):
        host, _, port = item.strip().rpartition(":")
        hosts.append((host.strip("[]") or "localhost", int(port or 9092)))
    return hosts


async def probe(bootstrap_servers: str, security: KafkaSecurity, timeout_s: float = 5.0) -> None:
    """Connect to a bootstrap server as the clients do (TLS and SASL included), then close.

    Raises :class:`BrokerRefusedError` when a server refused the security settings and none
    accepted them, else :class:`BrokerUnreachableError` with the reason of the last server tried.
    """
    kwargs = security.aiokafka_kwargs()
    last = "no bootstrap server"
    refused: str | None = None
    for host, port in _hosts(bootstrap_servers):
        try:
            conn = await asyncio.wait_for(
                create_conn(host, port, request_timeout_ms=int(timeout_s * 1000), **kwargs),
                timeout_s,
            )
        except TimeoutError:
            last = f"{host}:{port}: no answer within {timeout_s:g} s"
            continue
        except Exception as exc:
            last = f"{host}:{port}: {describe_error(exc, security)}"
            if describe_refusal(exc, security) is not None:
                refused = last
            continue
        conn.close()
        return
    if refused is not None:
        raise BrokerRefusedError(refused)
    raise BrokerUnreachableError(last)


def describe_error(exc: BaseException, security: SecurityOptions | None = None) -> str:
    """An exception as one line that names its type once; a refusal because of the security
    settings as what to check (``security`` names the settings in that line)."""
    refusal = describe_refusal(exc, security)
    if refusal is not None:
        return refusal
    text = str(exc).strip() or type(exc).__name__
    return text if type(exc).__name__ in text else f"{type(exc).__name__}: {text}"


async def wait_until_reachable(
    bootstrap_servers: str,
    security: KafkaSecurity,
    timeout_s: float,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Retry :func:`probe` with exponential backoff for up to ``timeout_s``.

    One warning when the first attempt fails; raises :class:`BrokerUnreachableError` (with the last
    reason and the attempts made) when the time is up, and :class:`BrokerRefusedError` at once.
    """
    deadline = clock() + timeout_s
    delay, attempts = 0.5, 0
    while True:
        attempts += 1
        try:
            await probe(bootstrap_servers, security, timeout_s=min(5.0, max(1.0, timeout_s)))
        except BrokerRefusedError:
            raise
        except BrokerUnreachableError as exc:
            left = deadline - clock()
            if left <= 0:
                raise BrokerUnreachableError(
                    f"{exc} (gave up after {attempts} attempts in {timeout_s:g} s)"
                ) from None
            if attempts == 1:
                log.warning("broker_unreachable", bootstrap_servers=bootstrap_servers,
                            error=str(exc), retrying_for_s=round(left, 1))  # fmt: skip
            await asyncio.sleep(min(delay, left))
            delay = min(delay * 2, 10.0)
            continue
        if attempts > 1:
            log.info("broker_reachable", bootstrap_servers=bootstrap_servers, attempts=attempts)
        return


@dataclass
class BrokerWatch:
    """Whether the broker is reachable, from probe results, and the lines that say so.

    ``record`` takes each probe's outcome; ``client_error`` each suppressed library record.
    Pure bookkeeping with an injected clock, so the log lines can be tested without a broker.
    """

    clock: Callable[[], float] = time.monotonic
    reachable: bool = True
    lost_at: float | None = None
    last_ok: float | None = None
    attempts: int = 0  # failed probes since the broker was lost
    client_errors: int = 0  # library records suppressed since the last line about them
    last_error: str | None = None
    losses: int = 0
    _last_summary: float = 0.0

    def __post_init__(self) -> None:
        self._last_summary = self.clock()

    def record(self, error: str | None) -> None:
        now = self.clock()
        if error is None:
            self.last_ok = now
            if not self.reachable:
                log.info("broker_restored", down_for_s=round(now - (self.lost_at or now), 1),
                         attempts=self.attempts, client_errors=self.client_errors)  # fmt: skip
                self.reachable, self.lost_at = True, None
                self.attempts = self.client_errors = 0
                self._last_summary = now
            elif self.client_errors and now - self._last_summary >= SUMMARY_EVERY_S:
                # Reachable, yet the clients complain (one broker of several down, say).
                log.warning("broker_client_errors", count=self.client_errors,
                            last_error=self.last_error,
                            over_s=round(now - self._last_summary))  # fmt: skip
                self.client_errors = 0
                self._last_summary = now
            return
        self.last_error = error
        self.attempts += 1
        if self.reachable:
            self.reachable, self.lost_at = False, now
            self.losses += 1
            self._last_summary = now
            log.warning("broker_lost", error=error)
        elif now - self._last_summary >= SUMMARY_EVERY_S:
            log.warning("broker_still_lost", down_for_s=round(now - (self.lost_at or now), 1),
                        attempts=self.attempts, client_errors=self.client_errors,
                        last_error=error)  # fmt: skip
            self._last_summary = now

    def client_error(self, message: str) -> None:
        self.client_errors += 1
        if self.reachable:
            self.last_error = message

    def unreachable_for(self) -> float:
        """Seconds since the broker was last reached, while it is lost (0 while reachable).

        Counted from the last good probe rather than the first failed one, so readiness turns
        within its limit of the real loss, not a probe interval later.
        """
        if self.reachable or self.lost_at is None:
            return 0.0
        return self.clock() - (self.last_ok if self.last_ok is not None else self.lost_at)


class ConnectionNoiseFilter(logging.Filter):
    """Drops the client libraries' records about unreachable brokers, counting them instead.

    Attached to the root logger's handlers, so it sees Faust's and aiokafka's records whatever
    logger they use. Anything else, at any level, passes.
    """

    def __init__(self, watch: BrokerWatch) -> None:
        super().__init__()
        self.watch = watch
        self.suppressed = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or not record.name.startswith(_NOISY_LOGGERS):
            return True
        try:
            message = record.getMessage()
        except Exception:
            return True
        if _CONNECTION_NOISE.search(message) is None:
            return True
        self.suppressed += 1
        self.watch.client_error(message[:300])
        return False


async def watch_broker(
    watch: BrokerWatch,
    bootstrap_servers: str,
    security: KafkaSecurity,
    every_s: float,
) -> None:
    """Probe forever, every ``every_s`` (a task of the worker)."""
    while True:
        try:
            await probe(bootstrap_servers, security, timeout_s=max(1.0, every_s))
        except BrokerUnreachableError as exc:
            watch.record(str(exc))
        else:
            watch.record(None)
        await asyncio.sleep(every_s)
