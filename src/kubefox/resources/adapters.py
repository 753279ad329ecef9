"""``HTTPAdapter``: a named external HTTP endpoint components may depend on.

The URL and header values are templates (``{{.Vars.x}}``, ``{{.Env.x}}``,
``{{.Secrets.x}}``) resolved per request against the context's data, which is
the only place secrets ever reach: components never see them.
"""

from __future__ import annotations

import enum
from typing import Literal

from pydantic import Field

from kubefox.resources.meta import API_VERSION, Details, KubeFoxModel, ObjectMeta


class FollowRedirects(enum.StrEnum):
    """Whether the adapter follows HTTP redirects, and where to."""

    NEVER = "Never"
    ALWAYS = "Always"
    SAME_HOST = "SameHost"


class HTTPAdapterSpec(KubeFoxModel):
    """Where requests go and how: URL and header templates, TLS and redirect rules."""

    url: str = Field(min_length=1)
    headers: dict[str, str] = Field(default_factory=dict)
    insecure_skip_verify: bool = False
    follow_redirects: FollowRedirects = FollowRedirects.NEVER


class HTTPAdapter(KubeFoxModel):
    """A named external HTTP endpoint."""

    api_version: Literal["kubefox.xigxog.io/v1alpha1"] = API_VERSION
    kind: Literal["HTTPAdapter"] = "HTTPAdapter"
    metadata: ObjectMeta
    spec: HTTPAdapterSpec
    details: Details | None = None
