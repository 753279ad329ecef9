"""regex_sample: a string the regex fully matches, readable by default, or None."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubefox.core.regex_samples import regex_sample

PATTERNS = [
    r"[0-9]+",
    r"\d{3}-\d{2}",
    r"[a-z]{2,4}",
    r"v[0-9]+\.[0-9]+",
    r"(foo|bar|baz)",
    r"[^/]+",
    r"\w+@\w+\.com",
    r"x*y?z+",
    r"(ab)\1",
    r"(?P<w>[a-c])-(?P=w)",
    r"[A-F0-9]{8}",
    r"(?i)hello",
    r"[^a-z0-9]",
    r"é[ü-ÿ]",
    r"\bword\b",
    r"[a-z]+(?=\d)\d",
    r"[[:]x",
]


@pytest.mark.filterwarnings("ignore:Possible nested set:FutureWarning")
@given(pattern=st.sampled_from(PATTERNS), variant=st.integers(0, 50))
def test_every_sample_fully_matches_its_pattern(pattern: str, variant: int) -> None:
    """Whatever the variant, what comes back is accepted by re.fullmatch."""
    sample = regex_sample(pattern, variant=variant, nonempty=True)
    assert sample is not None
    assert sample
    assert re.fullmatch(pattern, sample) is not None


@given(variant=st.integers(0, 50))
def test_avoided_characters_never_appear(variant: int) -> None:
    """A path segment never gets a "/" even from a regex that allows one."""
    sample = regex_sample(r"[a/]{3}", variant=variant, avoid="/")
    assert sample == "aaa"


def test_the_default_sample_is_stable_and_readable() -> None:
    """Variant 0 takes the first choice of the preferred alphabet at every step."""
    assert regex_sample(r"[0-9]+") == "0"
    assert regex_sample(r"[a-z]{3}") == "aaa"
    assert regex_sample(r"(foo|bar)") == "foo"
    assert regex_sample(r"v\d+") == "v0"
    assert regex_sample(r"[0-9]+") == regex_sample(r"[0-9]+", variant=0)


def test_other_variants_give_other_values() -> None:
    """A caller whose first value is taken can ask for different ones."""
    values = {regex_sample(r"[a-z]{2,5}", variant=v) for v in range(10)}
    assert len(values) > 3


@pytest.mark.parametrize("pattern", [r"(?!)", r"a(?!)", r"[^\s\S]"])
def test_a_regex_that_never_matches_gives_none(pattern: str) -> None:
    """No string, rather than a wrong one."""
    assert regex_sample(pattern) is None


def test_nonempty_refuses_the_empty_match() -> None:
    """x* would give "" at its minimum: nonempty asks for at least one x."""
    assert regex_sample(r"x*", nonempty=True) == "x"
    assert regex_sample(r"", nonempty=True) is None
    assert regex_sample(r"") == ""
