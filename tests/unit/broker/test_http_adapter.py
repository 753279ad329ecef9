"""HTTPAdapter templates: rendered only when the call is made, from vars and secrets."""

from __future__ import annotations

from kubefox.broker.http_adapter import render, uses_secrets
from kubefox.resources import HTTPAdapter


def adapter(url: str, **headers: str) -> HTTPAdapter:
    return HTTPAdapter.model_validate(
        {"metadata": {"name": "remote"}, "spec": {"url": url, "headers": headers}}
    )


def test_templates_render_vars_env_and_secrets_and_missing_keys_as_empty() -> None:
    """``.Vars``/``.Env`` read vars, ``.Secrets`` secrets; a missing key is "" (upstream)."""
    variables = {"host": "api.example", "port": 8443, "tls": True, "ids": ["a", "b"]}
    secrets = {"token": "t0k"}

    rendered = render(
        "https://{{.Vars.host}}:{{ .Env.port }}/{{.Vars.tls}}/{{.Vars.ids}}"
        "?t={{.Secrets.token}}&m={{.Vars.missing}}",
        variables,
        secrets,
    )

    assert rendered == "https://api.example:8443/true/a,b?t=t0k&m="


def test_a_var_named_like_a_secret_never_reads_the_secret() -> None:
    """``{{.Vars.token}}`` is the var, not the secret of the same name."""
    assert render("{{.Vars.token}}", {}, {"token": "t0k"}) == ""


def test_secrets_are_read_only_for_adapters_whose_templates_name_one() -> None:
    """An adapter without ``.Secrets`` templates never makes the broker read the backend."""
    assert uses_secrets(adapter("http://x", Authorization="Bearer {{.Secrets.token}}"))
    assert uses_secrets(adapter("http://x/{{ .Secrets.key }}"))
    assert not uses_secrets(adapter("http://{{.Vars.host}}", X_Env="{{.Env.name}}"))
