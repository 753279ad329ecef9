"""Releases: the state machine that activates them, and the API that requests them.

A release is what a VirtualEnvironment serves to requests that name no
``kf-dep``/``kf-ve``. :func:`release` requests one, :func:`wait_released`
waits for the operator to activate it, :func:`history` and :func:`rollback`
look back. :func:`reconcile_release` is the state machine the operator runs.
"""

from kubefox.releases.commands import (
    ReleaseView,
    find_app_deployment,
    history,
    release,
    rollback,
    wait_released,
)
from kubefox.releases.lifecycle import (
    ReleaseInputs,
    ReleaseOutcome,
    Rollback,
    reconcile_release,
    same_release,
)
from kubefox.releases.manifests import build_manifest, manifest_name

__all__ = [
    "ReleaseInputs",
    "ReleaseOutcome",
    "ReleaseView",
    "Rollback",
    "build_manifest",
    "find_app_deployment",
    "history",
    "manifest_name",
    "reconcile_release",
    "release",
    "rollback",
    "same_release",
    "wait_released",
]
