"""The public surface of kubefox.security is pinned: changing it is a conscious edit."""

from __future__ import annotations

import subprocess
import sys

import kubefox.security


def test_the_package_exports_exactly_these_names() -> None:
    """Ports, value objects, settings and the opener; backends are imported by module."""
    assert kubefox.security.__all__ == [
        "CertificateAuthority",
        "IssuedCertificate",
        "SecretDocument",
        "SecretsBackend",
        "SecretsSettings",
        "SecurityBackend",
        "open_secrets_backend",
    ]
    for name in kubefox.security.__all__:
        assert getattr(kubefox.security, name) is not None


def test_importing_the_package_loads_no_crypto_or_http_library() -> None:
    """The security extra is needed only by the modules that use it."""
    code = (
        "import sys, kubefox.security; "
        "print(sorted(m for m in ('cryptography', 'nkeys', 'nacl', 'httpx') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30
    )

    assert result.stdout.strip() == "[]"
