"""The public surface of kubefox.telemetry is pinned: changing it is a conscious edit."""

from __future__ import annotations

import subprocess
import sys

from kubefox import telemetry


def test_telemetry_exports_exactly_the_pinned_names() -> None:
    """__all__ is sorted (ruff's order), importable, and exactly this list."""
    names = telemetry.__all__

    assert names == sorted(names, key=lambda n: (not n.isupper(), not n[:1].isupper(), n))
    assert all(hasattr(telemetry, name) for name in names)
    assert names == [
        "LogRecord",
        "Retention",
        "SpanEvent",
        "SpanKind",
        "SpanRecord",
        "StatusCode",
        "TelemetrySettings",
        "TelemetryStore",
        "Trace",
        "default_store_url",
        "open_telemetry_store",
    ]


def test_importing_the_package_pulls_in_no_sdk_and_no_driver() -> None:
    """A component importing kubefox.telemetry pays for no SDK, no driver, not even sqlite3."""
    probe = (
        "import sys, kubefox.telemetry; "
        "print(sorted(m for m in ('asyncpg', 'opentelemetry', 'rich', 'pydantic', 'uvicorn') "
        "if m in sys.modules)); print('sqlite3' in sys.modules)"
    )

    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )

    assert result.stdout.split() == ["[]", "False"]
