"""pki: the embedded CA's certificates, checked with cryptography's own verifier."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from kubefox.core.errors import InvalidError
from kubefox.security import pki


@pytest.fixture(scope="module")
def root() -> pki.CaMaterial:
    return pki.create_root("Test Root", ttl=timedelta(days=30))


@pytest.fixture(scope="module")
def intermediate(root: pki.CaMaterial) -> pki.CaMaterial:
    return pki.create_intermediate(root, "Test Intermediate", ttl=timedelta(days=10))


def load(pem: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(pem.encode())


def test_the_root_and_intermediate_are_cas_with_the_right_path_lengths(
    root: pki.CaMaterial, intermediate: pki.CaMaterial
) -> None:
    """root: CA, may sign one more CA; intermediate: CA, may sign leaves only."""
    root_cert, inter_cert = load(root.certificate), load(intermediate.certificate)

    root_bc = root_cert.extensions.get_extension_for_class(x509.BasicConstraints)
    inter_bc = inter_cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert root_bc.critical
    assert inter_bc.critical
    assert (root_bc.value.ca, root_bc.value.path_length) == (True, 1)
    assert (inter_bc.value.ca, inter_bc.value.path_length) == (True, 0)
    assert inter_cert.issuer == root_cert.subject
    inter_cert.verify_directly_issued_by(root_cert)
    assert "PRIVATE" not in repr(root)


def test_an_intermediate_never_outlives_its_root(root: pki.CaMaterial) -> None:
    """Asking for more than the root has left gets the root's end."""
    long = pki.create_intermediate(root, "Long", ttl=timedelta(days=3650))

    assert load(long.certificate).not_valid_after_utc == load(root.certificate).not_valid_after_utc


def test_a_leaf_verifies_through_the_intermediate(
    root: pki.CaMaterial, intermediate: pki.CaMaterial
) -> None:
    """Root in the store, intermediate from the chain: the leaf is a valid server certificate."""
    issued = pki.issue_leaf(
        intermediate,
        "svc",
        dns_names=["localhost"],
        ip_addresses=["127.0.0.1"],
        ttl=timedelta(hours=1),
        ca_bundle=root.certificate,
    )
    leaf, inter = x509.load_pem_x509_certificates(issued.chain.encode())
    verifier = (
        PolicyBuilder()
        .store(Store([load(root.certificate)]))
        .build_server_verifier(x509.DNSName("localhost"))
    )

    chain = verifier.verify(leaf, [inter])

    assert [c.subject for c in chain] == [
        leaf.subject,
        inter.subject,
        load(root.certificate).subject,
    ]
    assert issued.ca_bundle == root.certificate


def test_a_leaf_is_not_valid_after_its_lifetime(
    root: pki.CaMaterial, intermediate: pki.CaMaterial
) -> None:
    """A verifier looking past not_after refuses the chain."""
    issued = pki.issue_leaf(
        intermediate, "svc", ttl=timedelta(minutes=5), ca_bundle=root.certificate
    )
    leaf, inter = x509.load_pem_x509_certificates(issued.chain.encode())
    verifier = (
        PolicyBuilder()
        .store(Store([load(root.certificate)]))
        .time(datetime.now(UTC) + timedelta(minutes=6))
        .build_server_verifier(x509.DNSName("svc"))
    )

    with pytest.raises(VerificationError):
        verifier.verify(leaf, [inter])


def test_not_before_is_backdated_for_clock_skew(
    root: pki.CaMaterial, intermediate: pki.CaMaterial
) -> None:
    """A peer whose clock is a few seconds behind still accepts a fresh certificate."""
    now = datetime.now(UTC).replace(microsecond=700000) + timedelta(days=1)
    issued = pki.issue_leaf(
        intermediate, "svc", ttl=timedelta(hours=1), ca_bundle=root.certificate, now=now
    )

    whole = now.replace(microsecond=0)
    assert issued.not_before == whole - timedelta(seconds=30)
    assert issued.not_after == whole + timedelta(hours=1)


def test_an_expired_issuer_cannot_issue(root: pki.CaMaterial, intermediate: pki.CaMaterial) -> None:
    """Past the intermediate's end there is nothing valid to sign."""
    with pytest.raises(InvalidError, match="expired"):
        pki.issue_leaf(
            intermediate,
            "svc",
            ttl=timedelta(hours=1),
            ca_bundle=root.certificate,
            now=datetime.now(UTC) + timedelta(days=11),
        )


def test_certificate_info_reads_names_lifetime_and_serial(
    root: pki.CaMaterial, intermediate: pki.CaMaterial
) -> None:
    """What rotation and diagnostics need, without touching cryptography."""
    issued = pki.issue_leaf(
        intermediate,
        "svc",
        dns_names=["localhost", "svc"],
        ip_addresses=["::1"],
        ttl=timedelta(hours=1),
        ca_bundle=root.certificate,
    )

    info = pki.certificate_info(issued.chain)

    assert info.serial == issued.serial
    assert info.common_name == "svc"
    assert info.issuer == "Test Intermediate"
    assert info.dns_names == ("svc", "localhost")
    assert info.ip_addresses == ("::1",)
    assert (info.not_before, info.not_after) == (issued.not_before, issued.not_after)
    assert not info.is_ca
    assert pki.certificate_info(root.certificate).is_ca


def test_certificate_info_of_garbage_is_invalid() -> None:
    """Not a certificate: InvalidError, not a cryptography exception."""
    with pytest.raises(InvalidError):
        pki.certificate_info("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    with pytest.raises(InvalidError):
        pki.certificate_info("")


def test_the_crl_is_signed_by_the_issuer_and_lists_the_serials(
    intermediate: pki.CaMaterial,
) -> None:
    """Each revoked serial appears with its time; the signature checks out."""
    when = datetime(2030, 1, 1, tzinfo=UTC)
    crl = x509.load_pem_x509_crl(
        pki.build_crl(intermediate, {"abc123": when}, next_update=timedelta(days=1)).encode()
    )
    public_key = load(intermediate.certificate).public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey)

    assert crl.is_signature_valid(public_key)
    entry = crl.get_revoked_certificate_by_serial_number(0xABC123)
    assert entry is not None
    assert entry.revocation_date_utc == when
    assert len(crl) == 1


def test_split_pem_returns_each_certificate(
    root: pki.CaMaterial, intermediate: pki.CaMaterial
) -> None:
    """A bundle splits into its certificates, in order; empty text into none."""
    assert pki.split_pem(intermediate.certificate + root.certificate) == [
        intermediate.certificate,
        root.certificate,
    ]
    assert pki.split_pem("  \n") == []
