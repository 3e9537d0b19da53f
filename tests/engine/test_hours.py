"""Required operating hours: Federal holidays, the CMS seasons, overrides, time zones."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from monitor.engine import ContractRegistry
from monitor.engine.hours import (
    HoursError,
    OperatingHours,
    Schedule,
    cms_open_day,
    federal_holidays,
)
from monitor.engine.registry import Contract


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def test_federal_holidays_2026_with_observed_days() -> None:
    # 5 U.S.C. 6103; July 4, 2026 is a Saturday: observed Friday July 3.
    assert sorted(federal_holidays(2026)) == [
        date(2026, 1, 1), date(2026, 1, 19), date(2026, 2, 16), date(2026, 5, 25),
        date(2026, 6, 19), date(2026, 7, 3), date(2026, 7, 4), date(2026, 9, 7),
        date(2026, 10, 12), date(2026, 11, 11), date(2026, 11, 26), date(2026, 12, 25),
    ]  # fmt: skip


def test_federal_holidays_2027_weekend_rules() -> None:
    holidays = federal_holidays(2027)
    # Juneteenth and Christmas 2027 fall on Saturdays: observed on the Fridays before;
    # New Year's Day 2028 is a Saturday too: observed Friday Dec 31, 2027.
    assert {date(2027, 6, 18), date(2027, 12, 24), date(2027, 12, 31)} <= set(holidays)
    # Thanksgiving: the fourth Thursday of November.
    assert holidays[date(2027, 11, 25)] == "Thanksgiving Day"
    # Memorial Day: the last Monday of May (May 31 in 2027).
    assert holidays[date(2027, 5, 31)] == "Memorial Day"
    # Juneteenth only exists from 2021.
    assert date(2020, 6, 19) not in federal_holidays(2020)
    assert date(2021, 6, 18) in federal_holidays(2021)  # Saturday 19th, observed Friday


@pytest.mark.parametrize(
    ("day", "open_"),
    [
        (date(2026, 1, 3), True),  # Saturday in Oct-Mar: open every day
        (date(2026, 1, 1), True),  # New Year's Day: Oct-Mar closes only Thanksgiving, Christmas
        (date(2026, 11, 11), True),  # Veterans Day, in the Oct-Mar season
        (date(2026, 11, 26), False),  # Thanksgiving
        (date(2026, 12, 25), False),  # Christmas Day
        (date(2026, 3, 28), True),  # last Saturday of March
        (date(2026, 4, 4), False),  # first Saturday of April
        (date(2026, 4, 1), True),  # Wednesday
        (date(2026, 5, 25), False),  # Memorial Day
        (date(2026, 7, 3), False),  # Independence Day observed
        (date(2026, 7, 6), True),  # Monday after
        (date(2026, 9, 30), True),  # Wednesday, last day of the weekday season
        (date(2026, 10, 3), True),  # Saturday, first weekend of the every-day season
    ],
)
def test_cms_open_days(day: date, open_: bool) -> None:
    assert cms_open_day(day) is open_


def registry(hours: OperatingHours | None = None) -> ContractRegistry:
    contracts = [Contract("H1001", None, "America/New_York"),
                 Contract("H2002", None, "America/Los_Angeles")]  # fmt: skip
    return ContractRegistry(contracts, hours)


def test_required_hours_are_local_8_to_20_in_each_zone() -> None:
    r = registry()
    # 2026-01-05 (Monday) 13:00Z: 8:00 in New York, 5:00 in Los Angeles.
    assert r.in_required_hours("H1001", "member_services", ms("2026-01-05T13:00:00+00:00"))
    assert not r.in_required_hours("H2002", "member_services", ms("2026-01-05T13:00:00+00:00"))
    assert not r.in_required_hours("H1001", "member_services", ms("2026-01-05T12:59:59+00:00"))
    assert r.in_required_hours("H2002", "member_services", ms("2026-01-05T16:00:00+00:00"))
    # 20:00 local closes: 01:00Z in New York (EST), 04:00Z in Los Angeles (PST).
    assert r.in_required_hours("H1001", "member_services", ms("2026-01-06T00:59:00+00:00"))
    assert not r.in_required_hours("H1001", "member_services", ms("2026-01-06T01:00:00+00:00"))
    assert r.in_required_hours("H2002", "member_services", ms("2026-01-06T03:59:00+00:00"))
    assert not r.in_required_hours("H2002", "member_services", ms("2026-01-06T04:00:00+00:00"))


def test_season_switch_in_two_zones() -> None:
    r = registry()
    # Saturday March 28 (every-day season) vs Saturday April 4 (weekdays only), at local noon
    # (EDT -4, PDT -7).
    for contract, offset in (("H1001", "-04:00"), ("H2002", "-07:00")):
        assert r.in_required_hours(contract, "member_services", ms(f"2026-03-28T12:00:00{offset}"))
        assert not r.in_required_hours(contract, "member_services",
                                       ms(f"2026-04-04T12:00:00{offset}"))  # fmt: skip
        # September 30 (Wednesday) vs Saturday October 3.
        assert r.in_required_hours(contract, "member_services", ms(f"2026-09-30T12:00:00{offset}"))
        assert r.in_required_hours(contract, "member_services", ms(f"2026-10-03T12:00:00{offset}"))
    # At 23:30 on Friday April 3 in Los Angeles it is already Saturday 02:30 in New York: a
    # weekend for one, a closed evening for the other.
    instant = ms("2026-04-04T06:30:00+00:00")
    assert not r.in_required_hours("H1001", "member_services", instant)
    assert not r.in_required_hours("H2002", "member_services", instant)


def test_holiday_is_local() -> None:
    r = registry()
    # Thanksgiving, 2026-11-26: 12:00 local is closed in both zones; the Friday after is open.
    assert not r.in_required_hours("H1001", "member_services", ms("2026-11-26T12:00:00-05:00"))
    assert not r.in_required_hours("H2002", "member_services", ms("2026-11-26T12:00:00-08:00"))
    assert r.in_required_hours("H2002", "member_services", ms("2026-11-27T12:00:00-08:00"))
    # 2026-11-27T03:00Z is 22:00 on Thanksgiving in New York, 19:00 on it in Los Angeles.
    assert not r.in_required_hours("H2002", "member_services", ms("2026-11-27T03:00:00+00:00"))


def test_overrides_from_csv(tmp_path: Path) -> None:
    path = tmp_path / "hours.csv"
    path.write_text(
        "contract_id,line,hours\n*,pharmacy_help_desk,24x7\nH1001,member_services,07:00-22:00\n"
        "H1001,pharmacy_help_desk,cms\n"
    )
    r = registry(OperatingHours.from_csv(path))
    sunday_night = ms("2026-04-05T03:00:00-04:00")  # Sunday 3:00 in April
    assert r.in_required_hours("H2002", "pharmacy_help_desk", sunday_night)
    # A contract's own row wins over "*".
    assert not r.in_required_hours("H1001", "pharmacy_help_desk", sunday_night)
    # A daily window applies every day, weekends and holidays included.
    assert r.in_required_hours("H1001", "member_services", ms("2026-07-04T21:30:00-04:00"))
    assert not r.in_required_hours("H1001", "member_services", ms("2026-07-04T22:00:00-04:00"))
    assert not r.in_required_hours("H2002", "member_services", ms("2026-07-04T12:00:00-07:00"))
    assert str(Schedule.parse("07:00-22:00")) == "07:00-22:00"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("contract_id,line\n", "header lacks column(s) hours"),
        ("contract_id,line,hours\nH1001,member_services,9-5\n", ":2: hours '9-5': expected"),
        ("contract_id,line,hours\nH1001,member_services,20:00-08:00\n", ":2: hours"),
        ("contract_id,line,hours\nX1,member_services,cms\n", ":2: contract_id 'X1'"),
        ("contract_id,line,hours\nH1001,,cms\n", ":2: line is empty"),
        ("contract_id,line,hours\n*,a,cms\n*,a,24x7\n", ":3: *,a already listed on line 2"),
        ("contract_id,line,hours\nH1001,a\n", ":2: expected 3 columns, found 2"),
        ("", "empty file"),
    ],
)
def test_bad_hours_files_name_file_line_and_problem(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "hours.csv"
    path.write_text(text)
    with pytest.raises(HoursError, match=str(path).replace(".", r"\.")) as raised:
        OperatingHours.from_csv(path)
    assert message in str(raised.value)


def test_missing_hours_file() -> None:
    with pytest.raises(HoursError, match="not found"):
        OperatingHours.from_csv("/nonexistent/hours.csv")


def test_midnight_in_utc_does_not_matter() -> None:
    moment = datetime(2026, 1, 6, 0, 30, tzinfo=UTC)  # 19:30 on the 5th in New York
    assert registry().in_required_hours("H1001", "x", int(moment.timestamp() * 1000))
