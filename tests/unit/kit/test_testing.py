"""kubefox.kit.testing: handlers run in-process on the kit's own server, dependencies scripted."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path
from typing import assert_type

import pytest

import kubefox.kit.testing
from kubefox.kit import (
    DeadlineExceededError,
    InvalidError,
    Kit,
    Kontext,
    KubeFoxError,
    NotFoundError,
    Response,
    UnavailableError,
)
from kubefox.kit.testing import Call, ClientResponse, KitClient, load_component
from tests.unit.kit import apps

PUBLIC = ["Call", "ClientResponse", "KitClient", "ReplyHandler", "load_component"]


def _echo_kit() -> Kit:
    """Routes that report what they received, and a default handler."""
    kit = Kit()
    kit.env_var("greeting")

    @kit.route("Path(`/{{.Vars.subPath}}/items/{id}`)")
    async def item(k: Kontext) -> Response:
        return k.json(
            {
                "id": k.param("id"),
                "env": {"greeting": k.env_str("greeting"), "secret": k.env_str("secret")},
            }
        )

    @kit.route("PathPrefix(`/files`)")
    async def files(k: Kontext) -> Response:
        return k.text(k.path_suffix)

    @kit.default
    async def default(k: Kontext) -> Response:
        return k.json(
            {
                "method": k.method,
                "path": k.path,
                "url": k.url,
                "host": k.host,
                "query": k.queries,
                "headers": k.headers,
                "body": k.body_text,
                "contentType": k.content_type,
                "ve": k.event.context.virtual_environment,
                "dep": k.event.context.app_deployment,
                "remaining": k.remaining(),
            }
        )

    return kit


async def test_request_runs_the_route_resolved_with_the_env() -> None:
    """Routes are resolved with the env as template data and their params are captured."""
    client = KitClient(_echo_kit(), env={"subPath": "qa", "greeting": "hi"})

    response = await client.request("GET", "/qa/items/42")

    assert response.status == 200
    assert response.json() == {"id": "42", "env": {"greeting": "hi", "secret": ""}}


async def test_request_passes_only_declared_env_vars() -> None:
    """A var the kit did not declare never reaches it, as on the platform."""
    client = KitClient(_echo_kit(), env={"subPath": "qa", "secret": "s3cr3t"})

    response = await client.request("GET", "/qa/items/1")

    assert response.json()["env"] == {"greeting": "", "secret": ""}


async def test_request_sets_the_path_suffix_of_a_prefix_route() -> None:
    """A PathPrefix route gets what follows the prefix."""
    client = KitClient(_echo_kit())

    response = await client.request("GET", "/files/a/b.txt")

    assert response.text == "a/b.txt"


async def test_request_falls_back_to_the_default_handler() -> None:
    """No route matches: the default handler answers, as for a request addressed to the kit."""
    client = KitClient(_echo_kit(), env={"subPath": "qa"})

    response = await client.request("GET", "/prod/items/1")

    assert response.status == 200
    assert response.json()["path"] == "/prod/items/1"


async def test_request_matching_nothing_without_default_is_a_404() -> None:
    """No route and no default handler: 404 route not found, as the platform answers."""
    kit, _ = apps.frontend()
    client = KitClient(kit, env={"subPath": "qa"})

    response = await client.request("GET", "/prod/hello")

    assert response.status == 404
    assert response.text == "route not found"
    assert isinstance(response.error, NotFoundError)


async def test_request_route_can_be_chosen_by_id_or_by_handler() -> None:
    """``route`` runs one handler without matching: by id, by function, -1 for the default."""
    kit = Kit()

    @kit.route("Path(`/a`)")
    async def first(k: Kontext) -> Response:
        return k.text("first")

    @kit.default
    async def default(k: Kontext) -> Response:
        return k.text("default")

    client = KitClient(kit)

    by_id = await client.request("GET", "/elsewhere", route=0)
    by_handler = await client.request("GET", "/a", route=default)
    by_default_id = await client.request("GET", "/a", route=-1)

    assert [by_id.text, by_handler.text, by_default_id.text] == ["first", "default", "default"]


async def test_request_route_naming_no_handler_is_invalid() -> None:
    """A function that is no handler of the kit is a mistake in the test, raised at once."""
    client = KitClient(_echo_kit())

    async def stranger(k: Kontext) -> Response:
        return k.text("")

    with pytest.raises(InvalidError, match="stranger"):
        await client.request(route=stranger)


async def test_request_carries_what_an_http_client_sent_and_the_context() -> None:
    """Method, URL, host, query, headers, body and context arrive as httpsrv would send them."""
    client = KitClient(
        _echo_kit(), virtual_environment="qa", app_deployment="hello-world-main", timeout=3.0
    )

    response = await client.request(
        "post",
        "/things?a=1&a=2",
        query={"b": "3"},
        headers={"x-trace": "t1", "host": "ignored"},
        json={"k": "v"},
        host="Example.com:8080",
    )

    seen = response.json()
    assert seen["method"] == "POST"
    assert seen["path"] == "/things"
    assert seen["url"] == "http://example.com:8080/things?a=1&a=2&b=3"
    assert seen["host"] == "example.com:8080"
    assert seen["query"] == {"a": ["1", "2"], "b": ["3"]}
    assert seen["headers"] == {
        "X-Trace": ["t1"],
        "Content-Type": ["application/json; charset=UTF-8"],
    }
    assert seen["body"] == '{"k":"v"}'
    assert seen["contentType"] == "application/json; charset=UTF-8"
    assert (seen["ve"], seen["dep"]) == ("qa", "hello-world-main")
    assert 2.0 < seen["remaining"] <= 3.0
    assert response.request.context == client.context
    assert response.request.target is not None
    assert response.request.target.name == "component"


async def test_response_has_status_headers_text_and_json() -> None:
    """The answer reads like an HTTP response: status, headers with Content-Type, text, json."""
    kit, _ = apps.frontend()
    client = KitClient(kit, env={"subPath": "qa"})
    client.reply("backend", text="World")

    as_json = await client.request("GET", "/qa/hello", headers={"Accept": "application/json"})
    as_text = await client.request("GET", "/qa/hello")

    assert_type(as_json, ClientResponse)
    assert as_json.status == 200
    assert as_json.headers == {
        "Vary": ["Accept"],
        "Content-Type": ["application/json; charset=UTF-8"],
    }
    assert as_json.header("vary") == "Accept"
    assert as_json.json() == {"msg": "👋 Hello World!"}
    assert as_json.error is None
    assert as_text.content_type == "text/plain; charset=UTF-8"
    assert as_text.text == "👋 Hello World!"
    assert as_text.content == "👋 Hello World!".encode()


async def test_handler_exception_is_the_500_a_user_would_see() -> None:
    """A handler raising gives the kit's own 500, naming the event and nothing else."""
    kit = Kit()

    @kit.default
    async def default(k: Kontext) -> Response:
        raise RuntimeError("secret internal detail")

    client = KitClient(kit)

    response = await client.request()

    assert response.status == 500
    assert response.text == f"unexpected error: handler failed (event {response.request.id})"
    assert response.content_type == "text/plain; charset=utf-8"
    assert type(response.error) is KubeFoxError


