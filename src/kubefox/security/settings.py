"""Where secrets and certificates come from: nested settings for every process that needs them.

A process's settings embed a :class:`SecretsSettings` (``KUBEFOX_<PROCESS>_SECRETS__URL``
and so on); :func:`~kubefox.security.open_secrets_backend` turns it into a
backend. The token is a ``SecretStr``, so it never shows in a repr or a log.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr

#: Defaults of the OpenBao backend (upstream mounts per instance under ``kubefox/``).
DEFAULT_KV_MOUNT = "kubefox/kv"
DEFAULT_PKI_MOUNT = "kubefox/pki"
DEFAULT_ROOT_MOUNT = "kubefox/pki-root"
DEFAULT_ROLE = "kubefox"


class SecretsSettings(BaseModel):
    """Which secrets backend and certificate authority to use."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str = Field(
        min_length=1,
        description="embedded:///<state dir> (files in the state directory), "
        "openbao://host:port or openbao+https://host:port (OpenBao or Vault). "
        "Query parameters token, kv_mount, pki_mount, root_mount, role and ca_file "
        "are accepted too; the fields below win over them.",
    )
    token: SecretStr | None = Field(default=None, description="OpenBao/Vault token (never logged).")
    ca_file: Path | None = Field(
        default=None, description="CA bundle that verifies an openbao+https server."
    )
    kv_mount: str | None = Field(
        default=None, description=f"KV v2 mount for secrets (default {DEFAULT_KV_MOUNT})."
    )
    pki_mount: str | None = Field(
        default=None,
        description=f"PKI mount of the issuing intermediate CA (default {DEFAULT_PKI_MOUNT}).",
    )
    root_mount: str | None = Field(
        default=None, description=f"PKI mount of the root CA (default {DEFAULT_ROOT_MOUNT})."
    )
    role: str | None = Field(
        default=None, description=f"PKI role leaves are issued through (default {DEFAULT_ROLE})."
    )
