"""The contract registry: contract id -> parent organization and IANA time zone.

CSV with header ``contract_id,parent_org,timezone``; extra columns (``name``, ...) are allowed
and ignored. Every problem is reported with the file, the line and what is wrong.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from monitor.engine.csvtable import read_table_text, table_rows
from monitor.engine.hours import OperatingHours
from monitor.engine.validation import CONTRACT_ID_PATTERN

DEFAULT_TIMEZONE = "America/New_York"
REQUIRED_COLUMNS = ("contract_id", "parent_org", "timezone")


class RegistryError(ValueError):
    """The registry file cannot be used; the message names the file, line and problem."""


@dataclass(frozen=True, slots=True)
class Contract:
    contract_id: str
    parent_org: str | None
    timezone: str


def load_zone(name: str) -> ZoneInfo:
    """An IANA zone by name, raising ``ValueError`` with a readable message."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown IANA time zone {name!r}") from exc


class ContractRegistry(Mapping[str, Contract]):
    """Known contracts; unknown ones get the default zone and no parent organization."""

    def __init__(
        self, contracts: Iterable[Contract] = (), hours: OperatingHours | None = None
    ) -> None:
        self._contracts: dict[str, Contract] = {c.contract_id: c for c in contracts}
        self._zones: dict[str, ZoneInfo] = {}
        # Required operating hours per (contract, line): the CMS rule unless overridden.
        self.hours = hours if hours is not None else OperatingHours()

    def __getitem__(self, contract_id: str) -> Contract:
        return self._contracts[contract_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._contracts)

    def __len__(self) -> int:
        return len(self._contracts)

    def contract(self, contract_id: str) -> Contract:
        found = self._contracts.get(contract_id)
        return found if found is not None else Contract(contract_id, None, DEFAULT_TIMEZONE)

    def timezone_name(self, contract_id: str) -> str:
        return self.contract(contract_id).timezone

    def zone(self, contract_id: str) -> ZoneInfo:
        name = self.timezone_name(contract_id)
        zone = self._zones.get(name)
        if zone is None:
            zone = self._zones[name] = load_zone(name)
        return zone

    def in_required_hours(self, contract_id: str, line: str, ts_ms: int) -> bool:
        """Whether the line must be answering calls at that instant."""
        schedule = self.hours.schedule(contract_id, line)
        return self.hours.is_required(self.zone(contract_id), schedule, ts_ms)

    def parent_org(self, contract_id: str) -> str | None:
        return self.contract(contract_id).parent_org

    @classmethod
    def from_csv(cls, path: str | Path, hours: OperatingHours | None = None) -> ContractRegistry:
        path = Path(path)
        text = read_table_text(path, "contract registry", RegistryError)
        return cls(parse_registry_rows(text.splitlines(), str(path)), hours)


def parse_registry_rows(lines: Iterable[str], source: str) -> list[Contract]:
    contracts: list[Contract] = []
    seen: dict[str, int] = {}
    for line_no, row in table_rows(lines, source, REQUIRED_COLUMNS, RegistryError):
        contract_id = row["contract_id"]
        parent_org = row["parent_org"] or None
        timezone = row["timezone"]
        if CONTRACT_ID_PATTERN.fullmatch(contract_id) is None:
            raise RegistryError(
                f"{source}:{line_no}: contract_id {contract_id!r} does not match "
                "^[HRSEFX9][0-9]{4}$"
            )
        if contract_id in seen:
            raise RegistryError(
                f"{source}:{line_no}: contract {contract_id} already listed on line "
                f"{seen[contract_id]}"
            )
        if not timezone:
            raise RegistryError(f"{source}:{line_no}: timezone is empty for {contract_id}")
        try:
            load_zone(timezone)
        except ValueError as exc:
            raise RegistryError(f"{source}:{line_no}: {exc} for {contract_id}") from None
        seen[contract_id] = line_no
        contracts.append(Contract(contract_id, parent_org, timezone))
    return contracts
