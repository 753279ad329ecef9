"""The public surface of kubefox.kit is pinned: changing it is a conscious edit."""

from __future__ import annotations

import subprocess
import sys

import kubefox.kit

PUBLIC = [
    "BrokerMismatchError",
    "BrokerUnavailableError",
    "ComponentGoneError",
    "ComponentMismatchError",
    "ConflictError",
    "ContentTooLargeError",
    "DeadlineExceededError",
    "Dependency",
    "EnvVar",
    "EnvVarType",
    "EventType",
    "Handler",
    "InvalidError",
    "Kit",
    "KitSettings",
    "Kontext",
    "KubeFoxError",
    "NotFoundError",
    "PortUnavailableError",
    "Receiver",
    "Reply",
    "Response",
    "RouteInvalidError",
    "RouteNotFoundError",
    "Transport",
    "UnauthorizedError",
    "UnavailableError",
    "UnknownContentTypeError",
    "UnsupportedAdapterError",
    "Value",
]


def test_exported_names_are_pinned() -> None:
    """``__all__`` is exactly the pinned list, sorted."""
    assert kubefox.kit.__all__ == PUBLIC
    assert sorted(kubefox.kit.__all__) == kubefox.kit.__all__


def test_every_exported_name_exists() -> None:
    """Every name in ``__all__`` can be imported from the package."""
    for name in kubefox.kit.__all__:
        assert getattr(kubefox.kit, name) is not None


def test_importing_the_kit_does_not_import_nats() -> None:
    """The NATS adapter loads only when a Kit runs, so ``--export`` and tests stay light."""
    code = "import sys, kubefox.kit; print('nats' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )

    assert result.stdout.strip() == "False"
