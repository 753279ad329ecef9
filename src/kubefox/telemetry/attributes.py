"""Names of the attributes kubefox puts on spans, log records and resources.

One place for every name, so the instrumentation that writes them and the
store that indexes them cannot drift apart. Event attributes keep upstream
KubeFox's names (``kubefox.event.*``, see the behaviour reference §6.1), so a
collector pipeline written for upstream keeps working; the rest follow the
OpenTelemetry semantic conventions where one exists.

The telemetry store indexes four things per record, read from these names:
the event id, the app, the component and the virtual environment. A record's
own attributes win over its resource's, so a role that serves many apps
(httpsrv, the broker) names the app per span, and a component process names
it once in its resource.
"""

from __future__ import annotations

from typing import Final

# -- resource attributes: who produced the record ----------------------------------------

#: The OpenTelemetry service name: the role (``httpsrv``, ``broker``) or, for a
#: component, ``<app>-<component>-<hash>`` as upstream.
SERVICE_NAME: Final = "service.name"
SERVICE_INSTANCE_ID: Final = "service.instance.id"
#: The platform's name (the ``<p>`` of every NATS subject).
PLATFORM: Final = "kubefox.platform"
#: The role of the process: ``httpsrv``, ``broker``, ``operator``, ``api``, ``component``.
ROLE: Final = "kubefox.role"
#: For a component process: its app, name, hash and instance id (upstream's names).
COMPONENT_APP: Final = "kubefox.component.app"
COMPONENT_NAME: Final = "kubefox.component.name"
COMPONENT_HASH: Final = "kubefox.component.hash"
COMPONENT_ID: Final = "kubefox.component.id"

# -- span and log attributes: what the record is about -----------------------------------

#: The event this span or log line belongs to; ``fox trace EVENT_ID`` finds traces by it.
EVENT_ID: Final = "kubefox.event.id"
EVENT_PARENT_ID: Final = "kubefox.event.parent_id"
EVENT_TYPE: Final = "kubefox.event.type"
EVENT_CATEGORY: Final = "kubefox.event.category"
#: The sender of an event the broker routes.
SOURCE_NAME: Final = "kubefox.event.source.name"
SOURCE_APP: Final = "kubefox.event.source.app"
#: The app and component handling the event (set by roles that serve many of them).
APP: Final = "kubefox.app"
COMPONENT: Final = "kubefox.component"
#: The hash of the component handling the event.
HASH: Final = "kubefox.hash"
#: The event's context (upstream's names).
VIRTUAL_ENVIRONMENT: Final = "kubefox.event.context.virtual_environment"
APP_DEPLOYMENT: Final = "kubefox.event.context.app_deployment"
RELEASE_MANIFEST: Final = "kubefox.event.context.release_manifest"
#: The route rule that matched (upstream: ``kubefox.route.id``).
ROUTE_ID: Final = "kubefox.route.id"
#: The kubefox error code of a failed event (``kubefox.core.errors`` codes).
ERROR_CODE: Final = "kubefox.error.code"
#: The HTTP status of the reply (OpenTelemetry semantic conventions).
HTTP_STATUS_CODE: Final = "http.response.status_code"
#: Set to ``True`` on a span at start to force it sampled (``kf-sample=true``).
SAMPLE: Final = "kubefox.sample"
