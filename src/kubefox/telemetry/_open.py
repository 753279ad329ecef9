"""Pick a telemetry store backend from a URL: ``sqlite:///path`` or ``postgresql://...``.

Backends are imported only when chosen, so importing ``kubefox.telemetry``
never pulls in asyncpg.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from kubefox.core.errors import InvalidError
from kubefox.telemetry.protocol import Retention, TelemetryStore

#: The store file's name inside a state directory.
DEFAULT_FILENAME = "telemetry.db"


def default_store_url(state_dir: Path | str) -> str:
    """The URL of the default store: ``telemetry.db`` in the platform's state directory."""
    return f"sqlite:///{Path(state_dir).resolve() / DEFAULT_FILENAME}"


def sqlite_path(url: str) -> str:
    """The file a ``sqlite:`` URL names (SQLAlchemy's spelling).

    ``sqlite:///relative/file.db``, ``sqlite:////absolute/file.db`` and
    ``sqlite:///:memory:``. Query parameters are refused.
    """
    parts = urlsplit(url)
    if parts.netloc or parts.query or parts.fragment or not parts.path.startswith("/"):
        raise InvalidError(
            "a sqlite url is sqlite:///<path> (four slashes for an absolute path)", url=url
        )
    path = parts.path[1:]
    if not path:
        raise InvalidError("a sqlite url names a file", url=url)
    return path


async def open_telemetry_store(
    url: str, *, retention: Retention | None = None, poll_interval: float = 0.5
) -> TelemetryStore:
    """Open the telemetry store named by ``url``.

    ``sqlite:///<path>`` is a file (created with its directory if missing);
    ``postgresql://user@host:port/db[?schema=name]`` (or ``postgres://``) keeps
    the tables in ``schema`` (default ``kubefox_telemetry``, created if
    missing); other query parameters go to the PostgreSQL connection.

    Raises:
        InvalidError: the scheme is unknown or the URL malformed.
        UnavailableError: the backend cannot be opened or reached.
    """
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        from kubefox.telemetry.sqlite import SQLiteTelemetryStore

        return await SQLiteTelemetryStore.open(
            sqlite_path(url), retention=retention, poll_interval=poll_interval
        )
    if scheme in ("postgresql", "postgres"):
        from kubefox.telemetry.postgres import DEFAULT_SCHEMA, PostgresTelemetryStore

        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        schemas = [value for name, value in query if name == "schema"]
        rest = urlencode([(name, value) for name, value in query if name != "schema"])
        dsn = urlunsplit((parts.scheme, parts.netloc, parts.path, rest, parts.fragment))
        return await PostgresTelemetryStore.connect(
            dsn,
            schema=schemas[-1] if schemas else DEFAULT_SCHEMA,
            retention=retention,
            poll_interval=poll_interval,
        )
    raise InvalidError(f"no telemetry store backend for scheme {scheme!r}", url=url)
