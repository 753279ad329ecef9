"""Publishing an app: from a git commit to stored artifacts and an AppDeployment.

:func:`publish` is what ``fox publish`` runs; the rest is exported for the CLI,
the operator (which extracts artifacts) and tests.
"""

from kubefox.publish.definitions import export_definition, parse_definition
from kubefox.publish.hashing import SourceFile, component_files, component_hash
from kubefox.publish.packaging import extract, package, unpack
from kubefox.publish.publisher import (
    ComponentResult,
    Progress,
    PublishResult,
    PublishStatus,
    build_app_deployment,
    create_tag,
    deployment_name_for,
    publish,
)
from kubefox.publish.repo import App, GitRepo, find_app_dir, load_app
from kubefox.publish.snapshot import Component, Snapshot, read_snapshot

__all__ = [
    "App",
    "Component",
    "ComponentResult",
    "GitRepo",
    "Progress",
    "PublishResult",
    "PublishStatus",
    "Snapshot",
    "SourceFile",
    "build_app_deployment",
    "component_files",
    "component_hash",
    "create_tag",
    "deployment_name_for",
    "export_definition",
    "extract",
    "find_app_dir",
    "load_app",
    "package",
    "parse_definition",
    "publish",
    "read_snapshot",
    "unpack",
]
