"""The ``monitor`` command line: a thin shell over the engine and the pipeline."""

from __future__ import annotations

import argparse
import sys
import zlib
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import IO, Any

from monitor.engine import ContractRegistry, RegistryError
from monitor.engine.hours import HoursError, OperatingHours
from monitor.exit_codes import (
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_NO_VALID_DATA,
    EXIT_OK,
    EXIT_USAGE,
)
from monitor.logs import configure_logging, get_logger
from monitor.version import version_line


class CliError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


def _load_registry(path: str | None, hours_path: str | None = None) -> ContractRegistry:
    try:
        hours = None if hours_path is None else OperatingHours.from_csv(hours_path)
        if path is None:
            return ContractRegistry(hours=hours)
        return ContractRegistry.from_csv(path, hours)
    except (RegistryError, HoursError) as exc:
        raise CliError(str(exc)) from None


def _check_inputs(inputs: Sequence[str]) -> None:
    """Every --input can be opened for reading before anything is read or written: a typo
    costs nothing, and the message says what is wrong with which one."""
    import errno
    import os

    for name in inputs:
        if name == "-":
            continue
        if os.path.isdir(name):
            raise CliError(f"--input {name}: is a directory, not a file")
        try:
            # O_NONBLOCK: a named pipe without a writer yet must not hang the check.
            os.close(os.open(name, os.O_RDONLY | os.O_NONBLOCK))
        except FileNotFoundError:
            raise CliError(f"--input {name}: no such file") from None
        except PermissionError:
            raise CliError(f"--input {name}: permission denied") from None
        except OSError as exc:
            reason = exc.strerror or errno.errorcode.get(exc.errno or 0, "cannot open")
            raise CliError(f"--input {name}: {reason.lower()}") from None


def _count(value: int) -> str:
    """1532 -> "1 532": the thousands separator the docs use, readable in a cron mail."""
    return f"{value:,}".replace(",", " ")


def _plural(value: int, word: str) -> str:
    return f"{_count(value)} {word}{'' if value == 1 else 's'}"


def _data_verdict(
    *,
    inputs: int,
    valid: int,
    rejected: dict[str, int],
    considered: int,
    max_reject_ratio: float | None,
    nothing: str,
    require_valid: bool = True,
) -> str | None:
    """Why a run that read its inputs must exit with EXIT_NO_VALID_DATA, or None.

    ``considered`` is the non-blank lines (records) read, ``rejected`` the unusable ones by
    reason, ``valid`` what came out of them (events accepted, or events emitted);
    ``nothing`` starts the message when nothing valid came out ("no valid event in").
    """
    total_rejected = sum(rejected.values())
    reasons = ", ".join(f"{reason} {_count(n)}" for reason, n in sorted(rejected.items()) if n)
    detail = f"{_plural(total_rejected, 'line')} rejected" + (f": {reasons}" if reasons else "")
    if require_valid and valid == 0:
        if considered == 0:
            detail = "no line to read: empty or blank"
        return f"{nothing} {_plural(inputs, 'input')} ({detail})"
    ratio = total_rejected / considered if considered else 0.0
    if max_reject_ratio is not None and ratio > max_reject_ratio:
        return (
            f"rejected {100 * ratio:.1f} % of lines, over --max-reject-ratio {max_reject_ratio:g} "
            f"({_count(total_rejected)} of {_plural(considered, 'line')}"
            + (f": {reasons})" if reasons else ")")
        )
    return None


def _open_output(name: str | None) -> IO[bytes]:
    if name is None or name == "-":
        return sys.stdout.buffer
    try:
        return Path(name).open("wb")
    except OSError as exc:
        raise CliError(f"cannot write {name}: {exc.strerror}") from None


