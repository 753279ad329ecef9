"""The routing library used by httpsrv and the broker."""

from kubefox.router.contexts import ResolvedContext, RouteTarget, build_matcher
from kubefox.router.router import Routed, Router
from kubefox.router.view import ResourceView

__all__ = ["ResolvedContext", "ResourceView", "RouteTarget", "Routed", "Router", "build_matcher"]
