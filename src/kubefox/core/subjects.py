"""Every NATS subject and queue group name kubefox uses, built in this one module.

The layout (DESIGN.md §3) is shaped for per-component NATS permissions: a
component instance may subscribe to its own ``cmp`` subject and publish to its
own ``brk`` subject, and nothing else. That only holds if a name can never
smuggle in another subject, so every token is checked: non-empty, printable,
and free of ``.`` (the separator), ``*`` and ``>`` (wildcards) and whitespace
(the protocol's delimiter)::

    kf.<platform>.cmp.<app>.<component>.<hash>             component replicas (queue group)
    kf.<platform>.brk.<app>.<component>.<hash>.<instance>  one instance -> the brokers
    kf.<platform>.brk.>                                    what brokers subscribe to
"""

from __future__ import annotations

from kubefox.core.errors import InvalidError
from kubefox.core.events import Component

#: First token of every kubefox subject.
PREFIX = "kf"
#: Queue group shared by all brokers of a platform on :func:`broker_wildcard`.
BROKER_QUEUE = "kf-brokers"

_COMPONENT = "cmp"
_BROKER = "brk"
_FORBIDDEN = frozenset(".*>")
# kf . platform . brk . app . component . hash . instance
_BROKER_TOKENS = 7


def _token(value: str, what: str) -> str:
    """Return ``value`` if it is safe as one subject token, else raise naming it."""
    if not value:
        raise InvalidError(f"{what} must not be empty", token=value, field=what)
    for char in value:
        if char in _FORBIDDEN or char.isspace() or not char.isprintable():
            raise InvalidError(
                f"{what} {value!r} must not contain {char!r}", token=value, field=what
            )
    return value


def component(platform: str, app: str, name: str, hash: str) -> str:
    """``kf.<platform>.cmp.<app>.<component>.<hash>``: where a component's replicas listen.

    Raises:
        InvalidError: if a part is empty or could alter the subject.
    """
    return ".".join(
        (
            PREFIX,
            _token(platform, "platform"),
            _COMPONENT,
            _token(app, "app"),
            _token(name, "component name"),
            _token(hash, "component hash"),
        )
    )


def component_queue(platform: str, app: str, name: str, hash: str) -> str:
    """The queue group the replicas of one component version share on :func:`component`.

    A queue group is scoped to its subject, so the name only has to be stable
    and readable; it is ``<app>-<component>-<hash>``, upstream's group key with
    the full hash.

    Raises:
        InvalidError: if a part is empty or could alter the subject.
    """
    _token(platform, "platform")
    return "-".join(
        (_token(app, "app"), _token(name, "component name"), _token(hash, "component hash"))
    )


def broker(platform: str, app: str, name: str, hash: str, instance: str) -> str:
    """``kf.<platform>.brk.<app>.<component>.<hash>.<instance>``: one instance's outbox.

    Raises:
        InvalidError: if a part is empty or could alter the subject.
    """
    return ".".join(
        (
            PREFIX,
            _token(platform, "platform"),
            _BROKER,
            _token(app, "app"),
            _token(name, "component name"),
            _token(hash, "component hash"),
            _token(instance, "instance id"),
        )
    )


def component_inbox(platform: str, app: str, name: str, hash: str, instance: str) -> str:
    """``_INBOX.<platform>.cmp.<app>.<component>.<hash>.<instance>``: one instance's inbox prefix.

    The instance connects with it as nats-py's ``inbox_prefix``, so its NATS
    credential may allow replies to that prefix only (``kubefox.security.nats_auth``).

    Raises:
        InvalidError: if a part is empty or could alter the subject.
    """
    tokens = broker(platform, app, name, hash, instance).split(".")
    return ".".join(("_INBOX", platform, _COMPONENT, *tokens[3:]))


def broker_wildcard(platform: str) -> str:
    """``kf.<platform>.brk.>``: every instance's outbox, consumed by the brokers.

    Raises:
        InvalidError: if the platform name is empty or could alter the subject.
    """
    return f"{PREFIX}.{_token(platform, 'platform')}.{_BROKER}.>"


def for_component(platform: str, c: Component) -> str:
    """The :func:`component` subject of ``c``'s app, name and hash."""
    return component(platform, c.app, c.name, c.hash)


def for_broker(platform: str, c: Component) -> str:
    """The :func:`broker` subject of instance ``c`` (app, name, hash and id)."""
    return broker(platform, c.app, c.name, c.hash, c.id)


def parse_broker_subject(subject: str, *, platform: str | None = None) -> Component:
    """The identity a :func:`broker` subject names: app, name, hash and instance id.

    The broker compares it with the event's source, so a component can only
    speak for itself. ``type`` and ``broker_id`` are left empty: the subject
    does not carry them.

    Args:
        subject: a subject a message arrived on.
        platform: if given, the subject must belong to this platform.

    Raises:
        InvalidError: if ``subject`` is not exactly a broker subject with valid
            tokens (or names another platform).
    """
    parts = subject.split(".")
    if len(parts) != _BROKER_TOKENS or parts[0] != PREFIX or parts[2] != _BROKER:
        raise InvalidError(
            f"malformed broker subject {subject!r}: "
            "expected kf.<platform>.brk.<app>.<component>.<hash>.<instance>",
            subject=subject,
        )
    _, plat, _, app, name, hash_, instance = parts
    _token(plat, "platform")
    if platform is not None and plat != platform:
        raise InvalidError(
            f"broker subject {subject!r} belongs to platform {plat!r}, not {platform!r}",
            subject=subject,
        )
    return Component(
        app=_token(app, "app"),
        name=_token(name, "component name"),
        hash=_token(hash_, "component hash"),
        id=_token(instance, "instance id"),
    )
