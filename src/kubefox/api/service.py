"""The control plane's use cases over the resource store: what each endpoint does.

Requests arrive as JSON (or YAML) documents naming a kind the way a user
types it (``ve``, ``appdeployments``, ``VirtualEnvironment``). This module
turns them into typed resources, writes them through
:class:`~kubefox.store.typed.TypedStore` (the one writer that stamps metadata
and, with releases, admits or refuses a change), and hands typed resources
back. It knows nothing about HTTP: errors are ``KubeFoxError`` instances, which the
routes answer as problem documents.

The API serves one namespace, the platform's. A document naming another
namespace is refused rather than silently moved. ``status`` is owned by the
platform (the operator and the release controller): a status in a document
sent here is ignored, as a Kubernetes status subresource is.

Secrets are moved to the secrets backend on every write (see
:mod:`kubefox.store.secrets`): what the API answers, lists and streams shows
``••••••`` for each of them, and an apply whose secret values equal the stored
ones is ``unchanged``.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import AsyncIterator, Mapping
from typing import Any

from kubefox.core.errors import InvalidError, NotFoundError
from kubefox.resources import RESOURCE_KINDS, Resource, dump, kind_for, parse_resource
from kubefox.resources.meta import API_VERSION
from kubefox.security.protocol import SecretsBackend
from kubefox.store.protocol import ResourceStore, WatchKind
from kubefox.store.secrets import ResourceSecrets
from kubefox.store.typed import CLUSTER_KINDS, TypedStore, index_labels

_LABEL_KEY = re.compile(
    r"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
)
_LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?")
_UNVERSIONED = ("metadata", "status", "apiVersion", "kind")


class ApplyResult(enum.StrEnum):
    """What an apply did, in ``kubectl apply``'s words."""

    CREATED = "created"
    CONFIGURED = "configured"
    UNCHANGED = "unchanged"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ResourceList:
    """Resources of one kind and the store revision they were read at."""

    kind: str
    items: list[Resource]
    revision: int


def model_for(kind: str) -> type[Resource]:
    """The model of the kind ``kind`` names (a kind, plural or short name, any case).

    Raises:
        InvalidError: ``kind`` names no kubefox kind.
    """
    return RESOURCE_KINDS[kind_for(kind)]


def parse_label_selector(selector: str | None) -> dict[str, str]:
    """``app.kubernetes.io/name=hello-world,tier=web`` as a mapping (equality only).

    ``==`` is accepted for ``=``, as kubectl does. Set-based selectors and
    ``!=`` are not supported.

    Raises:
        InvalidError: a term is not ``key=value`` with a valid label key and value.
    """
    labels: dict[str, str] = {}
    if selector is None or not selector.strip():
        return labels
    for raw in selector.split(","):
        term = raw.strip()
        key, sep, value = term.partition("==") if "==" in term else term.partition("=")
        key, value = key.strip(), value.strip()
        if (
            not sep
            or "!" in key
            or not _LABEL_KEY.fullmatch(key)
            or len(key.rpartition("/")[2]) > 63
            or not _LABEL_VALUE.fullmatch(value)
            or len(value) > 63
        ):
            raise InvalidError(
                f'bad label selector term "{term}": use key=value terms joined by commas, '
                "e.g. app.kubernetes.io/name=hello-world",
                selector=selector,
                errors=[{"path": "labelSelector", "message": f'bad term "{term}"'}],
            )
        labels[key] = value
    return labels


def _problem(path: str, message: str) -> dict[str, str]:
    return {"path": path, "message": message}


