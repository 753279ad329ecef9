"""Env layering (VE data over Environment data) and the effective release policy."""

from __future__ import annotations

from typing import Any

import pytest

from kubefox.resources import (
    Data,
    Environment,
    ReleasePolicyType,
    VirtualEnvironment,
    effective_policy,
    merge_data,
)


def _env(policy: dict[str, Any] | None = None) -> Environment:
    spec = {"releasePolicy": policy} if policy is not None else {}
    return Environment.model_validate({"metadata": {"name": "prod"}, "spec": spec})


def _ve(policy: dict[str, Any] | None = None) -> VirtualEnvironment:
    spec: dict[str, Any] = {"environment": "prod"}
    if policy is not None:
        spec["releasePolicy"] = policy
    return VirtualEnvironment.model_validate({"metadata": {"name": "prod"}, "spec": spec})


def test_merge_data_ve_overrides_environment_key_by_key() -> None:
    """VE vars win per key; Environment keys the VE lacks are kept."""
    env = Data(vars={"who": "Universe", "subPath": "prod"})
    ve = Data(vars={"who": "John", "db": "john"})
    assert merge_data(env, ve).vars == {"who": "John", "subPath": "prod", "db": "john"}


def test_merge_data_layers_vars_and_secrets_independently() -> None:
    """A VE secret does not hide an Environment var of the same name, nor the reverse."""
    env = Data(vars={"k": "env-var"}, secrets={"token": "env-secret"})
    ve = Data(vars={"token": "ve-var"}, secrets={"k": "ve-secret"})
    merged = merge_data(env, ve)
    assert merged.vars == {"k": "env-var", "token": "ve-var"}
    assert merged.secrets == {"token": "env-secret", "k": "ve-secret"}


def test_merge_data_without_ve_is_environment_data() -> None:
    """With no VE data the Environment's data is the result, as a copy."""
    env = Data(vars={"who": "World"}, secrets={"s": "x"})
    merged = merge_data(env, None)
    assert merged == env
    merged.vars["who"] = "changed"
    assert env.vars["who"] == "World"


def test_merge_data_ve_null_shadows_environment_value() -> None:
    """A VE key set to null shadows the Environment's value (upstream's Data.Import)."""
    assert merge_data(Data(vars={"who": "World"}), Data(vars={"who": None})).vars == {"who": None}


def test_merge_data_leaves_inputs_unchanged() -> None:
    """Merging never mutates the Environment's or the VE's data."""
    env, ve = Data(vars={"a": 1}), Data(vars={"b": 2})
    merge_data(env, ve)
    assert (env.vars, ve.vars) == ({"a": 1}, {"b": 2})


def test_effective_policy_defaults_without_anything() -> None:
    """With no Environment and no VE the built-in defaults apply."""
    policy = effective_policy(None, None)
    assert policy.type is ReleasePolicyType.STABLE
    assert policy.activation_deadline_seconds == 300
    assert (policy.history_limits.count, policy.history_limits.age_days) == (10, 0)


def test_effective_policy_inherits_environment_fields() -> None:
    """A VE without overrides gets the Environment's policy."""
    env = _env(
        {
            "type": "Testing",
            "activationDeadlineSeconds": 60,
            "historyLimits": {"count": 3, "ageDays": 7},
        }
    )
    policy = effective_policy(env, _ve())
    assert policy.type is ReleasePolicyType.TESTING
    assert policy.activation_deadline_seconds == 60
    assert (policy.history_limits.count, policy.history_limits.age_days) == (3, 7)


def test_effective_policy_ve_field_wins_field_by_field() -> None:
    """Each field the VE sets wins; the fields it leaves unset come from the Environment."""
    env = _env(
        {
            "type": "Testing",
            "activationDeadlineSeconds": 60,
            "historyLimits": {"count": 3, "ageDays": 7},
        }
    )
    ve = _ve({"type": "Stable", "historyLimits": {"count": 5}})
    policy = effective_policy(env, ve)
    assert policy.type is ReleasePolicyType.STABLE
    assert policy.activation_deadline_seconds == 60
    assert (policy.history_limits.count, policy.history_limits.age_days) == (5, 7)


@pytest.mark.parametrize(
    ("env_policy", "ve_policy", "deadline", "count"),
    [
        ({"activationDeadlineSeconds": 0, "historyLimits": {"count": 0}}, None, 300, 10),
        ({"activationDeadlineSeconds": 60}, {"activationDeadlineSeconds": 0}, 60, 10),
        ({"historyLimits": {"count": 4}}, {"historyLimits": {"count": 0}}, 300, 4),
        ({"activationDeadlineSeconds": 0}, {"activationDeadlineSeconds": 0}, 300, 10),
    ],
)
def test_effective_policy_zero_means_default(
    env_policy: dict[str, Any], ve_policy: dict[str, Any] | None, deadline: int, count: int
) -> None:
    """A deadline or history count of 0 counts as unset at every level."""
    policy = effective_policy(_env(env_policy), _ve(ve_policy))
    assert policy.activation_deadline_seconds == deadline
    assert policy.history_limits.count == count


def test_effective_policy_without_environment_uses_ve_then_defaults() -> None:
    """A VE whose Environment is missing gets its own overrides over the defaults."""
    policy = effective_policy(None, _ve({"type": "Testing"}))
    assert policy.type is ReleasePolicyType.TESTING
    assert policy.activation_deadline_seconds == 300
