"""The public surface of kubefox.adapters.http is pinned: changing it is a conscious edit."""

from __future__ import annotations

from kubefox.adapters import http


def test_http_adapter_exports_exactly_the_pinned_names() -> None:
    """__all__ is sorted (ruff's order), importable, and exactly this list."""
    names = http.__all__

    assert names == sorted(names, key=lambda n: (not n.isupper(), not n[:1].isupper(), n))
    assert all(hasattr(http, name) for name in names)
    assert names == [
        "HEALTH_PATH",
        "STRIPPED_PARAMS",
        "HttpAdapter",
        "HttpResponse",
        "HttpServer",
        "HttpsrvSettings",
        "Limits",
        "Requester",
        "adapter_identity",
        "canonical_header",
        "error_response",
        "kubefox_headers",
        "reply_response",
        "request_event",
    ]
