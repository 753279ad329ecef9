"""Where secrets and certificates come from: nested settings for every process that needs them.

A process's settings embed a :class:`SecretsSettings` (``KUBEFOX_<PROCESS>_SECRETS__URL``
and so on); :func:`~kubefox.security.open_secrets_backend` turns it into a
backend. The token is a ``SecretStr``, so it never shows in a repr or a log.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from kubefox.core.nats_options import NatsConnectOptions

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


class NatsClientSettings(BaseModel):
    """The NATS connection fields of a process's settings: where, trusting what, as whom.

    Mixed into the settings of every process that connects on its own (broker,
    httpsrv); each declares its own ``nats_url`` default and description.
    """

    nats_url: str = Field(min_length=1, description="NATS server URL(s), comma separated.")
    nats_ca_file: Path | None = Field(
        default=None,
        description="CA bundle that verifies the NATS server's TLS certificate; unset: no TLS.",
    )
    nats_creds_file: Path | None = Field(
        default=None,
        description="NATS user credential (.creds: JWT and seed) when the server runs in "
        "operator mode.",
    )
    nats_inbox_prefix: str | None = Field(
        default=None,
        description="Inbox prefix the credential allows replies on "
        "(_INBOX.<platform>.<role>.<id>); unset: nats-py's default.",
    )

    def nats_options(self, name: str) -> NatsConnectOptions:
        """How to connect to NATS as these settings say, naming the connection ``name``."""
        return NatsConnectOptions(
            url=self.nats_url,
            name=name,
            ca_file=self.nats_ca_file,
            creds_file=self.nats_creds_file,
            inbox_prefix=self.nats_inbox_prefix,
        )
