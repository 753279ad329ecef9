"""The whole app on a real embedded platform, through the kubefox pytest plugin.

The plugin starts one platform (a real nats-server, broker, httpsrv and
operator) for the test session; these tests publish the app from a git copy,
apply its environments and call it as a user would.
"""

from pathlib import Path

import pytest
import pytest_asyncio

from kubefox.kit import Reply
from kubefox.testing import AppPublisher, EventSender, HttpClient, PublishResult, ResourceApplier

pytestmark = pytest.mark.e2e

APP = Path(__file__).parents[1]


# Published once for the module; like every async fixture using the platform,
# it runs in the platform's (session) event loop.
@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def published(kubefox_publish: AppPublisher, kubefox_apply: ResourceApplier) -> PublishResult:
    """hello-world published from a git copy (so ``hello-world-main``), environments applied."""
    result = await kubefox_publish(APP, copy=True)
    await kubefox_apply(APP / "hack" / "environments")
    return result


async def test_app_greets_the_world_in_qa(
    published: PublishResult, kubefox_http: HttpClient
) -> None:
    """``GET /qa/hello`` with kf-dep/kf-ve greets qa's ``who``."""
    response = await kubefox_http.with_context(published, "qa").get("/qa/hello")

    assert published.name == "hello-world-main"
    assert response.status_code == 200
    assert response.text == "👋 Hello World!"
    assert response.headers["kubefox-virtual-environment"] == "qa"


async def test_app_greets_the_universe_in_prod_as_json(
    published: PublishResult, kubefox_http: HttpClient
) -> None:
    """The same deployment in prod greets prod's ``who``, as JSON when asked."""
    prod = kubefox_http.with_context(published, "prod")

    response = await prod.get("/prod/hello", headers={"Accept": "application/json"})

    assert response.json() == {"msg": "👋 Hello Universe!"}


async def test_backend_answers_a_raw_event(
    published: PublishResult, kubefox_send: EventSender
) -> None:
    """An event sent straight to the backend's default handler gets qa's ``who`` back."""
    reply = await kubefox_send(published, "backend", virtual_environment="qa")

    assert Reply(reply).text == "World"
