"""The resource kinds: the ``Resource`` union, kind → model, and kind names users type.

``kind_for`` accepts what ``kubectl``/``fox get`` users type: the kind in any
case, its plural, upstream's short names (``ve``, ``appdep``, ``rm`` ...) and
the fully qualified ``<plural>.kubefox.xigxog.io``.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import TypeAlias

from kubefox.core.errors import InvalidError
from kubefox.resources.adapters import HTTPAdapter
from kubefox.resources.deployments import AppDeployment
from kubefox.resources.environments import Environment, VirtualEnvironment
from kubefox.resources.manifests import ReleaseManifest
from kubefox.resources.platform import Platform

#: Any top-level kubefox resource.
Resource: TypeAlias = (
    AppDeployment | Environment | HTTPAdapter | Platform | ReleaseManifest | VirtualEnvironment
)

#: Kind → model, for every kind kubefox accepts.
RESOURCE_KINDS: MappingProxyType[str, type[Resource]] = MappingProxyType(
    {
        "AppDeployment": AppDeployment,
        "Environment": Environment,
        "HTTPAdapter": HTTPAdapter,
        "Platform": Platform,
        "ReleaseManifest": ReleaseManifest,
        "VirtualEnvironment": VirtualEnvironment,
    }
)

#: Upstream's short names (``kubectl get ve``), by kind.
SHORT_NAMES: MappingProxyType[str, tuple[str, ...]] = MappingProxyType(
    {
        "AppDeployment": ("appdep", "appdeps", "app", "apps"),
        "Environment": ("env", "envs"),
        "HTTPAdapter": ("http", "https"),
        "Platform": (),
        "ReleaseManifest": ("manifest", "manifests", "rm", "rms"),
        "VirtualEnvironment": ("virtenv", "virtenvs", "ve", "ves"),
    }
)

_GROUP_SUFFIX = ".kubefox.xigxog.io"

_BY_NAME: dict[str, str] = {
    name: kind
    for kind in RESOURCE_KINDS
    for name in (kind.lower(), f"{kind.lower()}s", *SHORT_NAMES[kind])
}


def supported_kinds() -> str:
    """The supported kinds as a comma-separated list, for error messages."""
    return ", ".join(sorted(RESOURCE_KINDS))


def kind_for(name: str) -> str:
    """The kind ``name`` refers to: a kind, a plural or a short name, in any case.

    ``kind_for("ve") == kind_for("VirtualEnvironments") == "VirtualEnvironment"``.

    Raises:
        InvalidError: ``name`` is not a kubefox resource kind.
    """
    key = name.strip().lower().removesuffix(_GROUP_SUFFIX)
    kind = _BY_NAME.get(key)
    if kind is None:
        raise InvalidError(
            f'unknown resource kind "{name}"; supported kinds: {supported_kinds()}', name=name
        )
    return kind
