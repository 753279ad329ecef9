"""Declarations: the exported component definition and mistakes caught at declaration."""

from __future__ import annotations

import json

import pytest

from kubefox.core.events import ComponentType
from kubefox.kit import (
    Dependency,
    EnvVar,
    EnvVarType,
    InvalidError,
    Kit,
    Kontext,
    Response,
    RouteInvalidError,
)
from tests.unit.kit import apps


async def _ok(k: Kontext) -> Response:
    return k.text("ok")


def test_frontend_definition_has_upstream_shape() -> None:
    """The hello-world frontend exports its route, route vars and dependency in camelCase."""
    kit, _ = apps.frontend()

    definition = kit.definition()

    assert definition == {
        "type": "KubeFox",
        "routes": [
            {
                "id": 0,
                "rule": "Path(`/{{.Vars.subPath}}/hello`)",
                "envVarSchema": {"subPath": {"required": True}},
            }
        ],
        "defaultHandler": False,
        "dependencies": {"backend": {"type": "KubeFox"}},
    }


def test_backend_definition_has_default_handler_and_env_var() -> None:
    """The hello-world backend exports its default handler and its required env var."""
    kit = apps.backend()

    assert kit.definition() == {
        "type": "KubeFox",
        "defaultHandler": True,
        "envVarSchema": {"who": {"required": True}},
    }


def test_export_prints_definition_and_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    """``--export`` prints the definition as JSON on stdout and exits 0 without settings."""
    kit, _ = apps.frontend()

    with pytest.raises(SystemExit) as exit_info:
        kit.start(["--export"])

    assert exit_info.value.code == 0
    assert json.loads(capsys.readouterr().out) == kit.definition()


def test_routes_get_ids_in_registration_order() -> None:
    """Route ids are 0, 1, 2... in the order the routes were declared."""
    kit = Kit()
    kit.route("Path(`/a`)")(_ok)
    kit.route("PathPrefix(`/{{.Env.base}}/b`) && Header(`X-Who`, `{{.Vars.who}}`)")(_ok)

    routes = kit.definition()["routes"]

    assert [r["id"] for r in routes] == [0, 1]
    assert "envVarSchema" not in routes[0]
    assert routes[1]["envVarSchema"] == {"base": {"required": True}, "who": {"required": True}}


def test_route_decorator_returns_the_handler_unchanged() -> None:
    """Decorating keeps the function, so it can still be called and tested directly."""
    kit = Kit()

    assert kit.route("Path(`/a`)")(_ok) is _ok
    assert kit.default(_ok) is _ok


def test_env_var_type_and_http_adapter_are_exported() -> None:
    """A typed env var exports its type; an HTTP adapter dependency exports HTTPAdapter."""
    kit = Kit()
    db = kit.env_var("db", type=EnvVarType.STRING)
    hasura = kit.http_adapter("hasura")

    definition = kit.definition()

    assert db == EnvVar(name="db", type=EnvVarType.STRING, required=False)
    assert hasura == Dependency(name="hasura", type=ComponentType.HTTP_ADAPTER)
    assert definition["envVarSchema"] == {"db": {"type": "String", "required": False}}
    assert definition["dependencies"] == {"hasura": {"type": "HTTPAdapter"}}


@pytest.mark.parametrize(
    "rule",
    [
        "Pth(`/a`)",
        "Path(`/a`",
        "Path(`/{{.Vars.x`)",
        "",
    ],
)
def test_bad_rule_is_rejected_at_declaration(rule: str) -> None:
    """A rule that does not parse fails when declared, naming the problem."""
    kit = Kit()

    with pytest.raises(RouteInvalidError):
        kit.route(rule)

    assert "routes" not in kit.definition()


def test_secret_in_rule_is_rejected() -> None:
    """Secrets never appear in a route rule (they would leak into matchers and logs)."""
    kit = Kit()

    with pytest.raises(RouteInvalidError, match="secret"):
        kit.route("Path(`/{{.Secrets.token}}/a`)")


def test_second_default_handler_is_rejected() -> None:
    """A component has at most one default handler."""
    kit = Kit()
    kit.default(_ok)

    with pytest.raises(InvalidError, match="default handler"):
        kit.default(_ok)


def test_redeclaring_is_idempotent_but_conflicts_are_rejected() -> None:
    """Declaring the same thing twice is harmless; declaring it differently is an error."""
    kit = Kit()
    assert kit.env_var("who", required=True) == kit.env_var("who", required=True)
    assert kit.component("backend") == kit.component("backend")

    with pytest.raises(InvalidError, match="already declared"):
        kit.env_var("who")
    with pytest.raises(InvalidError, match="already declared"):
        kit.http_adapter("backend")


@pytest.mark.parametrize("name", ["", "Backend", "back end", "back.end", "-backend"])
def test_invalid_dependency_name_is_rejected(name: str) -> None:
    """Dependency names must be DNS labels: they end up in NATS subjects and resource names."""
    with pytest.raises(InvalidError):
        Kit().component(name)


@pytest.mark.parametrize("name", ["", "a b", "1x", "x.y"])
def test_invalid_env_var_name_is_rejected(name: str) -> None:
    """Env var names must be usable in a ``{{.Vars.NAME}}`` template."""
    with pytest.raises(InvalidError):
        Kit().env_var(name)


def test_start_without_settings_exits_two(capsys: pytest.CaptureFixture[str]) -> None:
    """Missing settings print every missing variable on stderr and exit with code 2."""
    kit = apps.backend()

    with pytest.raises(SystemExit) as exit_info:
        kit.start([])

    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    for var in ("PLATFORM", "APP", "NAME", "HASH", "NATS_URL"):
        assert f"KUBEFOX_KIT_{var} is required" in err
