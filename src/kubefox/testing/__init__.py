"""Test whole apps on a real embedded platform: publish, apply, call over HTTP, send events.

The pytest plugin (:mod:`kubefox.pytest_plugin`, registered when kubefox is
installed) builds these for its fixtures; import them to annotate a test::

    from kubefox.testing import AppPublisher, HttpClient

    async def test_hello(kubefox_publish: AppPublisher, kubefox_http: HttpClient) -> None:
        published = await kubefox_publish("examples/hello-world")
        ...

To test one component's handlers without any platform, use
:mod:`kubefox.kit.testing`.
"""

from kubefox.publish import PublishResult
from kubefox.testing._apps import AppPublisher, ResourceApplier, copy_app, find_app
from kubefox.testing._events import EventSender
from kubefox.testing._http import ContextClient, HttpClient

__all__ = [
    "AppPublisher",
    "ContextClient",
    "EventSender",
    "HttpClient",
    "PublishResult",
    "ResourceApplier",
    "copy_app",
    "find_app",
]
