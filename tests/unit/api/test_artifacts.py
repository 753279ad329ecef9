"""Artifact upload and lookup over HTTP: what fox publish uses instead of NATS."""

from __future__ import annotations

from kubefox.publish import SourceFile, component_hash, package
from tests.unit.api.bench import Api

FILES = (SourceFile(path="main.py", mode=0o644, content=b"print('hi')\n"),)
HASH = component_hash(FILES)
NAME = f"hello-world.backend.{HASH}"


async def test_artifact_upload_then_head_and_get(api: Api) -> None:
    """An uploaded artifact exists and reads back byte for byte."""
    data = package(FILES)
    before = await api.client.head(f"/api/v1/artifacts/{NAME}")

    stored = await api.client.put(f"/api/v1/artifacts/{NAME}", content=data)
    again = await api.client.put(f"/api/v1/artifacts/{NAME}", content=data)
    after = await api.client.head(f"/api/v1/artifacts/{NAME}")
    got = await api.client.get(f"/api/v1/artifacts/{NAME}")

    assert before.status_code == 404
    assert (stored.status_code, stored.json()["stored"]) == (201, True)
    assert (again.status_code, again.json()["stored"]) == (200, False)
    assert after.status_code == 200
    assert got.content == data


async def test_artifact_whose_files_do_not_match_its_hash_is_refused(api: Api) -> None:
    """No client can store other code under a published hash."""
    other = package((SourceFile(path="main.py", mode=0o644, content=b"evil()\n"),))

    response = await api.client.put(f"/api/v1/artifacts/{NAME}", content=other)

    assert response.status_code == 400
    assert "not the" in response.json()["detail"]
    assert api.artifacts.names == []


async def test_artifact_that_is_no_archive_is_refused(api: Api) -> None:
    """Garbage bytes are a 400, not a server error."""
    response = await api.client.put(f"/api/v1/artifacts/{NAME}", content=b"garbage")

    assert response.status_code == 400


async def test_artifact_name_must_be_app_component_hash(api: Api) -> None:
    """Names outside <app>.<component>.<hash> are refused."""
    response = await api.client.get("/api/v1/artifacts/just-a-name")
    head = await api.client.head("/api/v1/artifacts/a.b.short")

    assert response.status_code == 400
    assert "<app>.<component>.<hash>" in response.json()["detail"]
    assert head.status_code == 400
