"""The recording endpoints over an in-memory recording store."""

from __future__ import annotations

from kubefox.resources import Environment, VirtualEnvironment
from tests.unit.api.bench import Api


async def with_qa(api: Api) -> None:
    await api.typed.create(Environment.model_validate({"metadata": {"name": "qa"}, "spec": {}}))
    await api.typed.create(
        VirtualEnvironment.model_validate(
            {"metadata": {"name": "qa", "namespace": "kubefox-demo"}, "spec": {"environment": "qa"}}
        )
    )
    await api.view.wait_for_revision(await api.store.revision())


async def test_recordings_start_list_stop_and_read(api: Api) -> None:
    """A started recording is listed, stops once, and reads back with no exchanges."""
    await with_qa(api)

    started = await api.client.post(
        "/api/v1/recordings?timeoutSeconds=0", json={"virtualEnvironment": "qa", "maxRequests": 5}
    )
    recording = started.json()
    listed = await api.client.get("/api/v1/recordings")
    stopped = await api.client.post(f"/api/v1/recordings/{recording['id']}/stop")
    exchanges = await api.client.get(f"/api/v1/recordings/{recording['id']}/exchanges")
    deleted = await api.client.delete(f"/api/v1/recordings/{recording['id']}")
    missing = await api.client.get(f"/api/v1/recordings/{recording['id']}")

    assert started.status_code == 201
    assert (recording["state"], recording["maxRequests"], recording["observedBy"]) == (
        "Recording",
        5,
        [],
    )
    assert [r["id"] for r in listed.json()["items"]] == [recording["id"]]
    assert stopped.json()["state"] == "Stopped"
    assert exchanges.json() == {"recording": recording["id"], "exchanges": []}
    assert deleted.status_code == 200
    assert missing.status_code == 404


async def test_recording_requests_are_validated(api: Api) -> None:
    """Unknown VEs are 404; bad fields are 400 with the path of each."""
    await with_qa(api)

    unknown = await api.client.post("/api/v1/recordings", json={"virtualEnvironment": "nope"})
    bad = await api.client.post(
        "/api/v1/recordings", json={"virtualEnvironment": "qa", "maxRequests": 0, "x": 1}
    )
    odd_id = await api.client.get("/api/v1/recordings/..%2Fx")

    assert unknown.status_code == 404
    assert bad.status_code == 400
    assert {e["path"] for e in bad.json()["errors"]} == {"$.maxRequests", "$.x"}
    assert odd_id.status_code == 404
