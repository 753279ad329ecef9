"""The public surface of kubefox.resources is curated: sorted, complete, importable."""

from __future__ import annotations

from kubefox import resources


def test_resources_all_is_sorted_and_importable() -> None:
    """__all__ is sorted (ruff's order) and every name in it exists."""
    names = resources.__all__
    assert names == sorted(names, key=lambda n: (not n.isupper(), not n[:1].isupper(), n))
    assert all(hasattr(resources, name) for name in names)


def test_resources_exports_the_documented_api() -> None:
    """The loader, layering, policy, problem and name helpers are exported."""
    assert {
        "load_yaml",
        "parse_resource",
        "dump",
        "kind_for",
        "RESOURCE_KINDS",
        "merge_data",
        "effective_policy",
        "validate_app_deployment",
        "problems_to_yaml",
        "clean_name",
        "app_deployment_name",
    } <= set(resources.__all__)
