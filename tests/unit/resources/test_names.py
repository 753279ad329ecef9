"""Name helpers: clean_name and the AppDeployment names fox publish uses."""

from __future__ import annotations

import pytest

from kubefox.core.errors import InvalidError
from kubefox.resources import app_deployment_name, clean_name


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        ("main", "main"),
        ("feature/Add_Login", "add-login"),
        ("refs/tags/v1.2.0", "v1-2-0"),
        ("--Hello World!--", "hello-world"),
        ("a/b/", "b"),
        ("x" * 70, "x" * 63),
        ("a" * 62 + "_b", "a" * 62),
    ],
)
def test_clean_name_makes_a_dns_label(raw: str, cleaned: str) -> None:
    """Basename, lowercase, other characters to '-', trimmed and at most 63 characters."""
    assert clean_name(raw) == cleaned


@pytest.mark.parametrize("raw", ["", "/", "--", "___"])
def test_clean_name_rejects_text_without_letters_or_digits(raw: str) -> None:
    """Input with nothing usable left is an InvalidError rather than an empty name."""
    with pytest.raises(InvalidError):
        clean_name(raw)


def test_app_deployment_name_prefers_version_then_branch_tag_commit() -> None:
    """The first of version, branch, tag and commit that is set names the deployment."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    assert app_deployment_name("hello-world", version="v1", branch="main") == "hello-world-v1"
    assert app_deployment_name("hello-world", branch="main", tag="v2") == "hello-world-main"
    assert app_deployment_name("hello-world", tag="v2", commit=commit) == "hello-world-v2"
    assert app_deployment_name("hello-world", commit=commit) == f"hello-world-{commit}"


def test_app_deployment_name_cleans_each_part() -> None:
    """Branch paths keep their basename and odd characters become dashes."""
    assert app_deployment_name("Hello_World", branch="feature/New.UI") == "hello-world-new-ui"
    assert len(app_deployment_name("a" * 40, version="b" * 40)) == 63


def test_app_deployment_name_needs_a_qualifier() -> None:
    """Without version, branch, tag or commit there is no name to give."""
    with pytest.raises(InvalidError, match="needs a version, branch, tag or commit"):
        app_deployment_name("hello-world")
