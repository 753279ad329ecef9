"""The pytest plugin's fixtures against the session's real embedded platform.

An app of its own (hello-world renamed ``hello-test``) keeps these tests out
of the way of the example's tests, which share the same platform.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import pytest_asyncio

from kubefox.core import codec
from kubefox.core.errors import InvalidError, NotFoundError
from kubefox.core.events import Event, MatchedEvent
from kubefox.kit import Reply
from kubefox.testing import (
    AppPublisher,
    EventSender,
    HttpClient,
    PublishResult,
    ResourceApplier,
)
from tests.e2e.gitapps import EXAMPLES, app_repo, git

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """hello-world as ``hello-test``, committed on a branch named ``feature``."""
    repo = app_repo(EXAMPLES / "hello-world", tmp_path_factory.mktemp("apps") / "hello-test")
    (repo / "app.yaml").write_text(
        (repo / "app.yaml").read_text().replace("hello-world", "hello-test")
    )
    git(repo, "checkout", "-q", "-b", "feature")
    git(repo, "commit", "-q", "-am", "Rename the app")
    return repo


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def published(
    repo: Path, kubefox_publish: AppPublisher, kubefox_apply: ResourceApplier
) -> PublishResult:
    """``hello-test`` published in place, with the example's environments applied."""
    result = await kubefox_publish(repo)
    await kubefox_apply(repo / "hack" / "environments" / "qa.yaml")
    return result


async def test_publish_reads_a_clean_repository_in_place_and_copies_a_dirty_one(
    repo: Path, published: PublishResult, kubefox_publish: AppPublisher, kubefox_http: HttpClient
) -> None:
    """Clean: the branch names the deployment; dirty: a committed copy on main is published."""
    (repo / "notes.txt").write_text("not committed\n")
    try:
        copied = await kubefox_publish(repo / "components")
        with pytest.raises(InvalidError, match="uncommitted changes"):
            await kubefox_publish(repo, copy=False)
    finally:
        (repo / "notes.txt").unlink()
    in_place = await kubefox_http.with_context(published, "qa").get("/qa/hello")
    from_copy = await kubefox_http.with_context(copied, "qa").get("/qa/hello")

    assert published.name == "hello-test-feature"
    assert copied.name == "hello-test-main"
    assert (in_place.status_code, in_place.text) == (200, "👋 Hello World!")
    assert (from_copy.status_code, from_copy.text) == (200, "👋 Hello World!")


async def test_send_runs_a_route_with_the_environment_and_returns_the_reply(
    published: PublishResult, kubefox_send: EventSender
) -> None:
    """Route 0 of the frontend in qa: it calls the backend through the broker and answers."""
    reply = await kubefox_send(
        published,
        "frontend",
        Event(values={"method": "GET", "path": "/qa/hello", "header": {}}),
        virtual_environment="qa",
        route_id=0,
    )

    assert reply.parent_id
    assert reply.context.virtual_environment == "qa"
    assert reply.context.app_deployment == "hello-test-feature"
    assert Reply(reply).text == "👋 Hello World!"


async def test_send_takes_a_matched_event_or_explicit_env(
    published: PublishResult, kubefox_send: EventSender
) -> None:
    """A MatchedEvent carries route id and env; ``env`` replaces the resolved vars."""
    explicit = await kubefox_send(published, "backend", env={"who": "Tester"})
    matched = await kubefox_send(
        published.name, "backend", MatchedEvent(event=Event(), route_id=-1, env={"who": "Ann"})
    )
    unknown_route = await kubefox_send(
        published, "frontend", MatchedEvent(event=Event(), route_id=7)
    )

    assert Reply(explicit).text == "Tester"
    assert Reply(matched).text == "Ann"
    assert isinstance(codec.error_from_event(unknown_route), NotFoundError)


async def test_send_to_a_component_not_in_the_deployment_is_not_found(
    published: PublishResult, kubefox_send: EventSender
) -> None:
    """Naming a component the deployment lacks fails before anything is sent."""
    with pytest.raises(NotFoundError, match="not part of AppDeployment"):
        await kubefox_send(published, "nobody")
    with pytest.raises(NotFoundError, match="not found"):
        await kubefox_send("no-such-deployment", "backend")


async def test_send_from_another_event_loop_is_refused(kubefox_send: EventSender) -> None:
    """The sender belongs to the platform's loop; another loop gets the fix, not a hang."""
    with pytest.raises(RuntimeError, match="another event loop"):
        await asyncio.to_thread(asyncio.run, kubefox_send("hello-test-feature", "backend"))
