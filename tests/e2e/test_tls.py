"""TLS on by default: ``fox`` over the HTTPS API, httpsrv on HTTP and HTTPS, the platform CA.

The real ``fox`` executable against a platform it started with ``fox up``
(security is on by default): ``fox status`` and ``fox get`` work with no
option (the CA is found in the state directory), a ``fox`` that does not know
the CA fails with an error saying what to do, and ``--ca-file`` or
``KUBEFOX_CA_FILE`` fix it. The same platform in-process shows the servers
presenting certificates from its CA.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import ssl
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from cryptography import x509

from kubefox.platform import EmbeddedPlatform, PlatformSettings
from kubefox.testing import HttpClient
from tests.e2e.foxes import FOX, fox, running_fox

pytestmark = pytest.mark.e2e


async def served_certificate(url: str, ca_file: Path | None) -> x509.Certificate:
    """The leaf a fresh handshake with ``url`` gets, verified against ``ca_file``."""
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    # A blocking handshake, off the loop the servers run in.
    return await asyncio.to_thread(_handshake, url, context)


def _handshake(url: str, context: ssl.SSLContext) -> x509.Certificate:
    parts = urlsplit(url)
    assert parts.hostname is not None
    assert parts.port is not None
    with (
        socket.create_connection((parts.hostname, parts.port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=parts.hostname) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def fox_without_state(*args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    """``fox ARGS`` with an empty state directory (a remote platform's user); its stderr."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("KUBEFOX_")}
    environ |= {"KUBEFOX_PLATFORM_STATE_DIR": str(cwd / "elsewhere"), "NO_COLOR": "1"}
    environ |= env or {}
    done = subprocess.run(
        [FOX, *args], cwd=cwd, env=environ, capture_output=True, text=True, check=False, timeout=60
    )
    return f"{done.returncode}\n{done.stderr}"


def test_fox_talks_to_the_https_api_and_needs_the_ca_elsewhere(tmp_path: Path) -> None:
    """fox up serves the API over HTTPS only; fox finds the CA next to the platform, and a
    fox elsewhere is refused until it is given the CA."""
    state = tmp_path / "state"
    with running_fox(state, tmp_path) as up:
        endpoints = up["endpoints"]
        api, ca_file = endpoints["api"], Path(endpoints["caFile"])
        status = fox("status", cwd=tmp_path, state_dir=state)
        status_json = json.loads(
            fox("status", "-o", "json", cwd=tmp_path, state_dir=state, check=True).stdout
        )
        got = fox("get", "platform", "-o", "json", cwd=tmp_path, state_dir=state)
        untrusted = fox_without_state("status", "--api", api, cwd=tmp_path)
        with_option = fox_without_state(
            "--ca-file", str(ca_file), "get", "environments", "--api", api, cwd=tmp_path
        )
        with_env = fox_without_state(
            "get", "environments", "--api", api, cwd=tmp_path, env={"KUBEFOX_CA_FILE": str(ca_file)}
        )
        plain_api = fox_without_state(
            "status", "--api", api.replace("https://", "http://"), cwd=tmp_path
        )
        # the README's curl commands: plain HTTP still answers, HTTPS answers with the CA
        with httpx.Client(timeout=10) as plain:
            health = plain.get(f"{endpoints['http']}/_kf/health")
        with httpx.Client(timeout=10, verify=ssl.create_default_context(cafile=ca_file)) as tls:
            secure_health = tls.get(f"{endpoints['https']}/_kf/health")
        with httpx.Client(timeout=10) as no_ca, pytest.raises(httpx.ConnectError):
            no_ca.get(f"{endpoints['https']}/_kf/health")

    assert api.startswith("https://")
    assert endpoints["https"].startswith("https://")
    assert endpoints["http"].startswith("http://")
    assert ca_file == state.resolve() / "security" / "tls" / "ca.crt"
    assert status.returncode == 0, status.stderr
    assert f"CA {ca_file}" in status.stdout
    assert {p["name"]: p["healthy"] for p in status_json["parts"]}["https"] is True
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["items"][0]["kind"] == "Platform"
    code, _, message = untrusted.partition("\n")
    assert code == "3"
    assert "presented a certificate" in message
    assert "--ca-file" in message
    assert "Traceback" not in message
    assert with_option.startswith("0\n"), with_option
    assert with_env.startswith("0\n"), with_env
    assert plain_api.startswith("3\n")
    assert "Traceback" not in plain_api
    assert (health.status_code, secure_health.status_code) == (200, 200)


async def test_the_platform_serves_certificates_from_its_ca(tmp_path: Path) -> None:
    """httpsrv's HTTPS listener and the API present leaves of the platform's CA; the
    plain listener stays, and the CA file is the one clients are told about."""
    settings = PlatformSettings(state_dir=tmp_path / "state", shutdown_grace=3.0)
    async with EmbeddedPlatform(settings) as platform:
        ca_file = platform.security.ca_file
        endpoints = platform.endpoints()
        https_url = platform.https_url
        assert https_url is not None
        httpsrv_leaf = await served_certificate(https_url, ca_file)
        api_leaf = await served_certificate(platform.api_url, ca_file)
        async with httpx.AsyncClient(timeout=10) as plain:
            answered = await plain.get(f"{platform.http_url}/_kf/health")
        with pytest.raises(ssl.SSLCertVerificationError):
            await served_certificate(https_url, None)  # the system's trust store
        written = json.loads((tmp_path / "state" / "endpoints.json").read_text())

    # Verified against ca_file by the handshakes; and they are the files the CA issued.
    tls_dir = ca_file.parent
    for leaf, name in ((httpsrv_leaf, "httpsrv"), (api_leaf, "api")):
        issued = x509.load_pem_x509_certificates((tls_dir / f"{name}.crt").read_bytes())[0]
        assert leaf.serial_number == issued.serial_number
    assert "kubefox-httpsrv" in str(httpsrv_leaf.subject)
    assert "kubefox-api" in str(api_leaf.subject)
    assert answered.status_code == 200
    assert endpoints["caFile"] == str(ca_file) == written["caFile"]
    assert written["https"] == https_url
    assert written["api"].startswith("https://")


async def test_security_off_serves_plain_http_only(tmp_path: Path) -> None:
    """With security off there is no HTTPS listener, the API is plain, and nothing names a CA."""
    settings = PlatformSettings(state_dir=tmp_path / "state", shutdown_grace=3.0, security=False)
    async with EmbeddedPlatform(settings) as platform:
        endpoints = platform.endpoints()
        https_url = platform.https_url
        api_url = platform.api_url

    assert https_url is None
    assert api_url.startswith("http://")
    assert "https" not in endpoints
    assert "caFile" not in endpoints


def test_a_missing_ca_file_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    """--ca-file naming something that is no PEM bundle says so."""
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")

    out = fox_without_state(
        "--ca-file", str(bad), "status", "--api", "https://127.0.0.1:1", cwd=tmp_path
    )

    code, _, message = out.partition("\n")
    assert code == "1"
    assert "cannot read the CA file" in message
    assert "Traceback" not in message


async def test_the_https_fixture_trusts_the_platform_ca(kubefox_https: HttpClient) -> None:
    """kubefox_https reaches httpsrv's HTTPS listener, verifying it against the platform's CA."""
    response = await kubefox_https.get("/_kf/health")

    assert str(kubefox_https.base_url).startswith("https://")
    assert (response.status_code, response.text) == (200, "ok")
