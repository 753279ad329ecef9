"""The public surface of kubefox.api is curated and pinned; its settings read KUBEFOX_API_*."""

from __future__ import annotations

import pytest

from kubefox import api
from kubefox.api import ApiSettings


def test_api_all_is_pinned_sorted_and_importable() -> None:
    """Changing the API package's surface is a conscious edit of this list."""
    assert api.__all__ == [
        "APPLY_HEADER",
        "PREFIX",
        "PROBLEM_MEDIA_TYPE",
        "ApiServer",
        "ApiSettings",
        "ApplyResult",
        "ResourceService",
        "create_app",
        "error_from_problem",
        "parse_label_selector",
        "problem_document",
    ]
    assert all(hasattr(api, name) for name in api.__all__)


def test_api_settings_read_the_environment_and_describe_every_field(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """KUBEFOX_API_PORT configures the port; every setting is documented."""
    monkeypatch.setenv("KUBEFOX_API_PORT", "8081")

    settings = ApiSettings()

    assert settings.port == 8081
    assert all(field.description for field in ApiSettings.model_fields.values())
