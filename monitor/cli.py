"""The ``monitor`` command line: a thin shell over the engine and the pipeline."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from monitor import __version__
from monitor.engine import ContractRegistry, RegistryError
from monitor.logs import configure_logging, get_logger

EXIT_USAGE = 2


class CliError(Exception):
    """A user-facing error: printed as one line, exit status 2."""


def _load_registry(path: str | None) -> ContractRegistry:
    if path is None:
        return ContractRegistry()
    try:
        return ContractRegistry.from_csv(path)
    except RegistryError as exc:
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
    registry = _load_registry(args.contracts)
    rejects_stream = _open_output(args.rejects) if args.rejects else None
    try:
        on_reject = RejectsWriter(rejects_stream) if rejects_stream else None
        try:
            engine = run_report(args.inputs, registry, on_reject)
        except OSError as exc:
            raise CliError(f"cannot read input: {exc}") from None
    finally:
        if rejects_stream is not None and rejects_stream is not sys.stdout.buffer:
            rejects_stream.close()
    body = render_json(engine) if args.format == "json" else render_csv(engine.rows())
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
    out = _open_output(args.output)
    try:
        count = write_events_file(config, out)
    finally:
        if out is not sys.stdout.buffer:
            out.close()
    get_logger("monitor.simulate").info("simulate_done", events=count, output=args.output or "-")
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
    report.add_argument("--format", choices=("json", "csv"), default="json")
    report.add_argument("--output", metavar="FILE", help="write here instead of stdout")
    report.add_argument(
        "--rejects", metavar="FILE", help="write rejected lines with reasons (JSONL)"
    )
    report.set_defaults(handler=cmd_report)

    from monitor.simulator import add_simulate_arguments

    simulate = sub.add_parser(
        "simulate",
        help="generate realistic canonical call events",
        description="Generate canonical call events for contracts from a registry.",
    )
    add_simulate_arguments(simulate)
    simulate.add_argument("--output", metavar="FILE", help="JSONL file (default stdout)")
    simulate.set_defaults(handler=cmd_simulate)
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
