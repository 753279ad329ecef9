"""Variables and secrets (``data``) of Environments, VirtualEnvironments and manifests.

Values are upstream's loosely typed ``Val`` and are checked with
:func:`kubefox.core.values.check_value`, one value at a time, so that a file
with several bad values reports each of them at its own JSON path
(``$.data.vars.tags[1]``) instead of only the first.

Layering (:func:`merge_data`) lives here too: it is the one rule that turns an
Environment's data and a VirtualEnvironment's overrides into what a request sees.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field, PlainValidator, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from kubefox.core.errors import InvalidError
from kubefox.core.values import Value, check_value
from kubefox.resources.meta import Details, KubeFoxModel

_STEP = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]")


def _relative_loc(path: str) -> tuple[str | int, ...] | None:
    """``$.key[1]`` as ``("key", 1)``; ``None`` if the path does not read back."""
    rest = path.removeprefix("$")
    loc: list[str | int] = []
    pos = 0
    while pos < len(rest):
        step = _STEP.match(rest, pos)
        if step is None:
            return None
        loc.append(step[1] if step[1] is not None else int(step[2]))
        pos = step.end()
    return tuple(loc)


def _check_var(raw: object) -> Value:
    try:
        return check_value(raw, path="$")
    except InvalidError as exc:
        where = str(exc.details.get("path", "$"))
        problem = exc.cause.removeprefix(f"{where}: ")
        loc = _relative_loc(where)
        if loc is None:
            loc, problem = (), f"{problem} (at {where})"
        error = PydanticCustomError("invalid_value", problem)
        # A ValidationError raised inside a validator is merged into the outer
        # one with its loc appended, which is how the element path survives.
        raise ValidationError.from_exception_data(
            "Value", [InitErrorDetails(type=error, loc=loc, input=raw)]
        ) from exc


#: A variable or secret value (see :mod:`kubefox.core.values`).
DataValue = Annotated[Value, PlainValidator(_check_var)]


class Data(KubeFoxModel):
    """``{vars, secrets}``: named values a request's context resolves against.

    Components only ever receive vars (and only those they declare); secrets
    are usable only inside HTTPAdapter URL and header templates.
    """

    vars: dict[str, DataValue] = Field(default_factory=dict)
    secrets: dict[str, DataValue] = Field(default_factory=dict)


class DataDetails(KubeFoxModel):
    """Documentation of a data set and of each of its vars and secrets."""

    title: str | None = None
    description: str | None = None
    vars: dict[str, Details] = Field(default_factory=dict)
    secrets: dict[str, Details] = Field(default_factory=dict)


def merge_data(env: Data, ve: Data | None) -> Data:
    """The data a VirtualEnvironment's requests see: its own over its Environment's.

    The VirtualEnvironment's values win key by key; vars and secrets are
    layered independently. A key the VirtualEnvironment sets to ``null`` stays
    ``null`` (it shadows the Environment's value), as upstream's ``Data.Import``.

    Args:
        env: the Environment's data.
        ve: the VirtualEnvironment's data, or ``None`` if it has none.
    """
    if ve is None:
        return env.model_copy(deep=True)
    return Data.model_validate(
        {"vars": {**env.vars, **ve.vars}, "secrets": {**env.secrets, **ve.secrets}}
    )
