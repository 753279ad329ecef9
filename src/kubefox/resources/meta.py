"""What every resource shares: the model base, ``metadata``, object references.

Every model here and in the sibling modules derives from :class:`KubeFoxModel`,
which fixes three choices once:

* field names are snake_case in Python and upstream's camelCase on the wire
  (``populate_by_name`` lets Python callers use either);
* unknown fields are rejected, because a misspelt key in a resource file must
  not silently fall back to a default; ``metadata`` is the exception and keeps
  Kubernetes' tolerance (unknown metadata fields are accepted and dropped), so
  objects read back from a cluster still load;
* empty optional collections are left out of dumps, as Go's ``omitempty`` does
  upstream, so ``dump(load(x))`` stays close to what a user wrote.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Final

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    model_serializer,
)
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError

#: The one API group/version of every kubefox resource, as upstream.
API_VERSION: Final = "kubefox.xigxog.io/v1alpha1"

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_EMPTY: tuple[object, ...] = ({}, [])


def check_dns_label(value: str) -> str:
    """Return ``value`` if it is an RFC 1123 DNS label, else raise a validation error.

    Resource, app and component names end up in Kubernetes object names and
    NATS subjects, so they are held to the strictest rule of either.
    """
    if len(value) > 63 or not _DNS_LABEL.match(value):
        raise PydanticCustomError(
            "dns_label",
            "\"{value}\" is not a DNS label: use at most 63 lowercase letters, digits or '-', "
            "starting and ending with a letter or digit",
            {"value": value},
        )
    return value


#: A string that must be a DNS label (see :func:`check_dns_label`).
DNSLabel = Annotated[str, AfterValidator(check_dns_label)]


class KubeFoxModel(BaseModel):
    """Base of every resource model: camelCase aliases, unknown fields rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
    )

    @model_serializer(mode="wrap")
    def _omit_empty(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> Any:
        # Go's omitempty: a defaulted collection or sub-object that is empty is
        # not worth a key. Values inside maps (vars, labels) are never touched.
        dumped = handler(self)
        if not isinstance(dumped, dict):
            return dumped
        for name, field in type(self).model_fields.items():
            if field.default_factory is None:
                continue
            key = (field.alias or name) if info.by_alias else name
            if key in dumped and dumped[key] in _EMPTY:
                del dumped[key]
        return dumped


class OwnerReference(KubeFoxModel):
    """A Kubernetes owner reference; tolerant of unknown fields like all metadata."""

    model_config = ConfigDict(extra="ignore")

    api_version: str
    kind: str
    name: str
    uid: str
    controller: bool | None = None
    block_owner_deletion: bool | None = None


class ObjectMeta(KubeFoxModel):
    """``metadata`` of a resource.

    Unknown fields (``managedFields``, ``selfLink`` ...) are accepted and
    dropped: they are Kubernetes bookkeeping that kubefox never reads.
    """

    model_config = ConfigDict(extra="ignore")

    name: DNSLabel
    namespace: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    uid: str | None = None
    resource_version: str | None = None
    generation: int | None = Field(default=None, ge=0)
    creation_timestamp: datetime | None = None
    finalizers: list[str] = Field(default_factory=list)
    owner_references: list[OwnerReference] = Field(default_factory=list)


class ObjectRef(KubeFoxModel):
    """Exactly which version of an object a ReleaseManifest captured."""

    namespace: str | None = None
    name: DNSLabel
    uid: str
    resource_version: str
    generation: int = Field(ge=0)


class Details(KubeFoxModel):
    """Human documentation of a resource or one of its parts; never interpreted."""

    title: str | None = None
    description: str | None = None
