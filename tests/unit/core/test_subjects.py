"""NATS subject names: exact layout, parsing back, and refusal of injected tokens."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from kubefox.core import subjects
from kubefox.core.errors import InvalidError
from kubefox.core.events import Component

HASH = "3fbfcb2a0b1c2d3e4f5a6b7c8d9e0f1a"
BACKEND = Component(type="KubeFox", app="hello-world", name="backend", hash=HASH, id="k2x9q0p1zz")

BAD_TOKENS = ["", "a.b", "*", ">", "a b", " a", "a\tb", "a\nb", "a\rb", "a\x00b", "a\u00a0b"]


def test_component_subject_has_the_documented_layout() -> None:
    """``kf.<platform>.cmp.<app>.<component>.<hash>``."""
    subject = subjects.component("dev", "hello-world", "backend", HASH)

    assert subject == f"kf.dev.cmp.hello-world.backend.{HASH}"


def test_component_queue_is_one_per_app_component_and_hash() -> None:
    """Replicas of one version share a queue group named after app, component and hash."""
    queue = subjects.component_queue("dev", "hello-world", "backend", HASH)

    assert queue == f"hello-world-backend-{HASH}"
    assert queue != subjects.component_queue("dev", "hello-world", "backend", "other")


def test_broker_subject_has_the_documented_layout() -> None:
    """``kf.<platform>.brk.<app>.<component>.<hash>.<instance>``."""
    subject = subjects.broker("dev", "hello-world", "backend", HASH, "k2x9q0p1zz")

    assert subject == f"kf.dev.brk.hello-world.backend.{HASH}.k2x9q0p1zz"


def test_broker_wildcard_covers_every_instance_subject() -> None:
    """Brokers subscribe to ``kf.<platform>.brk.>`` in one shared queue group."""
    wildcard = subjects.broker_wildcard("dev")

    assert wildcard == "kf.dev.brk.>"
    assert subjects.broker("dev", "a", "b", "c", "d").startswith(wildcard[:-1])
    assert subjects.BROKER_QUEUE == "kf-brokers"


def test_for_component_uses_app_name_and_hash() -> None:
    """The convenience form equals the explicit one and ignores the instance id."""
    subject = subjects.for_component("dev", BACKEND)

    assert subject == subjects.component("dev", "hello-world", "backend", HASH)


def test_for_broker_uses_the_instance_id() -> None:
    """The instance's outbox subject ends with its id."""
    subject = subjects.for_broker("dev", BACKEND)

    assert subject == f"kf.dev.brk.hello-world.backend.{HASH}.k2x9q0p1zz"


def test_parse_broker_subject_round_trips() -> None:
    """Parsing a built broker subject gives back app, name, hash and instance id."""
    subject = subjects.for_broker("dev", BACKEND)

    identity = subjects.parse_broker_subject(subject, platform="dev")

    assert identity == Component(app="hello-world", name="backend", hash=HASH, id="k2x9q0p1zz")


def test_parse_broker_subject_checks_the_platform() -> None:
    """A subject of another platform is refused when the platform is given."""
    subject = subjects.for_broker("prod", BACKEND)

    with pytest.raises(InvalidError, match="belongs to platform 'prod', not 'dev'"):
        subjects.parse_broker_subject(subject, platform="dev")


@pytest.mark.parametrize(
    "subject",
    [
        "",
        "kf",
        "kf.dev.brk.>",
        "kf.dev.brk.app.name.hash",
        "kf.dev.brk.app.name.hash.id.extra",
        "kf.dev.cmp.app.name.hash.id",
        "nats.dev.brk.app.name.hash.id",
        "kf.dev.brk.app..hash.id",
        "kf.dev.brk.app.name.hash.",
        "kf..brk.app.name.hash.id",
        "kf.dev.brk.app.na me.hash.id",
        "kf.dev.brk.app.*.hash.id",
        "kf.dev.brk.app.name.hash.>",
    ],
)
def test_parse_broker_subject_rejects_malformed_subjects(subject: str) -> None:
    """Anything but exactly seven valid tokens in the broker layout is InvalidError."""
    with pytest.raises(InvalidError):
        subjects.parse_broker_subject(subject)


BUILDERS: dict[str, Callable[[str], str]] = {
    "component platform": lambda t: subjects.component(t, "app", "name", "hash"),
    "component app": lambda t: subjects.component("dev", t, "name", "hash"),
    "component name": lambda t: subjects.component("dev", "app", t, "hash"),
    "component hash": lambda t: subjects.component("dev", "app", "name", t),
    "queue app": lambda t: subjects.component_queue("dev", t, "name", "hash"),
    "queue platform": lambda t: subjects.component_queue(t, "app", "name", "hash"),
    "broker app": lambda t: subjects.broker("dev", t, "name", "hash", "id"),
    "broker instance": lambda t: subjects.broker("dev", "app", "name", "hash", t),
    "broker wildcard": subjects.broker_wildcard,
    "for_component": lambda t: subjects.for_component("dev", Component(app=t, name="n", hash="h")),
    "for_broker": lambda t: subjects.for_broker(
        "dev", Component(app="a", name="n", hash="h", id=t)
    ),
}


@pytest.mark.parametrize("token", BAD_TOKENS)
@pytest.mark.parametrize("builder", BUILDERS.values(), ids=BUILDERS.keys())
def test_subject_builders_reject_injected_tokens(builder: Callable[[str], str], token: str) -> None:
    """Empty parts, separators, wildcards, whitespace and control characters are refused."""
    with pytest.raises(InvalidError) as caught:
        builder(token)

    assert caught.value.details["token"] == token


def test_subject_token_error_names_the_token_and_field() -> None:
    """The message says which part was bad and which character broke it."""
    with pytest.raises(InvalidError) as caught:
        subjects.component("dev", "hello.world", "backend", HASH)

    assert str(caught.value) == "invalid: app 'hello.world' must not contain '.'"


def test_subject_token_error_for_empty_token() -> None:
    """An empty part is named as such."""
    with pytest.raises(InvalidError, match=r"^invalid: component hash must not be empty$"):
        subjects.component("dev", "app", "backend", "")