async def test_handler_kubefox_error_keeps_its_status_and_text() -> None:
    """A KubeFoxError raised by a handler is answered with its own status and text."""
    kit = Kit()

    @kit.default
    async def default(k: Kontext) -> Response:
        raise NotFoundError("no such greeting")

    response = await KitClient(kit).request()

    assert (response.status, response.text) == (404, "not found: no such greeting")


async def test_reply_answers_with_text_json_or_body_status_and_headers() -> None:
    """Static replies reach the handler as the dependency's Reply."""
    kit = Kit()
    backend = kit.component("backend")

    @kit.default
    async def default(k: Kontext) -> Response:
        reply = await k.request(backend)
        return k.json(
            {
                "status": reply.status_code,
                "type": reply.content_type,
                "header": reply.header("x-from"),
                "text": reply.text,
            }
        )

    client = KitClient(kit)

    client.reply(backend, text="hi", status=201, headers={"x-from": "b"})
    text = (await client.request()).json()
    client.reply(backend, json={"a": 1})
    as_json = (await client.request()).json()
    client.reply("backend", body=b"\x01", content_type="application/x-thing")
    raw = (await client.request()).json()
    client.reply(backend)
    empty = (await client.request()).json()

    assert text == {"status": 201, "type": "text/plain; charset=UTF-8", "header": "b", "text": "hi"}
    assert as_json["type"] == "application/json; charset=UTF-8"
    assert as_json["text"] == '{"a":1}'
    assert raw["type"] == "application/x-thing"
    assert empty == {"status": 200, "type": "", "header": None, "text": ""}


