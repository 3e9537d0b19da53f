"""The ``monitor`` command line: a thin shell over the engine and the pipeline."""

from __future__ import annotations

import argparse
import sys
import zlib
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import IO, Any

from monitor import __version__
from monitor.engine import ContractRegistry, RegistryError
from monitor.engine.hours import HoursError, OperatingHours
from monitor.engine.outages import parse_outage_rules
from monitor.logs import configure_logging, get_logger

EXIT_USAGE = 2


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
    for name in inputs:
        if name == "-":
            continue
        path = Path(name)
        if not path.is_file():
            raise CliError(f"input file not found: {name}")


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
    registry = _load_registry(args.contracts, args.hours)
    try:
        rules = parse_outage_rules(args.outage_rules)
    except ValueError as exc:
        raise CliError(str(exc)) from None
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
    log.info(
        "report_done",
        inputs=len(args.inputs),
        accepted=stats.accepted,
        duplicates=stats.duplicates,
        rejected=stats.rejected_total,
        rejected_by_reason={k.value: v for k, v in sorted(stats.rejected.items())},
        status_events=stats.status_events,
        calls=engine.calls_tracked,
        clock_skew_calls=engine.clock_skew_calls,
    )
    return 0


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
    return 0


def _simulate_to_kafka(args: argparse.Namespace, config: Any) -> int:
    import asyncio

    from monitor.pipeline.producer import publish
    from monitor.pipeline.settings import security_from_args
    from monitor.pipeline.topics import ensure_topics
    from monitor.simulator.generator import damaged_records

    try:
        security = security_from_args(args)
    except ValueError as exc:
        raise CliError(str(exc)) from None

    async def go() -> int:
        await ensure_topics(args.bootstrap_servers, {args.events_topic: args.partitions}, security)
        return await publish(
            damaged_records(config),
            bootstrap_servers=args.bootstrap_servers,
            topic=args.events_topic,
            security=security,
            batch_events=args.batch_events,
            speed=args.speed,
        )

    sent = asyncio.run(go())
    get_logger("monitor.simulate").info("simulate_done", events=sent, topic=args.events_topic)
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    import asyncio

    from monitor.jsonl import iter_lines, open_input
    from monitor.pipeline.producer import publish, records_from_lines
    from monitor.pipeline.settings import security_from_args
    from monitor.pipeline.topics import ensure_topics

    _check_inputs(args.inputs)
    try:
        security = security_from_args(args)
    except ValueError as exc:
        raise CliError(str(exc)) from None

    async def go() -> int:
        await ensure_topics(args.bootstrap_servers, {args.events_topic: args.partitions}, security)
        total = 0
        for name in args.inputs:
            with open_input(name) as handle:
                total += await publish(
                    records_from_lines(iter_lines(handle)),
                    bootstrap_servers=args.bootstrap_servers,
                    topic=args.events_topic,
                    security=security,
                    batch_events=args.batch_events,
                )
        return total

    sent = asyncio.run(go())
    get_logger("monitor.publish").info("publish_done", records=sent, topic=args.events_topic)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    import asyncio

    import mode.loop

    from monitor.pipeline.settings import worker_settings_from_args
    from monitor.pipeline.topics import ensure_topics
    from monitor.pipeline.worker import Worker

    try:
        settings = worker_settings_from_args(args)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    # Faust's supported way to pick the event loop; it must happen before any loop exists.
    mode.loop.use(settings.event_loop)
    registry = _load_registry(settings.contracts_file, settings.hours_file)
    asyncio.run(
        ensure_topics(
            settings.bootstrap_servers,
            {
                settings.events_topic: settings.partitions,
                settings.repartition_topic: settings.partitions,
                settings.dlq_topic: settings.partitions,
                settings.outages_topic: settings.partitions,
            },
            settings.security,
        )
    )
    worker = Worker(settings, registry)
    get_logger("monitor.worker").info(
        "worker_starting",
        bootstrap_servers=settings.bootstrap_servers,
        topic=settings.events_topic,
        metrics=f"http://{settings.web_host}:{settings.web_port}/metrics",
    )
    worker.run()
    return 0


def cmd_ingest_asterisk(args: argparse.Namespace) -> int:
    from monitor.adapters.asterisk import AsteriskConverter, parse_actions, zone_or_none
    from monitor.adapters.ingest import KafkaTarget, deliver, events_of, follow, read_items
    from monitor.adapters.queue_map import QueueMapError, load_queue_map
    from monitor.pipeline.settings import security_from_args

    _check_inputs(args.inputs)
    if args.follow and len(args.inputs) != 1:
        raise CliError("--follow reads exactly one --input")
    try:
        queues = load_queue_map(args.queues)
        actions = parse_actions(args.mappings)
        zone = zone_or_none(args.timezone)
        security = security_from_args(args)
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

    return _run_ingest(args, security, produce, "asterisk", converter.stats.as_dict)


