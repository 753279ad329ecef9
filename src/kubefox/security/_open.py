"""Pick a secrets backend from a URL or :class:`SecretsSettings`.

``embedded:///abs/state/dir`` is :class:`EmbeddedSecretsBackend`;
``openbao://host:port`` (``openbao+https://`` for TLS) is
:class:`OpenBaoBackend`. The backends are imported only when chosen.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from kubefox.core.errors import InvalidError
from kubefox.security.protocol import SecurityBackend
from kubefox.security.settings import (
    DEFAULT_KV_MOUNT,
    DEFAULT_PKI_MOUNT,
    DEFAULT_ROLE,
    DEFAULT_ROOT_MOUNT,
    SecretsSettings,
)

_OPENBAO_PARAMETERS = {"token", "kv_mount", "pki_mount", "root_mount", "role", "ca_file"}


async def open_secrets_backend(target: str | SecretsSettings) -> SecurityBackend:
    """Open the secrets backend and certificate authority named by ``target``.

    Raises:
        InvalidError: unknown scheme, unknown parameter, relative path or no token.
        UnavailableError: an OpenBao server does not answer.
    """
    settings = target if isinstance(target, SecretsSettings) else SecretsSettings(url=target)
    parts = urlsplit(settings.url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    if parts.scheme == "embedded":
        from kubefox.security.embedded import EmbeddedSecretsBackend

        if parts.netloc or not parts.path.startswith("/") or query:
            raise InvalidError(
                "an embedded secrets url is embedded:///absolute/state/dir", url=_safe(settings)
            )
        return EmbeddedSecretsBackend(Path(parts.path))
    if parts.scheme in {"openbao", "openbao+https"}:
        from kubefox.security.openbao import OpenBaoBackend

        unknown = sorted(set(query) - _OPENBAO_PARAMETERS)
        if unknown:
            raise InvalidError(
                "unknown secrets url parameters", url=_safe(settings), parameters=unknown
            )
        token = settings.token.get_secret_value() if settings.token else query.get("token")
        if not token:
            raise InvalidError("an openbao secrets backend needs a token", url=_safe(settings))
        ca_file = settings.ca_file or (Path(query["ca_file"]) if "ca_file" in query else None)
        http = "https" if parts.scheme.endswith("+https") else "http"
        return await OpenBaoBackend.connect(
            f"{http}://{parts.netloc}",
            token=token,
            kv_mount=settings.kv_mount or query.get("kv_mount", DEFAULT_KV_MOUNT),
            pki_mount=settings.pki_mount or query.get("pki_mount", DEFAULT_PKI_MOUNT),
            root_mount=settings.root_mount or query.get("root_mount", DEFAULT_ROOT_MOUNT),
            role=settings.role or query.get("role", DEFAULT_ROLE),
            verify=str(ca_file) if ca_file else True,
        )
    raise InvalidError(f"no secrets backend for scheme {parts.scheme!r}", url=_safe(settings))


def _safe(settings: SecretsSettings) -> str:
    # The url may carry a token: errors show it without the query.
    parts = urlsplit(settings.url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"
