"""What handlers give back (:class:`Response`) and what dependencies answer (:class:`Reply`).

A handler *returns* its response instead of sending it, unlike upstream's
``Resp().Send*()``: the Kit then turns it into exactly one RESPONSE event, so a
handler can never answer twice or forget to answer without the Kit noticing.
"""

from __future__ import annotations

import dataclasses
import functools
from http import HTTPStatus
from typing import Any

import msgspec

from kubefox.core.errors import InvalidError, UnknownContentTypeError
from kubefox.core.events import VAL_HEADER, VAL_STATUS, VAL_STATUS_CODE, Event
from kubefox.core.values import to_int
from kubefox.kit._headers import first, header_map, lookup, string_lists

_MIN_STATUS = 100
_MAX_STATUS = 599


@functools.lru_cache(maxsize=1024)  # once per response; a few hundred codes exist at most
def status_text(code: int) -> str:
    """``200 OK``: the code and its reason phrase, as upstream's ``status`` value."""
    try:
        return f"{code} {HTTPStatus(code).phrase}"
    except ValueError:
        return str(code)


def is_json(content_type: str) -> bool:
    """``application/json`` or a ``+json`` media type, parameters ignored."""
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def parse_json(content_type: str, content: bytes) -> Any:
    """The JSON document in ``content``.

    Raises:
        UnknownContentTypeError: the content type is not JSON or the content does not parse.
    """
    if not is_json(content_type):
        raise UnknownContentTypeError(f"expected JSON content, got {content_type or 'none'!r}")
    try:
        return msgspec.json.decode(content)
    except msgspec.DecodeError as exc:
        raise UnknownContentTypeError(f"content is not valid JSON: {exc}") from exc


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Response:
    """What a handler returns: the status, headers and body of its answer.

    Build one with the :class:`~kubefox.kit.Kontext` helpers (``k.text(...)``,
    ``k.json(...)``, ``k.accepts(...)``...) or directly.

    Attributes:
        status: HTTP status code (100-599).
        headers: Response headers; keys are put in canonical form (``Content-Type``).
        content_type: Media type of ``content``.
        content: The body.

    Raises:
        InvalidError: if ``status`` is outside 100-599.
    """

    status: int = 200
    headers: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    content_type: str = ""
    content: bytes = b""

    def __post_init__(self) -> None:
        if not _MIN_STATUS <= self.status <= _MAX_STATUS:
            raise InvalidError(f"status {self.status} is outside {_MIN_STATUS}-{_MAX_STATUS}")
        if self.headers:
            object.__setattr__(self, "headers", header_map(self.headers))


@dataclasses.dataclass(frozen=True, slots=True)
class Reply:
    """A dependency's answer to :meth:`Kontext.request <kubefox.kit.Kontext.request>`.

    Error replies never become a ``Reply``: they are raised as the error they carry.

    Attributes:
        event: The RESPONSE event as received.
    """

    event: Event

    @property
    def status_code(self) -> int:
        """The HTTP status code (``statusCode`` value); 200 when absent or unreadable."""
        raw = self.event.values.get(VAL_STATUS_CODE)
        if raw is None:
            return 200
        try:
            return to_int(raw)
        except InvalidError:
            return 200

    @property
    def status(self) -> str:
        """The status text, e.g. ``200 OK``."""
        raw = self.event.values.get(VAL_STATUS)
        return raw if isinstance(raw, str) and raw else status_text(self.status_code)

    @property
    def headers(self) -> dict[str, list[str]]:
        """Every header of the reply, canonical names to lists of values."""
        return string_lists(self.event.values.get(VAL_HEADER))

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or ``None``."""
        return first(lookup(self.headers, name))

    @property
    def content_type(self) -> str:
        """The media type of the content."""
        return self.event.content_type

    @property
    def content(self) -> bytes:
        """The body as bytes."""
        return self.event.content

    @property
    def text(self) -> str:
        """The body decoded as UTF-8; undecodable bytes become U+FFFD."""
        return self.event.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON.

        Raises:
            UnknownContentTypeError: the content type is not JSON or the body does not parse.
        """
        return parse_json(self.event.content_type, self.event.content)
