"""Secrets, certificates and NATS credentials: the security layer's ports and how to open them.

``open_secrets_backend(url)`` returns a backend that is both a
:class:`SecretsBackend` and a :class:`CertificateAuthority`; the backends
themselves live in ``kubefox.security.embedded`` and
``kubefox.security.openbao``. Certificate files and rotation are in
``kubefox.security.certificates``, NATS JWTs in ``kubefox.security.nats_jwt``
and the per-role permission sets in ``kubefox.security.nats_auth``. Those
modules need the ``security`` extra; importing this package does not.
"""

from kubefox.security._open import open_secrets_backend
from kubefox.security.protocol import (
    CertificateAuthority,
    IssuedCertificate,
    SecretDocument,
    SecretsBackend,
    SecurityBackend,
)
from kubefox.security.settings import SecretsSettings

__all__ = [
    "CertificateAuthority",
    "IssuedCertificate",
    "SecretDocument",
    "SecretsBackend",
    "SecretsSettings",
    "SecurityBackend",
    "open_secrets_backend",
]
