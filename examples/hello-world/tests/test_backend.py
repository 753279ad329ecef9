"""The backend on its own: it answers with ``who``, and World when ``who`` is empty."""

from pathlib import Path

from kubefox.kit.testing import KitClient, load_component

backend = load_component(Path(__file__).parents[1] / "components" / "backend")


async def test_backend_answers_who() -> None:
    """The backend replies with the virtual environment's ``who`` as plain text."""
    client = KitClient(backend, component="backend", env={"who": "Universe"})

    response = await client.request()

    assert response.status == 200
    assert response.text == "Universe"
    assert response.content_type == "text/plain; charset=UTF-8"


async def test_backend_falls_back_to_world() -> None:
    """Without a value for ``who`` the backend greets the World."""
    client = KitClient(backend, component="backend", env={"who": ""})

    response = await client.request()

    assert response.text == "World"


async def test_backend_answers_any_request_with_its_default_handler() -> None:
    """The backend has no routes: whatever the path or method, the default handler answers."""
    client = KitClient(backend, component="backend", env={"who": "World"})

    response = await client.request("POST", "/anything/at/all", body="ignored")

    assert (response.status, response.text) == (200, "World")
