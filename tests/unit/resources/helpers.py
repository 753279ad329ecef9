"""Builders shared by the resource tests (a plain module, never a conftest)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kubefox.resources import AppDeployment, parse_resource

UPSTREAM = Path(__file__).parents[2] / "data" / "upstream"

COMMIT = "0123456789abcdef0123456789abcdef01234567"
BACKEND_HASH = "3fbfcb274c2116d4d82271da41074135"
FRONTEND_HASH = "9c1b7b9b3f0e4e0e8a8a1d2c3b4a5f60"


def hello_world_document(**spec: Any) -> dict[str, Any]:
    """The hello-world AppDeployment of upstream's docs, as a mapping."""
    return {
        "apiVersion": "kubefox.xigxog.io/v1alpha1",
        "kind": "AppDeployment",
        "metadata": {"name": "hello-world-main", "generation": 1},
        "spec": {
            "appName": "hello-world",
            "commit": COMMIT,
            "commitTime": "2024-02-01T16:24:21Z",
            "branch": "main",
            "components": {
                "backend": {
                    "type": "KubeFox",
                    "defaultHandler": True,
                    "envVarSchema": {"who": {"required": True}},
                    "hash": BACKEND_HASH,
                },
                "frontend": {
                    "type": "KubeFox",
                    "dependencies": {"backend": {"type": "KubeFox"}},
                    "routes": [
                        {
                            "id": 0,
                            "rule": "Path(`/{{.Vars.subPath}}/hello`)",
                            "envVarSchema": {"subPath": {"required": True}},
                        }
                    ],
                    "hash": FRONTEND_HASH,
                },
            },
            **spec,
        },
    }


def hello_world() -> AppDeployment:
    """The hello-world AppDeployment as a model."""
    resource = parse_resource(hello_world_document())
    assert isinstance(resource, AppDeployment)
    return resource
