"""The REST endpoints over resources: create, apply, get, list, delete, kinds and errors."""

from __future__ import annotations

from typing import Any

import pytest

from kubefox.resources import Environment
from tests.unit.api.bench import Api
from tests.unit.resources.helpers import hello_world_document

QA = {"metadata": {"name": "qa"}, "data": {"vars": {"who": "World", "subPath": "qa"}}}
VE = {"apiVersion": "kubefox.xigxog.io/v1alpha1", "kind": "VirtualEnvironment",
      "metadata": {"name": "qa"}, "spec": {"environment": "qa"}}  # fmt: skip


def problem(response: Any) -> dict[str, Any]:
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    return body


async def test_create_then_get_returns_the_stamped_resource(api: Api) -> None:
    """A created resource reads back with uid, generation and resourceVersion filled in."""
    created = await api.client.post("/api/v1/resources/env", json=QA)
    got = await api.client.get("/api/v1/resources/environments/qa")

    assert created.status_code == 201
    assert got.status_code == 200
    body = got.json()
    assert body["kind"] == "Environment"
    assert body["metadata"]["generation"] == 1
    assert body["metadata"]["uid"]
    assert body["metadata"]["resourceVersion"] == created.json()["metadata"]["resourceVersion"]
    assert body["data"]["vars"] == {"who": "World", "subPath": "qa"}


async def test_create_twice_is_a_conflict_problem(api: Api) -> None:
    """Creating a name that exists answers 409 with a problem document."""
    await api.client.post("/api/v1/resources/env", json=QA)

    again = await api.client.post("/api/v1/resources/env", json=QA)

    assert again.status_code == 409
    assert problem(again)["code"] == 16


async def test_apply_reports_created_configured_and_unchanged(api: Api) -> None:
    """PUT creates, then updates, and a document that changes nothing is not written."""
    first = await api.client.put("/api/v1/resources/env/qa", json=QA)
    same = await api.client.put("/api/v1/resources/env/qa", json=QA)
    changed = {**QA, "data": {"vars": {"who": "Universe"}}}
    second = await api.client.put("/api/v1/resources/env/qa", json=changed)

    assert (first.status_code, first.headers["kubefox-apply"]) == (201, "created")
    assert (same.status_code, same.headers["kubefox-apply"]) == (200, "unchanged")
    assert same.json()["metadata"]["resourceVersion"] == first.json()["metadata"]["resourceVersion"]
    assert (second.status_code, second.headers["kubefox-apply"]) == (200, "configured")
    assert second.json()["metadata"]["generation"] == 2


async def test_apply_accepts_yaml_bodies(api: Api) -> None:
    """A resource may be sent as YAML, as written in hack/environments."""
    text = "kind: Environment\nmetadata:\n  name: prod\ndata:\n  vars:\n    who: Universe\n"

    response = await api.client.put(
        "/api/v1/resources/env/prod", content=text, headers={"content-type": "application/yaml"}
    )

    assert response.status_code == 201
    assert (await api.typed.get(Environment, "prod")).data.vars["who"] == "Universe"


async def test_apply_ignores_a_status_sent_by_the_client(api: Api) -> None:
    """Status belongs to the platform: a status in the document is dropped."""
    body = {**VE, "status": {"pendingReleaseFailed": True}}

    response = await api.client.put("/api/v1/resources/ve/qa", json=body)

    assert response.status_code == 201
    assert "status" not in response.json()


async def test_invalid_resource_lists_every_error_with_its_path(api: Api) -> None:
    """Every validation error comes back at once, each with its JSON path."""
    document = hello_world_document()
    del document["spec"]["commit"]
    document["spec"]["components"]["backend"]["hash"] = "NOT-A-HASH"
    document["spec"]["bogus"] = 1

    response = await api.client.put("/api/v1/resources/appdep/hello-world-main", json=document)

    assert response.status_code == 400
    body = problem(response)
    assert body["code"] == 6
    assert body["type"] == "urn:kubefox:problem:invalid"
    paths = {error["path"] for error in body["errors"]}
    assert {"$.spec.commit", "$.spec.bogus", "$.spec.components.backend.hash"} <= paths
    assert "Traceback" not in response.text


async def test_url_and_body_must_agree_on_kind_and_name(api: Api) -> None:
    """A body naming another kind or name than its URL is refused with both paths."""
    body = {**VE, "kind": "Environment", "metadata": {"name": "other"}}

    response = await api.client.put("/api/v1/resources/ve/qa", json=body)

    assert response.status_code == 400
    assert {e["path"] for e in problem(response)["errors"]} == {"$.kind", "$.metadata.name"}


