"""Simulation settings and scenarios."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from datetime import UTC, datetime

from monitor.engine import Contract, ContractRegistry


@dataclass(frozen=True, slots=True)
class Scenario:
    """Odds and durations that shape a call's path."""

    name: str
    load_factor: float  # multiplies calls per hour
    mean_hold_s: float  # mean wait in the queue before a live person answers
    patience_s: float  # mean time a caller waits before hanging up
    disconnect_prob: float  # chance the call is dropped unexpectedly
    no_answer: bool = False  # nobody answers at all (an outage)


SCENARIOS: dict[str, Scenario] = {
    "normal": Scenario("normal", 1.0, mean_hold_s=18, patience_s=600, disconnect_prob=0.01),
    # Staff shortage after a typhoon: long holds, many abandons, more drops.
    "typhoon": Scenario("typhoon", 1.3, mean_hold_s=210, patience_s=300, disconnect_prob=0.08),
    # Enrollment surge: twice the calls, holds creep past the limit.
    "surge": Scenario("surge", 2.0, mean_hold_s=95, patience_s=420, disconnect_prob=0.03),
    # Technology failure: calls reach the IVR and are dropped or never answered.
    "outage": Scenario(
        "outage", 1.0, mean_hold_s=0, patience_s=240, disconnect_prob=0.6, no_answer=True
    ),
}

DEFAULT_LINES = (
    ("member_services", 0.8),
    ("pharmacy_help_desk", 0.1),
    ("prospective_enrollee", 0.1),
)


def _sample_contracts(count: int) -> list[Contract]:
    zones = (
        "America/New_York",
        "America/Chicago",
        "America/Denver",
        "America/Los_Angeles",
        "America/Phoenix",
        "Pacific/Honolulu",
        "America/Anchorage",
        "America/Puerto_Rico",
    )
    letters = "HHHHRSSE"
    return [
        Contract(
            f"{letters[i % len(letters)]}{1000 + i:04d}",
            f"Parent Org {i % 7 + 1}",
            zones[i % len(zones)],
        )
        for i in range(count)
    ]


@dataclass(frozen=True, slots=True)
class SimulationConfig:
    contracts: tuple[Contract, ...]
    start_ms: int
    hours: float
    calls_per_hour: float  # per contract, at the local peak hour
    scenario: Scenario
    seed: int = 1
    max_events: int | None = None
    duplicate_rate: float = 0.0
    reorder_rate: float = 0.0
    malformed_rate: float = 0.0
    lines: tuple[tuple[str, float], ...] = field(default=DEFAULT_LINES)

    def __post_init__(self) -> None:
        if not self.contracts:
            raise ValueError("no contracts to simulate")
        if self.hours <= 0:
            raise ValueError("--hours must be positive")
        if self.calls_per_hour <= 0:
            raise ValueError("--calls-per-hour must be positive")
        for name in ("duplicate_rate", "reorder_rate", "malformed_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 0.5:
                raise ValueError(f"--{name.replace('_', '-')} must lie in [0, 0.5], got {value}")

    @classmethod
    def from_args(cls, args: argparse.Namespace, registry: ContractRegistry) -> SimulationConfig:
        if args.contract_count < 0:
            raise ValueError("--contract-count must not be negative")
        if len(registry):
            contracts = tuple(registry[c] for c in registry)
            if args.contract_count:
                contracts = contracts[: args.contract_count]
        else:
            contracts = tuple(_sample_contracts(args.contract_count or 12))
        try:
            start = datetime.fromisoformat(args.start)
        except ValueError:
            raise ValueError(f"--start {args.start!r} is not an ISO date or date-time") from None
        if start.tzinfo is None:
            start = start.replace(tzinfo=UTC)
        return cls(
            contracts=contracts,
            start_ms=int(start.timestamp() * 1000),
            hours=args.hours,
            calls_per_hour=args.calls_per_hour,
            scenario=SCENARIOS[args.scenario],
            seed=args.seed,
            max_events=args.events,
            duplicate_rate=args.duplicate_rate,
            reorder_rate=args.reorder_rate,
            malformed_rate=args.malformed_rate,
        )


def add_simulate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--contracts", metavar="FILE", help="contract registry CSV (default: synthetic contracts)"
    )
    parser.add_argument(
        "--contract-count",
        type=int,
        default=0,
        help="number of synthetic contracts (or the first N of the registry); "
        "default 12 when no registry is given",
    )
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="normal")
    parser.add_argument(
        "--start",
        default="2026-01-05T05:00:00+00:00",
        help="first instant simulated, ISO 8601 (default %(default)s)",
    )
    parser.add_argument("--hours", type=float, default=24.0, help="hours simulated")
    parser.add_argument(
        "--calls-per-hour",
        type=float,
        default=120.0,
        help="calls per contract in its busiest local hour",
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed (repeatable output)")
    parser.add_argument("--events", type=int, help="stop after this many events")
    parser.add_argument(
        "--duplicate-rate", type=float, default=0.0, help="share of events delivered twice"
    )
    parser.add_argument(
        "--reorder-rate",
        type=float,
        default=0.0,
        help="share of events delivered late, after later events",
    )
    parser.add_argument(
        "--malformed-rate",
        type=float,
        default=0.0,
        help="share of records replaced by malformed ones",
    )