def cmd_ingest_connect(args: argparse.Namespace) -> int:
    from monitor.adapters.connect import ConnectConverter, iter_json_documents
    from monitor.adapters.ingest import KafkaTarget, deliver
    from monitor.adapters.queue_map import QueueMapError, load_queue_map
    from monitor.jsonl import open_input
    from monitor.pipeline.settings import security_from_args

    _check_inputs(args.inputs)
    try:
        queues = load_queue_map(args.queues) if args.queues else {}
        security = security_from_args(args)
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

    return _run_ingest(args, security, produce, args.connect_kind, summary)


def _run_ingest(
    args: argparse.Namespace,
    security: Any,
    produce: Callable[[IO[bytes] | None, Any], Awaitable[int]],
    source: str,
    summary: Callable[[], dict[str, Any]],
) -> int:
    """Run an adapter to its sink (JSONL file or Kafka) and report what it did on stderr."""
    import asyncio

    import orjson

    from monitor.adapters.ingest import KafkaTarget
    from monitor.pipeline.topics import ensure_topics

    kafka = None
    if args.sink == "kafka":
        kafka = KafkaTarget(args.bootstrap_servers, args.events_topic, security, args.batch_events)
    out = None if kafka is not None else _open_output(args.output)

    async def go() -> int:
        if kafka is not None:
            await ensure_topics(kafka.bootstrap_servers, {kafka.topic: args.partitions}, security)
        return await produce(out, kafka)

    try:
        sent = asyncio.run(go())
    finally:
        if out is not None and out is not sys.stdout.buffer:
            out.close()
    report = {"sent": sent, **summary()}
    get_logger("monitor.ingest").info("ingest_done", source=source, **report)
    sys.stderr.write(orjson.dumps(report).decode() + "\n")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="monitor",
        description="Medicare call-center compliance monitor "
        "(42 CFR 422.111(h)(1), 423.128(d)(1)).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--log-level", help="DEBUG, INFO, WARNING or ERROR (env MONITOR_LOG_LEVEL)")
    parser.add_argument(
        "--log-format",
        choices=("json", "console", "auto"),
        help="log rendering (env MONITOR_LOG_FORMAT; auto = console on a terminal, else JSON)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

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
    report.add_argument("--contracts", metavar="FILE", help="contract registry CSV")
    from monitor.pipeline.settings import add_outage_arguments

    add_outage_arguments(report)
    report.add_argument("--format", choices=("json", "csv"), default="json")
    report.add_argument("--output", metavar="FILE", help="write here instead of stdout")
    report.add_argument(
        "--rejects", metavar="FILE", help="write rejected lines with reasons (JSONL)"
    )
    report.set_defaults(handler=cmd_report)

    from monitor.pipeline.settings import add_kafka_arguments, add_worker_arguments
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
    add_kafka_arguments(simulate)
    simulate.add_argument("--partitions", type=int, default=8,
                          help="partitions when the topic must be created")  # fmt: skip
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
    add_kafka_arguments(publish)
    publish.add_argument("--partitions", type=int, default=8,
                         help="partitions when the topic must be created")  # fmt: skip
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
    add_kafka_arguments(asterisk)
    asterisk.add_argument("--partitions", type=int, default=8,
                          help="partitions when the topic must be created")  # fmt: skip
    asterisk.add_argument("--batch-events", type=int, default=500)
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
        add_kafka_arguments(connect)
        connect.add_argument("--partitions", type=int, default=8)
        connect.add_argument("--batch-events", type=int, default=500)
        connect.set_defaults(handler=cmd_ingest_connect, connect_kind=name)

    worker = sub.add_parser(
        "worker",
        help="run a streaming worker (Kafka -> figures -> /metrics)",
        description="Consume canonical events from Kafka, keep per-call state and per-contract "
        "figures in changelog-backed tables, and export them on /metrics.",
    )
    add_worker_arguments(worker)
    worker.set_defaults(handler=cmd_worker)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        configure_logging(args.log_level, args.log_format)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        result: int = args.handler(args)
    except CliError as exc:
        print(f"monitor {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    return result


if __name__ == "__main__":
    sys.exit(main())