class ResourceService:
    """Create, apply, read, list, delete and watch resources of one namespace."""

    def __init__(
        self,
        store: ResourceStore,
        *,
        namespace: str,
        secrets: SecretsBackend | ResourceSecrets | None = None,
    ) -> None:
        self.store = store
        self.namespace = namespace
        self.typed = TypedStore(store, namespace=namespace, secrets=secrets)

    # -- reading ----------------------------------------------------------------------

    async def get(self, kind: str, name: str) -> Resource:
        """The resource; ``NotFoundError`` if there is none."""
        model = model_for(kind)
        try:
            return await self.typed.get(model, name)
        except NotFoundError:
            raise _not_found(model.__name__, name) from None

    async def list(self, kind: str, *, selector: str | None = None) -> ResourceList:
        """Every resource of ``kind`` whose labels match ``selector``, sorted by name."""
        model = model_for(kind)
        labels = parse_label_selector(selector)
        revision = await self.store.revision()
        items: list[Resource] = list(await self.typed.find(model, labels=labels or None))
        return ResourceList(kind=model.__name__, items=items, revision=revision)

    # -- writing ----------------------------------------------------------------------

    def parse(self, kind: str, body: object, *, name: str | None = None) -> Resource:
        """The resource ``body`` describes, checked against the URL's kind and name.

        ``apiVersion``, ``kind`` and ``metadata.name`` may be left out: the URL
        gives them. ``status`` is dropped.

        Raises:
            InvalidError: with every problem as ``{"path", "message"}``.
        """
        model = model_for(kind)
        expected = model.__name__
        if not isinstance(body, Mapping):
            raise InvalidError(
                f"a {expected} must be a JSON object",
                problems=[_problem("$", "expected an object")],
            )
        document: dict[str, Any] = {str(k): v for k, v in body.items() if k != "status"}
        problems: list[dict[str, str]] = []
        document.setdefault("apiVersion", API_VERSION)
        document.setdefault("kind", expected)
        if document["kind"] != expected:
            problems.append(
                _problem("$.kind", f'"{document["kind"]}" does not match the URL\'s {expected}')
            )
        metadata = document.get("metadata")
        if metadata is None and name is not None:
            metadata = document["metadata"] = {}
        if isinstance(metadata, Mapping):
            metadata = document["metadata"] = dict(metadata)
            if name is not None:
                metadata.setdefault("name", name)
                if metadata["name"] != name:
                    problems.append(
                        _problem(
                            "$.metadata.name",
                            f'"{metadata["name"]}" does not match the name in the URL "{name}"',
                        )
                    )
            namespace = metadata.get("namespace")
            if expected in CLUSTER_KINDS:
                metadata.pop("namespace", None)
            elif namespace not in (None, "", self.namespace):
                problems.append(
                    _problem(
                        "$.metadata.namespace",
                        f'namespace "{namespace}" is not this platform\'s ("{self.namespace}")',
                    )
                )
        if problems:
            raise InvalidError(f"{expected}: {problems[0]['message']}", problems=problems)
        return parse_resource(document)

    async def create(self, kind: str, body: object) -> Resource:
        """Store a new resource; ``ConflictError`` if one of that name exists."""
        return await self.typed.create(self.parse(kind, body))

    async def apply(self, kind: str, name: str, body: object) -> tuple[Resource, ApplyResult]:
        """Create the resource or replace its spec; a write that changes nothing is skipped."""
        resource = self.parse(kind, body, name=name)
        try:
            current = await self.typed.get(type(resource), name)
        except LookupError:
            current = None
        masked, secrets_changed = await self.typed.masked(resource)
        if current is not None and not secrets_changed and _same(current, masked):
            return current, ApplyResult.UNCHANGED
        written = await self.typed.apply(resource)
        return written, ApplyResult.CREATED if current is None else ApplyResult.CONFIGURED

    async def delete(self, kind: str, name: str) -> Resource:
        """Remove the resource and return it as it was; ``NotFoundError`` if there is none."""
        model = model_for(kind)
        current = await self.get(kind, name)
        revision = int(current.metadata.resource_version or 0) or None
        await self.typed.delete(model, name, revision=revision)
        return current

    # -- watching ---------------------------------------------------------------------

    async def watch(
        self, *, kinds: frozenset[str] | None = None, from_revision: int = 0
    ) -> AsyncIterator[dict[str, Any]]:
        """Every change in this namespace (and cluster scope) after ``from_revision``.

        Each change is ``{"type": "PUT"|"DELETE", "revision", "kind", "name",
        "object"}``; ``object`` is the resource for ``PUT`` and ``None`` for
        ``DELETE``. From 0 the current state comes first, as ``PUT`` changes.
        """
        watch = self.store.watch(from_revision=from_revision)
        try:
            async for change in watch:
                key = change.key
                if kinds is not None and key.kind not in kinds:
                    continue
                if key.kind not in CLUSTER_KINDS and key.namespace != self.namespace:
                    continue
                document: dict[str, Any] | None = None
                if change.kind is WatchKind.PUT and change.resource is not None:
                    document = dict(change.resource.body)
                    meta = dict(document.get("metadata") or {})
                    meta["resourceVersion"] = str(change.resource.revision)
                    document["metadata"] = meta
                yield {
                    "type": str(change.kind),
                    "revision": change.revision,
                    "kind": key.kind,
                    "name": key.name,
                    "object": document,
                }
        finally:
            await watch.aclose()


def _not_found(kind: str, name: str) -> NotFoundError:
    return NotFoundError(
        f'{kind} "{name}" not found; list what exists with `fox get {kind.lower()}s`',
        kind=kind,
        name=name,
    )


def _same(current: Resource, new: Resource) -> bool:
    """Whether writing ``new`` over ``current`` would change nothing a user wrote."""
    old_body, new_body = dump(current), dump(new)
    if {k: v for k, v in old_body.items() if k not in _UNVERSIONED} != {
        k: v for k, v in new_body.items() if k not in _UNVERSIONED
    }:
        return False
    old_meta, new_meta = current.metadata, new.metadata
    wanted_labels = {**new_meta.labels, **index_labels(new)}
    return old_meta.labels == wanted_labels and old_meta.annotations == new_meta.annotations
