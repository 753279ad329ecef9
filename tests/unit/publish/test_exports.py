"""The public surface of kubefox.publish is curated: sorted, complete, importable."""

from __future__ import annotations

from kubefox import publish


def test_publish_all_is_sorted_and_importable() -> None:
    """__all__ is sorted (ruff's order) and every name in it exists."""
    names = publish.__all__
    assert names == sorted(names, key=lambda n: (not n.isupper(), not n[:1].isupper(), n))
    assert all(hasattr(publish, name) for name in names)


def test_publish_exports_what_the_cli_and_operator_use() -> None:
    """publish, create_tag and the artifact format are part of the package's API."""
    assert {
        "publish",
        "create_tag",
        "PublishResult",
        "PublishStatus",
        "ComponentResult",
        "package",
        "extract",
        "component_hash",
        "read_snapshot",
    } <= set(publish.__all__)
