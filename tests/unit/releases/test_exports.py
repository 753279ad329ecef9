"""The public surface of kubefox.releases is curated and pinned."""

from __future__ import annotations

from kubefox import releases


def test_releases_all_is_pinned_sorted_and_importable() -> None:
    """Changing the releases API (the fox CLI wraps it) is a conscious edit of this list."""
    assert releases.__all__ == [
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
    assert all(hasattr(releases, name) for name in releases.__all__)