async def test_reply_error_is_raised_by_the_handlers_request() -> None:
    """A scripted error comes back out of ``k.request`` as that error."""
    kit = Kit()
    backend = kit.component("backend")
    seen: list[KubeFoxError] = []

    @kit.default
    async def default(k: Kontext) -> Response:
        try:
            await k.request(backend)
        except NotFoundError as exc:
            seen.append(exc)
            return k.text("handled", status=502)
        return k.text("not raised")

    client = KitClient(kit)
    client.reply(backend, error=NotFoundError("no such user", user="ann"))

    response = await client.request()

    assert response.text == "handled"
    assert [str(e) for e in seen] == ["not found: no such user"]
    assert seen[0].details == {"user": "ann"}


async def test_reply_handler_gets_the_request_as_a_kontext() -> None:
    """A scripted handler (sync or async) reads the request like a handler and builds the Reply."""
    kit = Kit()
    backend = kit.component("backend")

    @kit.default
    async def default(k: Kontext) -> Response:
        reply = await k.request(backend, method="PUT", path="/users/7", json={"n": 1})
        return k.respond(reply)

    async def echo(k: Kontext) -> Response:
        return k.text(f"{k.method} {k.path} {k.body_json()['n']} {k.event.context.app_deployment}")

    client = KitClient(kit, app_deployment="dep-1")

    client.reply(backend, echo)
    from_async = await client.request()
    client.reply(backend, lambda k: k.text("sync", status=202))
    from_sync = await client.request()

    assert from_async.text == "PUT /users/7 1 dep-1"
    assert (from_sync.status, from_sync.text) == (202, "sync")


async def test_reply_handler_that_raises_is_a_dependency_failure() -> None:
    """A scripted handler raising behaves like a failing component: the caller gets a 500 error."""
    kit, backend = apps.frontend()
    client = KitClient(kit, env={"subPath": "qa"})

    def broken(k: Kontext) -> Response:
        raise ValueError("boom")

    client.reply(backend, broken)
    response = await client.request("GET", "/qa/hello")

    assert response.status == 500
    assert response.text.startswith("unexpected error: handler failed (event ")


async def test_reply_with_a_kit_runs_that_component_in_process() -> None:
    """A whole Kit as the dependency: it gets its own declared env and answers with its handler."""
    frontend, backend = apps.frontend()
    client = KitClient(frontend, env={"subPath": "prod", "who": "Universe"})

    client.reply(backend, apps.backend())
    response = await client.request("GET", "/prod/hello")

    assert response.text == "👋 Hello Universe!"


async def test_reply_replaces_the_earlier_script() -> None:
    """The last script for a dependency wins."""
    kit, backend = apps.frontend()
    client = KitClient(kit, env={"subPath": "qa"})

    client.reply(backend, text="first")
    client.reply(backend, text="second")
    response = await client.request("GET", "/qa/hello")

    assert response.text == "👋 Hello second!"


def test_reply_for_an_undeclared_dependency_is_invalid() -> None:
    """Scripting a dependency the kit never declared is a typo, caught at once."""
    kit, _ = apps.frontend()
    client = KitClient(kit)

    with pytest.raises(InvalidError, match=r"'backnd' is not a declared dependency .*backend"):
        client.reply("backnd", text="x")


def test_reply_with_two_answers_is_invalid() -> None:
    """Only one kind of answer may be scripted at a time."""
    kit, backend = apps.frontend()
    client = KitClient(kit)

    with pytest.raises(InvalidError, match="text and json"):
        client.reply(backend, text="x", json={"x": 1})


async def test_unscripted_dependency_is_unavailable() -> None:
    """A call nothing answers is a 503, with a hint to script a reply."""
    kit = Kit()
    backend = kit.component("backend")
    errors: list[UnavailableError] = []

    @kit.default
    async def default(k: Kontext) -> Response:
        try:
            await k.request(backend)
        except UnavailableError as exc:
            errors.append(exc)
            raise
        return k.text("")

    response = await KitClient(kit).request()

    assert response.status == 503
    assert "KitClient.reply('backend', ...)" in str(errors[0])


async def test_calls_records_every_request_in_order() -> None:
    """Each call is recorded with what was sent, per dependency or all together."""
    kit = Kit()
    users = kit.component("users")
    audit = kit.component("audit")

    @kit.default
    async def default(k: Kontext) -> Response:
        await k.request(users, method="GET", path="/u/1", headers={"x-id": "9"}, query={"q": "a"})
        await k.request(audit, body="seen", timeout=2.0)
        await k.request(users, json={"n": 2})
        return k.text("ok")

    client = KitClient(kit, timeout=5.0)
    client.reply(users, json={})
    client.reply(audit)

    await client.request()

    every = client.calls()
    first, second = client.calls(users)
    (logged,) = client.calls("audit")
    assert_type(every, list[Call])
    assert [call.dependency for call in every] == ["users", "audit", "users"]
    assert (first.method, first.path, first.header("X-ID"), first.query) == (
        "GET",
        "/u/1",
        "9",
        {"q": ["a"]},
    )
    assert first.headers == {"X-Id": ["9"]}
    assert second.json() == {"n": 2}
    assert (second.method, second.path) == ("", "")
    assert (logged.text, logged.body, logged.content_type) == (
        "seen",
        b"seen",
        "text/plain; charset=UTF-8",
    )
    assert logged.timeout <= 2.0 < first.timeout <= 5.0
    assert logged.event.context == client.context


