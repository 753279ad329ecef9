"""Parsing of option values and printing of data: durations, tables, ages."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from kubefox.cli.options import parse_duration
from kubefox.cli.output import age, render_table, resource_table
from kubefox.core.errors import InvalidError

NOW = datetime(2024, 2, 1, 16, 24, 21, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90.0), ("30s", 30.0), ("5m", 300.0), ("1h30m", 5400.0), ("500ms", 0.5), ("2.5s", 2.5)],
)
def test_duration_accepts_seconds_and_units(text: str, seconds: float) -> None:
    """--wait takes plain seconds or Go-style units, as upstream's --wait 5m."""
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "forever", "5 m", "-3s", "0", "m5", "5mm"])
def test_duration_refuses_what_is_no_positive_duration(text: str) -> None:
    """A bad duration is an error naming the accepted forms."""
    with pytest.raises(InvalidError, match="not a duration"):
        parse_duration(text)


def test_table_pads_columns_like_kubectl() -> None:
    """Tables are plain text: headers, columns three spaces apart, no trailing blanks."""
    text = render_table(["NAME", "AGE"], [["hello-world-main", "5s"], ["x", None]])

    assert text.splitlines() == [
        "NAME               AGE",
        "hello-world-main   5s",
        "x",
    ]


@pytest.mark.parametrize(
    ("then", "expected"),
    [
        ("2024-02-01T16:24:00Z", "21s"),
        ("2024-02-01T16:00:00+00:00", "24m"),
        ("2024-01-31T16:00:00+00:00", "1d"),
        (None, "<unknown>"),
        ("garbage", "<unknown>"),
    ],
)
def test_age_is_the_largest_whole_unit(then: str | None, expected: str) -> None:
    """AGE reads as kubectl's: seconds, minutes, hours, days."""
    assert age(then, now=NOW) == expected


def test_virtual_environment_table_shows_manifest_and_conditions() -> None:
    """fox get ve shows upstream's printer columns, the manifest included."""
    ve = {
        "metadata": {"name": "prod"},
        "spec": {"environment": "prod"},
        "status": {
            "activeRelease": {"id": "1", "releaseManifest": "prod-12-20240201-162421"},
            "conditions": [
                {"type": "ActiveReleaseAvailable", "status": "True", "reason": "ContextAvailable"},
                {"type": "ReleasePending", "status": "False", "reason": "ReleaseActivated"},
            ],
        },
    }

    header, row = resource_table("VirtualEnvironment", [ve]).splitlines()

    assert header.split() == [
        "NAME", "ENVIRONMENT", "MANIFEST", "AVAILABLE", "REASON", "PENDING", "PENDING", "REASON",
        "AGE",
    ]  # fmt: skip
    assert row.split() == [
        "prod", "prod", "prod-12-20240201-162421", "True", "ContextAvailable", "False",
        "ReleaseActivated", "<unknown>",
    ]  # fmt: skip


def test_platform_table_shows_effective_event_limits() -> None:
    """Unset event limits show upstream's defaults (30 s, 5242880 bytes)."""
    platform = {"metadata": {"name": "demo"}, "spec": {}}

    row = resource_table("Platform", [platform]).splitlines()[1].split()

    assert row[:5] == ["demo", "30", "5242880", "info", "<unknown>"]