async def test_other_namespace_is_refused(api: Api) -> None:
    """The API serves the platform's namespace only."""
    body = {**VE, "metadata": {"name": "qa", "namespace": "elsewhere"}}

    response = await api.client.put("/api/v1/resources/ve/qa", json=body)

    assert response.status_code == 400
    assert problem(response)["errors"][0]["path"] == "$.metadata.namespace"


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'"text"'])
async def test_malformed_bodies_are_invalid_problems(api: Api, body: bytes) -> None:
    """A body that is no JSON object is a 400, never a server error."""
    response = await api.client.post(
        "/api/v1/resources/env", content=body, headers={"content-type": "application/json"}
    )

    assert response.status_code == 400
    assert problem(response)["errors"][0]["path"] == "$"


async def test_oversized_body_is_content_too_large(api: Api) -> None:
    """A body above the limit is refused with 413 before it is parsed."""
    response = await api.client.post("/api/v1/resources/env", content=b"x" * (9 * 1024 * 1024))

    assert response.status_code == 413
    assert problem(response)["code"] == 5


async def test_unknown_kind_names_the_supported_kinds(api: Api) -> None:
    """An unknown kind is a 400 that lists what exists."""
    response = await api.client.get("/api/v1/resources/gadgets")

    assert response.status_code == 400
    detail = problem(response)["detail"]
    assert 'unknown resource kind "gadgets"' in detail
    assert "VirtualEnvironment" in detail


async def test_missing_resource_is_not_found(api: Api) -> None:
    """GET and DELETE of a missing resource answer 404 problems."""
    got = await api.client.get("/api/v1/resources/ve/nope")
    deleted = await api.client.delete("/api/v1/resources/ve/nope")

    assert (got.status_code, deleted.status_code) == (404, 404)
    assert problem(got)["code"] == 7


async def test_list_filters_by_label_selector(api: Api) -> None:
    """List takes equality label selectors; index labels are set by the store."""
    await api.client.put("/api/v1/resources/appdep/hello-world-main", json=hello_world_document())
    other = hello_world_document(appName="other")
    other["metadata"]["name"] = "other-main"
    await api.client.put("/api/v1/resources/appdep/other-main", json=other)

    everything = await api.client.get("/api/v1/resources/apps")
    selected = await api.client.get(
        "/api/v1/resources/apps", params={"labelSelector": "app.kubernetes.io/name==hello-world"}
    )

    assert [i["metadata"]["name"] for i in everything.json()["items"]] == [
        "hello-world-main",
        "other-main",
    ]
    assert selected.json()["kind"] == "AppDeploymentList"
    assert [i["metadata"]["name"] for i in selected.json()["items"]] == ["hello-world-main"]


@pytest.mark.parametrize("selector", ["app", "=x", "a!=b", "a in (b)", "a=b c"])
async def test_bad_label_selector_is_invalid(api: Api, selector: str) -> None:
    """A selector that is not key=value terms is a 400 naming the bad term."""
    response = await api.client.get("/api/v1/resources/apps", params={"labelSelector": selector})

    assert response.status_code == 400
    assert "bad label selector" in problem(response)["detail"]


async def test_delete_returns_the_resource_and_removes_it(api: Api) -> None:
    """DELETE answers the resource as it was; it is gone afterwards."""
    await api.client.put("/api/v1/resources/env/qa", json=QA)

    deleted = await api.client.delete("/api/v1/resources/env/qa")
    after = await api.client.get("/api/v1/resources/env/qa")

    assert deleted.status_code == 200
    assert deleted.json()["metadata"]["name"] == "qa"
    assert after.status_code == 404


async def test_kinds_lists_short_names(api: Api) -> None:
    """The kinds endpoint says which names each kind answers to."""
    response = await api.client.get("/api/v1/kinds")

    kinds = {k["kind"]: k for k in response.json()["kinds"]}
    assert "ve" in kinds["VirtualEnvironment"]["shortNames"]
    assert kinds["Environment"]["namespaced"] is False


async def test_unknown_endpoint_and_method_are_problems(api: Api) -> None:
    """Framework errors are problem documents too."""
    missing = await api.client.get("/api/v1/nothing")
    wrong = await api.client.patch("/api/v1/resources/env/qa")

    assert (missing.status_code, problem(missing)["code"]) == (404, 7)
    assert wrong.status_code == 405
    assert "PATCH" in problem(wrong)["detail"]


async def test_health_reports_the_store_revision(api: Api) -> None:
    """healthz answers ok with the store's revision."""
    await api.client.put("/api/v1/resources/env/qa", json=QA)

    response = await api.client.get("/api/v1/healthz")

    assert response.json() == {"status": "ok", "platform": "demo", "revision": 1}
