"""open_secrets_backend: schemes, parameters and errors that never show a token."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubefox.core.errors import InvalidError
from kubefox.security import SecretsSettings, open_secrets_backend
from kubefox.security.embedded import EmbeddedSecretsBackend


async def test_embedded_urls_open_the_state_directory(tmp_path: Path) -> None:
    """embedded:///abs/dir is the file backend rooted there."""
    backend = await open_secrets_backend(f"embedded://{tmp_path}")

    assert isinstance(backend, EmbeddedSecretsBackend)
    assert backend.state_dir == tmp_path


@pytest.mark.parametrize(
    "url",
    ["embedded://relative/dir", "embedded:///abs?x=1", "vault://h:1", "file:///tmp", "nonsense"],
)
async def test_malformed_or_unknown_urls_are_invalid(url: str) -> None:
    """Only embedded:///absolute and openbao[+https]://host:port are understood."""
    with pytest.raises(InvalidError):
        await open_secrets_backend(url)


async def test_openbao_needs_a_token_and_known_parameters() -> None:
    """Both are refused before any connection is tried; the error hides the query."""
    with pytest.raises(InvalidError, match="token"):
        await open_secrets_backend("openbao://127.0.0.1:1")
    with pytest.raises(InvalidError) as caught:
        await open_secrets_backend("openbao://127.0.0.1:1?token=s3cret&mount=x")

    assert "s3cret" not in str(caught.value)
    assert "s3cret" not in repr(caught.value.details)


def test_settings_hide_the_token() -> None:
    """The token is a SecretStr: repr and dumps show it masked."""
    settings = SecretsSettings(url="openbao://h:8200", token="s3cret")  # noqa: S106

    assert "s3cret" not in repr(settings)
    assert "s3cret" not in settings.model_dump_json()