def cmd_report(args: argparse.Namespace) -> int:
    from monitor.report import RejectsWriter, render_csv, render_json, run_report

    log = get_logger("monitor.report")
    _check_inputs(args.inputs)
    settings = args.settings
    registry = _load_registry(settings.contracts, settings.hours)
    rules = settings.outage_rules
    rejects_stream = _open_output(args.rejects) if args.rejects else None
    try:
        on_reject = RejectsWriter(rejects_stream) if rejects_stream else None
        try:
            engine = run_report(args.inputs, registry, on_reject)
        except (OSError, EOFError, zlib.error) as exc:
            # gzip raises EOFError for a truncated file and zlib.error for a corrupt stream.
            raise CliError(f"cannot read input: {exc}") from None
    finally:
        if rejects_stream is not None and rejects_stream is not sys.stdout.buffer:
            rejects_stream.close()
    body = render_json(engine, rules) if args.format == "json" else render_csv(engine.rows())
    out = _open_output(args.output)
    try:
        out.write(body)
        out.flush()
    finally:
        if out is not sys.stdout.buffer:
            out.close()
    stats = engine.sync_stats()
    rejected = {k.value: v for k, v in sorted(stats.rejected.items())}
    # The output above is written whatever the verdict: the figures and rejects of a run that
    # fails the data check are kept for whoever investigates it.
    problem = _data_verdict(
        inputs=len(args.inputs),
        valid=stats.accepted,  # a duplicate needs a first, accepted copy
        rejected=rejected,
        considered=stats.accepted + stats.duplicates + stats.rejected_total,
        max_reject_ratio=args.max_reject_ratio,
        nothing="no valid event in",
    )
    status = EXIT_OK if problem is None else EXIT_NO_VALID_DATA
    (log.info if problem is None else log.warning)(
        "report_done",
        inputs=len(args.inputs),
        accepted=stats.accepted,
        duplicates=stats.duplicates,
        rejected=stats.rejected_total,
        rejected_by_reason=rejected,
        status_events=stats.status_events,
        calls=engine.calls_tracked,
        clock_skew_calls=engine.clock_skew_calls,
        exit_status=status,
        problem=problem,
    )
    if problem is not None:
        print(f"monitor report: {problem}", file=sys.stderr)
    return status


def cmd_simulate(args: argparse.Namespace) -> int:
    from monitor.simulator import SimulationConfig, write_events_file

    registry = _load_registry(args.contracts)
    try:
        config = SimulationConfig.from_args(args, registry)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if args.sink == "kafka":
        return _simulate_to_kafka(args, config)
    out = _open_output(args.output)
    try:
        count = write_events_file(config, out)
    finally:
        if out is not sys.stdout.buffer:
            out.close()
    get_logger("monitor.simulate").info("simulate_done", events=count, output=args.output or "-")
    return EXIT_OK


def _simulate_to_kafka(args: argparse.Namespace, config: Any) -> int:
    import asyncio

    from monitor.pipeline.producer import publish
    from monitor.pipeline.topics import prepare_topics
    from monitor.simulator.generator import damaged_records

    settings = args.settings

    async def go() -> int:
        await prepare_topics(settings, {settings.events_topic: settings.partitions})
        return await publish(
            damaged_records(config),
            bootstrap_servers=settings.bootstrap_servers,
            topic=settings.events_topic,
            security=settings.security,
            batch_events=args.batch_events,
            speed=args.speed,
        )

    sent = asyncio.run(go())
    get_logger("monitor.simulate").info("simulate_done", events=sent, topic=settings.events_topic)
    return EXIT_OK


def cmd_publish(args: argparse.Namespace) -> int:
    import asyncio

    from monitor.jsonl import iter_lines, open_input
    from monitor.pipeline.producer import publish, records_from_lines
    from monitor.pipeline.topics import prepare_topics

    _check_inputs(args.inputs)
    settings = args.settings
    security = settings.security

    async def go() -> int:
        await prepare_topics(settings, {settings.events_topic: settings.partitions})
        total = 0
        for name in args.inputs:
            with open_input(name) as handle:
                total += await publish(
                    records_from_lines(iter_lines(handle)),
                    bootstrap_servers=settings.bootstrap_servers,
                    topic=settings.events_topic,
                    security=security,
                    batch_events=args.batch_events,
                )
        return total

    sent = asyncio.run(go())
    get_logger("monitor.publish").info("publish_done", records=sent, topic=settings.events_topic)
    return EXIT_OK


