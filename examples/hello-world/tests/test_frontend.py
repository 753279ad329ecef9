"""The frontend on its own: it asks the backend whom to greet, answering as the client accepts."""

import html
from pathlib import Path

import pytest

from kubefox.kit import NotFoundError
from kubefox.kit.testing import KitClient, load_component

frontend = load_component(Path(__file__).parents[1] / "components" / "frontend")


@pytest.fixture
def client() -> KitClient:
    """The frontend in the qa environment, with a backend that answers ``World``."""
    client = KitClient(frontend, component="frontend", env={"subPath": "qa"})
    client.reply("backend", text="World")
    return client


async def test_frontend_greets_whoever_the_backend_names(client: KitClient) -> None:
    """``GET /qa/hello`` asks the backend once, with an empty request, and greets its answer."""
    response = await client.request("GET", "/qa/hello")

    assert response.status == 200
    assert response.text == "👋 Hello World!"
    (call,) = client.calls("backend")
    assert (call.method, call.path, call.body) == ("", "", b"")


@pytest.mark.parametrize(
    ("accept", "content_type", "body"),
    [
        ("*/*", "text/plain; charset=UTF-8", "👋 Hello World!"),
        ("text/html", "text/html; charset=UTF-8", f"<h1>{html.escape('👋 Hello World!')}</h1>"),
        ("application/json", "application/json; charset=UTF-8", '{"msg":"👋 Hello World!"}'),
    ],
)
async def test_frontend_answers_in_the_format_the_client_accepts(
    client: KitClient, accept: str, content_type: str, body: str
) -> None:
    """``Accept`` picks JSON, HTML or text, and the answer varies on it."""
    response = await client.request("GET", "/qa/hello", headers={"Accept": accept})

    assert response.content_type == content_type
    assert body in response.text
    assert response.header("Vary") == "Accept"


async def test_frontend_route_follows_the_environment(client: KitClient) -> None:
    """The route is ``/{{.Vars.subPath}}/hello``: in qa, ``/prod/hello`` matches nothing."""
    response = await client.request("GET", "/prod/hello")

    assert response.status == 404
    assert client.calls("backend") == []


async def test_frontend_passes_a_backend_error_on(client: KitClient) -> None:
    """An error from the backend is not swallowed: the client gets its status."""
    client.reply("backend", error=NotFoundError("nobody to greet"))

    response = await client.request("GET", "/qa/hello")

    assert (response.status, response.text) == (404, "not found: nobody to greet")


async def test_frontend_and_backend_together_greet_the_environment() -> None:
    """With the real backend in-process, each environment's ``who`` is greeted."""
    client = KitClient(frontend, component="frontend", env={"subPath": "prod", "who": "Universe"})
    client.reply("backend", load_component(Path(__file__).parents[1] / "components" / "backend"))

    response = await client.request("GET", "/prod/hello")

    assert response.text == "👋 Hello Universe!"
