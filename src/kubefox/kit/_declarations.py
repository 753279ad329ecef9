"""What a component declares before it starts: env vars, dependencies and routes.

These declarations are the component's contract with the platform. They are
exported as upstream's ``ComponentDefinition`` (``--export``), stored with the
AppDeployment, and enforced by the broker: a component only gets the env vars
it declared and may only call the dependencies it declared. Mistakes here are
found at import time, when the decorator runs, not when the first event comes.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from kubefox.core import routes
from kubefox.core.errors import InvalidError
from kubefox.core.events import TYPE_HTTP, TYPE_KUBEFOX, ComponentType
from kubefox.core.values import EnvVarType

if TYPE_CHECKING:
    from kubefox.kit._kontext import Kontext
    from kubefox.kit._messages import Response

#: A route or default handler: an async function of the request's Kontext.
Handler = Callable[["Kontext"], Awaitable["Response"]]

_ENV_VAR_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_COMPONENT_RE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
# Reverse-DNS style, as CloudEvents types: ``com.example.ping``.
_EVENT_TYPE_RE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,251}[A-Za-z0-9])?")
#: Event types the platform owns; users cannot declare types under this prefix.
RESERVED_EVENT_TYPE_PREFIX = "io.kubefox."
# Any value that fills a path segment, header or query value, to check a rule's shape.
_PLACEHOLDER = "kubefox"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class EnvVar:
    """An env var the component declared with :meth:`Kit.env_var <kubefox.kit.Kit.env_var>`.

    Pass it to :meth:`Kontext.env <kubefox.kit.Kontext.env>` to read its value.

    Attributes:
        name: The variable's name in the virtual environment's data.
        type: The declared type, or ``None`` for any.
        required: Whether a deployment is refused when the variable has no value.
    """

    name: str
    type: EnvVarType | None = None
    required: bool = False

    def schema(self) -> dict[str, Any]:
        """The ``envVarSchema`` entry: ``{"type"?, "required"}``."""
        spec: dict[str, Any] = {}
        if self.type is not None:
            spec["type"] = str(self.type)
        spec["required"] = self.required
        return spec


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Dependency:
    """A component or adapter this component may send requests to.

    Declared with :meth:`Kit.component <kubefox.kit.Kit.component>` or
    :meth:`Kit.http_adapter <kubefox.kit.Kit.http_adapter>`; pass it to
    :meth:`Kontext.request <kubefox.kit.Kontext.request>`.

    Attributes:
        name: The dependency's component or adapter name.
        type: ``KubeFox`` for components, ``HTTPAdapter`` for HTTP adapters.
    """

    name: str
    type: ComponentType = ComponentType.KUBEFOX

    @property
    def event_type(self) -> str:
        """The type of the events sent to it: ``io.kubefox.http`` for adapters."""
        return TYPE_HTTP if self.type == ComponentType.HTTP_ADAPTER else TYPE_KUBEFOX


@dataclasses.dataclass(frozen=True, slots=True)
class EventType:
    """A user-defined event type declared with :meth:`Kit.event_type <kubefox.kit.Kit.event_type>`.

    Register a handler for it with :meth:`Kit.on <kubefox.kit.Kit.on>`; send
    one through httpsrv with ``kf-type=<name>`` (or ``fox test send``).
    """

    name: str

    @property
    def rule(self) -> str:
        """The route rule matching events of this type: ``Type(`<name>`)``."""
        return f"Type(`{self.name}`)"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class RouteSpec:
    """One declared route: its id, rule, the variables its rule uses and its handler."""

    id: int
    rule: str
    env_vars: tuple[str, ...]
    handler: Handler

    def spec(self) -> dict[str, Any]:
        """The ``routes[]`` entry of the component definition."""
        spec: dict[str, Any] = {"id": self.id, "rule": self.rule}
        if self.env_vars:
            spec["envVarSchema"] = {name: {"required": True} for name in self.env_vars}
        return spec


def check_rule(rule: str) -> tuple[str, ...]:
    """The variables ``rule`` uses, after checking that it parses once resolved.

    Raises:
        RouteInvalidError: the rule does not parse, a template is malformed, or
            it names a secret (secrets are never part of a route).
    """
    names = routes.template_vars(rule)
    routes.resolve(rule, dict.fromkeys(names, _PLACEHOLDER))
    return tuple(names)


def check_env_var_name(name: str) -> str:
    """``name`` if it can be an env var name, else raise.

    Raises:
        InvalidError: the name is empty or not an identifier (hyphens allowed).
    """
    if not _ENV_VAR_RE.fullmatch(name):
        raise InvalidError(f"env var name {name!r} must match {_ENV_VAR_RE.pattern}")
    return name


def check_component_name(name: str) -> str:
    """``name`` if it can be a component or adapter name, else raise.

    Raises:
        InvalidError: the name is not a lowercase DNS label.
    """
    if not _COMPONENT_RE.fullmatch(name):
        raise InvalidError(
            f"dependency name {name!r} must be a lowercase DNS label ([a-z0-9-], at most 63)"
        )
    return name


def check_event_type_name(name: str) -> str:
    """``name`` if it can be a user-defined event type, else raise.

    Raises:
        InvalidError: the name is not reverse-DNS-like (letters, digits, ``.``,
            ``_``, ``-``; at most 253) or lies under the reserved ``io.kubefox.``.
    """
    if not _EVENT_TYPE_RE.fullmatch(name):
        raise InvalidError(
            f"event type {name!r} must be letters, digits, '.', '_' or '-' (at most 253), "
            "e.g. com.example.ping"
        )
    if name.lower().startswith(RESERVED_EVENT_TYPE_PREFIX):
        raise InvalidError(f"event type {name!r} is reserved: io.kubefox.* belongs to the platform")
    return name