async def test_dependency_that_never_answers_times_out_in_the_handler() -> None:
    """No reply within the call's timeout raises DeadlineExceededError inside the handler."""
    kit = Kit()
    backend = kit.component("backend")

    @kit.default
    async def default(k: Kontext) -> Response:
        try:
            await k.request(backend, timeout=0.05)
        except DeadlineExceededError as exc:
            return k.text(f"gave up: {exc}", status=504)
        return k.text("answered")

    client = KitClient(kit)
    client.reply(backend, delay=math.inf)

    response = await client.request()

    assert response.status == 504
    assert response.text == "gave up: time out: no reply within 0.05s"


async def test_handler_that_outlives_the_request_ttl_is_a_504() -> None:
    """A request whose TTL runs out answers the kit's own deadline error."""
    kit, backend = apps.frontend()
    client = KitClient(kit, env={"subPath": "qa"})
    client.reply(backend, delay=math.inf)

    response = await client.request("GET", "/qa/hello", timeout=0.05)

    assert response.status == 504
    assert isinstance(response.error, DeadlineExceededError)


def test_load_component_loads_each_main_under_a_name_of_its_own(tmp_path: Path) -> None:
    """Two components' main.py files load side by side, each giving its own Kit."""
    for name, text in (("a", "A"), ("b", "B")):
        component = tmp_path / "components" / name
        component.mkdir(parents=True)
        (component / "main.py").write_text(
            "from kubefox.kit import Kit, Kontext, Response\n"
            "kit = Kit()\n"
            "@kit.default\n"
            f"async def answer(k: Kontext) -> Response:\n    return k.text({text!r})\n"
        )

    a = load_component(tmp_path / "components" / "a")
    b = load_component(tmp_path / "components" / "b" / "main.py")

    assert_type(a, Kit)
    assert a is not b
    assert a.definition() == b.definition() == {"type": "KubeFox", "defaultHandler": True}


async def test_load_component_lets_the_component_import_its_own_modules(tmp_path: Path) -> None:
    """A component's sibling modules import as they do when the platform runs main.py."""
    component = tmp_path / "greeter"
    component.mkdir()
    (component / "greeter_words.py").write_text("WORD = 'hej'\n")
    (component / "main.py").write_text(
        "from greeter_words import WORD\n"
        "from kubefox.kit import Kit, Kontext, Response\n"
        "greeter = Kit()\n"
        "@greeter.default\n"
        "async def answer(k: Kontext) -> Response:\n    return k.text(WORD)\n"
    )

    response = await KitClient(load_component(component)).request()

    assert response.text == "hej"
    assert str(component) not in sys.path


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("x = 1\n", "defines 0 Kits"),
        ("from kubefox.kit import Kit\na = Kit()\nb = Kit()\n", "defines 2 Kits"),
    ],
)
def test_load_component_needs_one_kit(tmp_path: Path, source: str, problem: str) -> None:
    """A module with no Kit, or several and none named ``kit``, is refused."""
    (tmp_path / "main.py").write_text(source)

    with pytest.raises(InvalidError, match=problem):
        load_component(tmp_path)


def test_load_component_of_a_missing_file_is_invalid(tmp_path: Path) -> None:
    """A path with no main.py is refused with the path it looked at."""
    with pytest.raises(InvalidError, match=r"main\.py is not a file"):
        load_component(tmp_path)


def test_importing_kit_testing_loads_no_nats_and_no_platform() -> None:
    """Unit tests of a component need neither NATS nor the platform, so neither is imported."""
    code = (
        "import sys, kubefox.kit.testing\n"
        "print([m for m in ('nats', 'kubefox.platform', 'kubefox.store') if m in sys.modules])"
    )

    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )

    assert result.stdout.strip() == "[]"


def test_exported_names_are_pinned() -> None:
    """``kubefox.kit.testing.__all__`` is exactly the pinned list, and every name exists."""
    assert kubefox.kit.testing.__all__ == PUBLIC
    for name in PUBLIC:
        assert getattr(kubefox.kit.testing, name) is not None