def cmd_worker(args: argparse.Namespace) -> int:
    import asyncio

    import mode.loop

    from monitor.pipeline.broker import (
        BrokerRefusedError,
        BrokerUnreachableError,
        wait_until_reachable,
    )
    from monitor.pipeline.topics import TopicsError, prepare_topics
    from monitor.pipeline.worker import Worker, changelog_topic

    settings = args.settings
    # Faust's supported way to pick the event loop; it must happen before any loop exists.
    mode.loop.use(settings.event_loop)
    registry = _load_registry(settings.contracts, settings.hours)

    async def prepare() -> None:
        await wait_until_reachable(settings.bootstrap_servers, settings.security,
                                   settings.connect_timeout / 1000)  # fmt: skip
        topics = settings.topic_partitions
        if not settings.create_topics:
            # Faust creates its changelog topic itself, except where topics are provisioned.
            topics[changelog_topic(settings.app_id)] = settings.partitions
        await prepare_topics(settings, topics)

    try:
        asyncio.run(prepare())
    except (BrokerRefusedError, TopicsError) as exc:
        # Credentials, certificates or topics: a restart will not help, so say it plainly.
        get_logger("monitor.worker").error(
            "kafka_refused_at_start", bootstrap_servers=settings.bootstrap_servers,
            error=str(exc),
        )  # fmt: skip
        where = "Kafka at " if isinstance(exc, BrokerRefusedError) else ""  # exc names the server
        print(f"monitor worker: error: {where}{exc}", file=sys.stderr)
        return EXIT_FAILURE
    except BrokerUnreachableError as exc:
        get_logger("monitor.worker").error(
            "broker_unreachable_at_start", bootstrap_servers=settings.bootstrap_servers,
            error=str(exc),
        )  # fmt: skip
        # The error names the address it tried last (one of the bootstrap servers).
        print(f"monitor worker: error: cannot reach Kafka: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    worker = Worker(settings, registry)
    get_logger("monitor.worker").info(
        "worker_starting",
        bootstrap_servers=settings.bootstrap_servers,
        topic=settings.events_topic,
        metrics=f"http://{settings.web_host}:{settings.web_port}/metrics",
    )
    worker.run()
    return EXIT_OK


def cmd_top(args: argparse.Namespace) -> int:
    from monitor.top import run_top

    if args.interval <= 0:
        raise CliError("--interval must be positive")
    return run_top(args.url, args.alertmanager, args.interval, args.once)


def cmd_dlq(args: argparse.Namespace) -> int:
    """``monitor dlq inspect|export|replay`` (monitor/pipeline/dlq_tools.py). A bad flag exits 2,
    a broker that does not answer in --timeout or a missing topic 1, each with one line."""
    from monitor.pipeline import dlq_tools

    name = f"monitor dlq {args.dlq_action}"
    try:
        handler = {"inspect": _dlq_inspect, "export": _dlq_export, "replay": _dlq_replay}
        return handler[args.dlq_action](args)
    except CliError as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except dlq_tools.DlqError as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE


def _dlq_connection(args: argparse.Namespace) -> Any:
    from monitor.pipeline.dlq_tools import Connection
    from monitor.pipeline.settings import parse_duration_ms

    try:
        timeout_ms = parse_duration_ms(args.timeout)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if timeout_ms <= 0:
        raise CliError("--timeout must be positive")
    return Connection(args.settings.bootstrap_servers, args.settings.security, timeout_ms / 1000)


def _dlq_since(args: argparse.Namespace) -> int | None:
    import time

    from monitor.pipeline.dlq_tools import parse_since

    if args.since is None:
        return None
    try:
        return parse_since(args.since, time.time_ns() // 1_000_000)
    except ValueError as exc:
        raise CliError(str(exc)) from None


def _dlq_inspect(args: argparse.Namespace) -> int:
    import asyncio

    from monitor.pipeline import dlq_tools

    if args.samples < 0:
        raise CliError("--samples must be 0 or more")
    conn, since = _dlq_connection(args), _dlq_since(args)
    summary = asyncio.run(
        dlq_tools.inspect(conn, args.dlq_topic, since_ms=since, samples=args.samples)
    )
    if args.format == "json":
        sys.stdout.buffer.write(dlq_tools.render_json(summary))
        sys.stdout.buffer.flush()
    else:
        dlq_tools.render_text(summary, sys.stdout)
    return EXIT_OK


def _dlq_export(args: argparse.Namespace) -> int:
    import asyncio
    import contextlib

    import orjson

    from monitor.pipeline import dlq_tools

    try:
        dlq_tools.check_reasons(args.reasons)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    conn, since = _dlq_connection(args), _dlq_since(args)
    with contextlib.ExitStack() as stack:
        try:
            out = stack.enter_context(dlq_tools.atomic_output(args.output))
        except OSError as exc:
            raise CliError(f"cannot write {args.output}: {exc.strerror}") from None
        try:
            result = asyncio.run(dlq_tools.export(conn, args.dlq_topic, out, since_ms=since,
                                                  reasons=args.reasons,
                                                  with_reasons=args.with_reasons))  # fmt: skip
        except OSError as exc:  # the broker's errors are DlqError: this is the output
            raise dlq_tools.DlqError(f"cannot write {args.output}: {exc}") from None
    # Like the adapters: the JSON summary is the last line on stderr.
    sys.stderr.write(orjson.dumps({**result.as_json(), "output": args.output}).decode() + "\n")
    if result.written == 0:
        print(f"monitor dlq export: nothing exported ({result.read} dead letters read, "
              f"{result.selected} selected)", file=sys.stderr)  # fmt: skip
        return EXIT_NO_VALID_DATA
    return EXIT_OK


def _dlq_replay(args: argparse.Namespace) -> int:
    import asyncio

    import orjson

    from monitor.pipeline import dlq_tools

    _check_inputs(args.inputs)
    conn = _dlq_connection(args)
    sent = asyncio.run(dlq_tools.replay(conn, args.inputs, args.settings.events_topic,
                                        batch_events=args.batch_events))  # fmt: skip
    sys.stderr.write(orjson.dumps({"sent": sent, "topic": args.settings.events_topic}).decode()
                     + "\n")  # fmt: skip
    if sent == 0:
        print("monitor dlq replay: no record to send in the input", file=sys.stderr)
        return EXIT_NO_VALID_DATA
    return EXIT_OK


def cmd_ingest_asterisk(args: argparse.Namespace) -> int:
    from monitor.adapters.asterisk import AsteriskConverter, parse_actions, zone_or_none
    from monitor.adapters.ingest import KafkaTarget, deliver, events_of, follow, read_items
    from monitor.adapters.queue_map import QueueMapError, load_queue_map

    _check_inputs(args.inputs)
    if args.follow and len(args.inputs) != 1:
        raise CliError("--follow reads exactly one --input")
    try:
        queues = load_queue_map(args.queues)
        actions = parse_actions(args.mappings)
        zone = zone_or_none(args.timezone)
    except (QueueMapError, ValueError) as exc:
        raise CliError(str(exc)) from None
    converter = AsteriskConverter(queues, actions)

    async def produce(out: IO[bytes] | None, kafka: KafkaTarget | None) -> int:
        if args.follow:
            position = Path(args.position) if args.position else None
            return await follow(Path(args.inputs[0]), converter, position_file=position,
                                poll_seconds=args.poll_seconds, out=out, kafka=kafka)  # fmt: skip
        sent = 0
        for name in args.inputs:
            try:
                items = read_items(Path(name), args.format, zone, converter.stats)
                sent += await deliver(list(events_of(converter, items)), out, kafka)
            except ValueError as exc:
                raise CliError(f"{name}: {exc}") from None
        return sent

    return _run_ingest(args, produce, "asterisk", converter.stats.as_dict)


def cmd_ingest_connect(args: argparse.Namespace) -> int:
    from monitor.adapters.connect import ConnectConverter, iter_json_documents
    from monitor.adapters.ingest import KafkaTarget, deliver
    from monitor.adapters.queue_map import QueueMapError, load_queue_map
    from monitor.jsonl import open_input

    _check_inputs(args.inputs)
    try:
        queues = load_queue_map(args.queues) if args.queues else {}
    except (QueueMapError, ValueError) as exc:
        raise CliError(str(exc)) from None
    converter = ConnectConverter(queues, args.contract_attribute, args.line_attribute)
    documents: list[object] = []
    for name in args.inputs:
        with open_input(name) as handle:
            documents.extend(iter_json_documents(handle.read()))
    if args.connect_kind == "connect-ctr":
        events = converter.convert_ctrs(documents)
    else:
        events = converter.convert_events(documents)

    async def produce(out: IO[bytes] | None, kafka: KafkaTarget | None) -> int:
        return await deliver(events, out, kafka)

    def summary() -> dict[str, Any]:
        return {**converter.stats.as_dict(),
                "disconnect_reasons": dict(sorted(converter.reasons.items()))}  # fmt: skip

    return _run_ingest(args, produce, args.connect_kind, summary)


def _run_ingest(
    args: argparse.Namespace,
    produce: Callable[[IO[bytes] | None, Any], Awaitable[int]],
    source: str,
    summary: Callable[[], dict[str, Any]],
) -> int:
    """Run an adapter to its sink (JSONL file or Kafka) and report what it did on stderr."""
    import asyncio

    import orjson

    from monitor.adapters.ingest import KafkaTarget
    from monitor.pipeline.topics import prepare_topics

    kafka = None
    if args.sink == "kafka":
        settings = args.settings
        kafka = KafkaTarget(settings.bootstrap_servers, settings.events_topic, settings.security,
                            args.batch_events)  # fmt: skip
    out = None if kafka is not None else _open_output(args.output)

    async def go() -> int:
        if kafka is not None:
            await prepare_topics(args.settings, {kafka.topic: args.settings.partitions})
        return await produce(out, kafka)

    try:
        sent = asyncio.run(go())
    finally:
        if out is not None and out is not sys.stdout.buffer:
            out.close()
    report = {"sent": sent, **summary()}
    # Rejected: the damaged lines (bad_lines), not the blank ones. Ignored events, unknown
    # event types and unmapped queues are the adapter doing its job or a mapping to extend;
    # the summary shows them, the verdict does not count them. With --follow the file may
    # stay quiet for hours: only the reject ratio applies.
    bad = {k: v for k, v in report["bad_lines"].items() if k != "blank"}
    blank = report["bad_lines"].get("blank", 0)
    problem = _data_verdict(
        inputs=len(args.inputs),
        valid=sum(report["events"].values()),
        rejected=bad,
        considered=report["lines"] - blank,
        max_reject_ratio=args.max_reject_ratio,
        nothing="no event produced from",
        require_valid=not getattr(args, "follow", False),
    )
    status = EXIT_OK if problem is None else EXIT_NO_VALID_DATA
    log = get_logger("monitor.ingest")
    (log.info if problem is None else log.warning)(
        "ingest_done", source=source, exit_status=status, problem=problem, **report
    )
    if problem is not None:
        print(f"monitor ingest {source}: {problem}", file=sys.stderr)
    # The JSON summary stays the last line on stderr (docs/adapters.md), whatever the verdict.
    sys.stderr.write(orjson.dumps(report).decode() + "\n")
    return status


class _SubcommandParser(argparse.ArgumentParser):
    """A subcommand's parser: an argument it does not know is its own usage error.

    argparse hands a subcommand's unknown arguments back to the top-level parser, which then
    prints the top-level usage ("monitor [-h] ... COMMAND"), no help for a mistyped
    ``monitor report --bogus``. Raising here, innermost parser first, prints the usage of the
    subcommand that was given (``usage: monitor ingest asterisk ...``), exit status 2.
    """

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extra = super().parse_known_args(args, namespace)
        if extra:
            self.error(f"unrecognized arguments: {' '.join(extra)}")
        return parsed, extra


def _reject_ratio(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1")
    return value


def _add_max_reject_ratio(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-reject-ratio", type=_reject_ratio, metavar="R",
        help="exit 3 when more than this share (0-1) of the lines is rejected; without it, "
             "only a run with no valid event exits 3 (the output is written either way)",
    )  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    from monitor.pipeline.settings import (
        KafkaSettings,
        OutageSettings,
        ProducerSettings,
        WorkerSettings,
    )
    from monitor.pipeline.settings_flags import add_arguments

    parser = argparse.ArgumentParser(
        prog="monitor",
        description="Medicare call-center compliance monitor "
        "(42 CFR 422.111(h)(1), 423.128(d)(1)).",
    )
    parser.add_argument("--version", action="version", version=version_line())
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR (env MONITOR_LOG_LEVEL)")
    parser.add_argument(
        "--log-format",
        choices=("json", "console", "auto"),
        help="log rendering (env MONITOR_LOG_FORMAT; auto = console on a terminal, else JSON)",
    )
    # Subcommands (and theirs) refuse an unknown flag themselves, with their own usage.
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=_SubcommandParser)  # fmt: skip

    report = sub.add_parser(
        "report",
        help="replay JSONL event files into daily CMS figures per contract, line and date",
        description="Replay canonical call events (JSONL) into daily figures per contract, "
        "line and local date. Inputs are read in the order given.",
    )
    report.add_argument(
        "--input",
        dest="inputs",
        action="append",
        required=True,
        metavar="FILE",
        help="JSONL events; repeatable; '-' is stdin; '.gz' is decompressed",
    )
    add_arguments(report, OutageSettings)
    report.add_argument("--format", choices=("json", "csv"), default="json")
    report.add_argument("--output", metavar="FILE", help="write here instead of stdout")
    report.add_argument(
        "--rejects", metavar="FILE", help="write rejected lines with reasons (JSONL)"
    )
    _add_max_reject_ratio(report)
    report.set_defaults(handler=cmd_report)

    from monitor.simulator import add_simulate_arguments

    simulate = sub.add_parser(
        "simulate",
        help="generate realistic canonical call events",
        description="Generate canonical call events for contracts from a registry.",
    )
    add_simulate_arguments(simulate)
    simulate.add_argument("--sink", choices=("file", "kafka"), default="file",
                          help="write JSONL (--output) or publish to Kafka")  # fmt: skip
    simulate.add_argument("--output", metavar="FILE", help="JSONL file (default stdout)")
    add_arguments(simulate, ProducerSettings)
    simulate.add_argument("--batch-events", type=int, default=500,
                          help="events per Kafka message (1: one event per message)")  # fmt: skip
    simulate.add_argument("--speed", type=float, default=0.0,
                          help="event time at N x real time (0: as fast as possible)")  # fmt: skip
    simulate.set_defaults(handler=cmd_simulate)

    publish = sub.add_parser(
        "publish",
        help="publish JSONL event files to Kafka, keyed by contract, in batch messages",
    )
    publish.add_argument("--input", dest="inputs", action="append", required=True,
                         metavar="FILE", help="JSONL events; repeatable; '-' is stdin")  # fmt: skip
    add_arguments(publish, ProducerSettings)
    publish.add_argument("--batch-events", type=int, default=500,
                         help="events per Kafka message (1: one event per message)")  # fmt: skip
    publish.set_defaults(handler=cmd_publish)

    ingest = sub.add_parser("ingest", help="turn PBX / contact-center logs into canonical events")
    sources = ingest.add_subparsers(dest="source", required=True, metavar="SOURCE")
    asterisk = sources.add_parser(
        "asterisk",
        help="Asterisk queue_log (raw pipe-delimited, or a CSV export of the queue_log table)",
        description="Convert Asterisk queue_log lines into canonical events (docs/adapters.md).",
    )
    asterisk.add_argument("--input", dest="inputs", action="append", required=True,
                          metavar="FILE",
                          help="queue_log file; repeatable (one with --follow)")  # fmt: skip
    asterisk.add_argument("--queues", required=True, metavar="FILE",
                          help="CSV queue,contract_id,line: PBX queues to contracts")  # fmt: skip
    asterisk.add_argument("--format", choices=("auto", "pipe", "csv"), default="auto",
                          help="auto detects a CSV header")  # fmt: skip
    asterisk.add_argument("--timezone", metavar="ZONE",
                          help="IANA zone of naive date_time values in a CSV export")  # fmt: skip
    asterisk.add_argument("--map", dest="mappings", action="append", default=[],
                          metavar="EVENT=TYPE",
                          help="override an event's canonical type (ended, disconnected, "
                               "abandoned, queued, answered, ignore); repeatable")  # fmt: skip
    asterisk.add_argument("--sink", choices=("file", "kafka"), default="file")
    asterisk.add_argument("--output", metavar="FILE", help="JSONL output (default stdout)")
    asterisk.add_argument("--follow", action="store_true",
                          help="keep reading the file as it grows, across rotation")  # fmt: skip
    asterisk.add_argument("--position", metavar="FILE",
                          help="with --follow: the saved read position")  # fmt: skip
    asterisk.add_argument("--poll-seconds", type=float, default=1.0)
    add_arguments(asterisk, ProducerSettings)
    asterisk.add_argument("--batch-events", type=int, default=500)
    _add_max_reject_ratio(asterisk)
    asterisk.set_defaults(handler=cmd_ingest_asterisk)
    for name, kind in (("connect-ctr", "contact trace records (JSON, arrays or Firehose "
                                       "concatenated)"),
                       ("connect-events", "EventBridge contact events")):  # fmt: skip
        connect = sources.add_parser(name, help=f"Amazon Connect {kind}")
        connect.add_argument("--input", dest="inputs", action="append", required=True,
                             metavar="FILE", help="repeatable; .gz is read as such")  # fmt: skip
        connect.add_argument("--queues", metavar="FILE",
                             help="CSV queue,contract_id,line (queue name or ARN)")  # fmt: skip
        connect.add_argument("--contract-attribute", default="cms_contract_id",
                             help="contact attribute holding the contract id")  # fmt: skip
        connect.add_argument("--line-attribute", default="cms_line",
                             help="contact attribute holding the line")  # fmt: skip
        connect.add_argument("--sink", choices=("file", "kafka"), default="file")
        connect.add_argument("--output", metavar="FILE", help="JSONL output (default stdout)")
        add_arguments(connect, ProducerSettings)
        connect.add_argument("--batch-events", type=int, default=500)
        _add_max_reject_ratio(connect)
        connect.set_defaults(handler=cmd_ingest_connect, connect_kind=name)

    worker = sub.add_parser(
        "worker",
        help="run a streaming worker (Kafka -> figures -> /metrics)",
        description="Consume canonical events from Kafka, keep per-call state and per-contract "
        "figures in changelog-backed tables, and export them on /metrics.",
    )
    add_arguments(worker, WorkerSettings)
    worker.set_defaults(handler=cmd_worker)

    import os

    dlq = sub.add_parser(
        "dlq",
        help="inspect the dead-letter topic, export refused records, replay fixed ones",
        description="Dead letters an operator can act on (docs/streaming.md, 'Dead-letter "
        "tools'). Exit status 0 done, 1 broker unreachable or topic missing, 2 usage, "
        "3 nothing exported or replayed.",
    )
    dlq_actions = dlq.add_subparsers(dest="dlq_action", required=True, metavar="ACTION")
    inspect = dlq_actions.add_parser(
        "inspect", help="counts by reason and source, oldest and newest, samples per reason"
    )
    export = dlq_actions.add_parser(
        "export", help="write the refused records (their original bytes) to a JSONL file"
    )
    replay = dlq_actions.add_parser(
        "replay", help="send corrected records from JSONL files to the events topic"
    )
    for action in (inspect, export, replay):
        add_arguments(action, KafkaSettings)
        action.add_argument("--timeout", default=os.environ.get("MONITOR_DLQ_TIMEOUT", "10s"),
                            help="give up when Kafka does not answer for this long "
                                 "(MONITOR_DLQ_TIMEOUT, default 10s)")  # fmt: skip
        action.set_defaults(handler=cmd_dlq)
    for action in (inspect, export):
        action.add_argument("--dlq-topic",
                            default=os.environ.get("MONITOR_DLQ_TOPIC", "callcenter.dlq"),
                            help="dead-letter topic (MONITOR_DLQ_TOPIC)")  # fmt: skip
        action.add_argument("--since", metavar="DURATION|TIMESTAMP",
                            help="only records dead-lettered since then (Kafka record "
                                 "times): 6h, 30m, 2026-01-05T14:00:00Z, 2026-01-05")  # fmt: skip
    inspect.add_argument("--samples", type=int, default=3, metavar="N",
                         help="newest records shown per reason (default %(default)s)")  # fmt: skip
    inspect.add_argument("--format", choices=("text", "json"), default="text")
    export.add_argument("--output", required=True, metavar="FILE",
                        help="JSONL file ('-' is stdout), replaced once written whole")  # fmt: skip
    export.add_argument("--reason", dest="reasons", action="append", default=[], metavar="R",
                        help="only records refused for this reason; repeatable")  # fmt: skip
    export.add_argument("--with-reasons", action="store_true",
                        help="write whole dead-letter records, not the original bytes")  # fmt: skip
    replay.add_argument("--input", dest="inputs", action="append", required=True,
                        metavar="FILE", help="JSONL records; repeatable; '-' is stdin")  # fmt: skip
    replay.add_argument("--batch-events", type=int, default=500,
                        help="events per Kafka message (1: one event per message)")  # fmt: skip

    top = sub.add_parser(
        "top",
        help="a live terminal view of a worker's figures and firing alerts, worst first",
        description="One row per contract and line: last hour and today's average hold, "
        "within-30-s ratio and disconnect rate, the live queue, an open outage and the firing "
        "alerts; redrawn in place on a terminal, one plain table otherwise.",
    )
    top.add_argument("--url", default="http://127.0.0.1:6066/metrics",
                     help="the worker's /metrics (default %(default)s)")  # fmt: skip
    top.add_argument("--alertmanager", metavar="URL",
                     help="Alertmanager's base URL: the firing alerts of each line")  # fmt: skip
    top.add_argument("--interval", type=float, default=2.0, metavar="SECONDS",
                     help="seconds between refreshes (default %(default)s)")  # fmt: skip
    top.add_argument("--once", action="store_true",
                     help="print one table and exit (1 when a URL cannot be read)")  # fmt: skip
    top.set_defaults(handler=cmd_top)
    return parser


def _settings(model: Any, args: argparse.Namespace) -> Any:
    """The command's settings from its flags, ``MONITOR_*`` and the secrets directory."""
    from monitor.pipeline.settings_flags import settings_from_args

    try:
        return settings_from_args(model, args)
    except ValueError as exc:
        raise CliError(str(exc)) from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        configure_logging(args.log_level, args.log_format)
    except ValueError as exc:
        parser.error(str(exc))
    command = " ".join(filter(None, (args.command, getattr(args, "source", None),
                                     getattr(args, "dlq_action", None))))  # fmt: skip
    try:
        if (model := getattr(args, "settings_model", None)) is not None:
            args.settings = _settings(model, args)
            if args.print_config:
                from monitor.pipeline.settings_flags import render_config

                sys.stdout.write(render_config(args.settings))
                return EXIT_OK
        result: int = args.handler(args)
    except CliError as exc:
        print(f"monitor {command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as exc:
        # Kafka being away or refusing us is an expected condition: one line, not a traceback.
        from aiokafka.errors import KafkaError

        from monitor.pipeline.broker import BrokerUnreachableError
        from monitor.pipeline.topics import TopicsError

        if isinstance(exc, BrokerUnreachableError | TopicsError):  # each names the server
            where = "Kafka at " if isinstance(exc, BrokerUnreachableError) else ""
            print(f"monitor {command}: error: {where}{exc}", file=sys.stderr)
            return EXIT_FAILURE
        if not isinstance(exc, KafkaError):
            raise
        servers = args.settings.bootstrap_servers if hasattr(args, "settings") else "?"
        print(f"monitor {command}: error: Kafka at {servers}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    return result


if __name__ == "__main__":
    sys.exit(main())
