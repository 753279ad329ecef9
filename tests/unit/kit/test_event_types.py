"""User-defined event types: declared with ``kit.event_type``, handled with ``@kit.on``."""

from __future__ import annotations

import pytest

from kubefox.kit import EventType, InvalidError, Kit, Kontext, Response
from kubefox.kit.testing import KitClient


def _kit() -> tuple[Kit, EventType]:
    kit = Kit()
    ping = kit.event_type("com.example.ping")

    @kit.on(ping)
    async def pong(k: Kontext) -> Response:
        return k.text("pong")

    return kit, ping


def test_on_declares_a_type_route_in_the_definition() -> None:
    """``@kit.on(t)`` is route 0 with rule ``Type(`<name>`)``, exported like any route."""
    kit, ping = _kit()

    assert ping == EventType("com.example.ping")
    assert ping.rule == "Type(`com.example.ping`)"
    assert kit.definition()["routes"] == [{"id": 0, "rule": "Type(`com.example.ping`)"}]


@pytest.mark.parametrize(
    "name", ["", "has space", "back`tick", ".leading", "io.kubefox.health", "IO.KubeFox.x"]
)
def test_bad_or_reserved_event_type_names_are_refused(name: str) -> None:
    """Names that cannot sit in a rule, and the platform's ``io.kubefox.*``, fail at import."""
    with pytest.raises(InvalidError):
        Kit().event_type(name)


def test_on_refuses_a_plain_string() -> None:
    """``@kit.on`` takes an EventType, so a typo in a bare string cannot slip through."""
    with pytest.raises(InvalidError, match=r"declare it with kit\.event_type"):
        Kit().on("com.example.ping")  # type: ignore[arg-type]


async def test_kit_client_runs_the_handler_of_an_event_type() -> None:
    """The handler gets a Kontext and answers like any route handler."""
    kit, _ = _kit()
    answer = await KitClient(kit).request("GET", "/", route=0)
    assert answer.status == 200
    assert answer.text == "pong"
