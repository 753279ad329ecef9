"""X.509 for the embedded certificate authority: roots, intermediates, leaves and CRLs.

This is the only module that builds or parses certificates (import-linter:
only ``kubefox.security.pki`` and ``kubefox.security.sealing`` import
``cryptography``). Everything goes in and out as PEM text, so callers never
touch a ``cryptography`` object.

Keys are EC P-256: fast to generate (about 12,000 leaves a second here), and
accepted by nats-server, uvicorn and every TLS client we use. Certificates
follow the Web PKI profile that ``cryptography.x509.verification`` enforces:
CA certificates carry critical basic constraints and ``keyCertSign``, every
certificate names its subject and authority key identifiers, and leaves carry
subject alternative names and both server and client authentication.

``not_before`` is set :data:`BACKDATE` in the past, as OpenBao does, so a peer
whose clock is slightly behind still accepts a certificate issued a moment ago.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kubefox.core.errors import InvalidError
from kubefox.security.protocol import IssuedCertificate, check_names

#: How far into the past ``not_before`` is set.
BACKDATE = timedelta(seconds=30)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CaMaterial:
    """A CA certificate and its private key (PEM)."""

    certificate: str
    private_key: str = dataclasses.field(repr=False)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CertificateInfo:
    """What the platform needs to know about a certificate it holds."""

    serial: str
    common_name: str
    issuer: str
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]
    not_before: datetime
    not_after: datetime
    is_ca: bool


def create_root(common_name: str, *, ttl: timedelta, now: datetime | None = None) -> CaMaterial:
    """A self-signed root CA valid for ``ttl``."""
    now = _now(now)
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(common_name)
    builder = _ca_builder(
        name,
        name,
        public_key=key.public_key(),
        issuer_public_key=key.public_key(),
        now=now,
        ttl=ttl,
        path_length=1,
    )
    return _material(builder.sign(key, hashes.SHA256()), key)


def create_intermediate(
    issuer: CaMaterial, common_name: str, *, ttl: timedelta, now: datetime | None = None
) -> CaMaterial:
    """An intermediate CA signed by ``issuer``, allowed to issue leaves only."""
    now = _now(now)
    issuer_cert, issuer_key = _load(issuer)
    key = ec.generate_private_key(ec.SECP256R1())
    builder = _ca_builder(
        _name(common_name),
        issuer_cert.subject,
        public_key=key.public_key(),
        issuer_public_key=issuer_key.public_key(),
        now=now,
        ttl=min(ttl, issuer_cert.not_valid_after_utc - now),
        path_length=0,
    )
    return _material(builder.sign(issuer_key, hashes.SHA256()), key)


def issue_leaf(
    issuer: CaMaterial,
    common_name: str,
    *,
    dns_names: Sequence[str] = (),
    ip_addresses: Sequence[str] = (),
    ttl: timedelta,
    ca_bundle: str,
    now: datetime | None = None,
) -> IssuedCertificate:
    """A new EC key and a leaf certificate signed by ``issuer``.

    ``chain`` in the result is the leaf followed by ``issuer``'s certificate;
    ``ca_bundle`` is passed through as the trust anchors.

    Raises:
        InvalidError: a name or address is malformed, ``ttl`` is not positive, or
            ``issuer`` has expired.
    """
    names, addresses = check_names(common_name, dns_names, ip_addresses, ttl)
    now = _now(now)
    issuer_cert, issuer_key = _load(issuer)
    if issuer_cert.not_valid_after_utc <= now:
        raise InvalidError(
            "the issuing CA has expired", not_after=issuer_cert.not_valid_after_utc.isoformat()
        )
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    sans += [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]
    not_after = min(now + ttl, issuer_cert.not_valid_after_utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(issuer_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
        .sign(issuer_key, hashes.SHA256())
    )
    leaf_pem = _pem(certificate)
    return IssuedCertificate(
        certificate=leaf_pem,
        chain=leaf_pem + issuer.certificate,
        private_key=_key_pem(key),
        ca_bundle=ca_bundle,
        serial=format(certificate.serial_number, "x"),
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
    )


def build_crl(
    issuer: CaMaterial,
    revoked: Mapping[str, datetime],
    *,
    next_update: timedelta,
    now: datetime | None = None,
) -> str:
    """A CRL signed by ``issuer`` listing the ``revoked`` serials (hex) with their times."""
    now = _now(now)
    issuer_cert, issuer_key = _load(issuer)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer_cert.subject)
        .last_update(now)
        .next_update(now + next_update)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    )
    for serial, when in sorted(revoked.items()):
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(int(serial, 16))
            .revocation_date(when)
            .build()
        )
    return (
        builder.sign(issuer_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()
    )


def certificate_info(pem: str) -> CertificateInfo:
    """Read the first certificate of ``pem``.

    Raises:
        InvalidError: ``pem`` holds no certificate.
    """
    try:
        certificate = x509.load_pem_x509_certificates(pem.encode())[0]
    except (ValueError, IndexError) as exc:
        raise InvalidError("not a PEM certificate") from exc
    try:
        sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = tuple(sans.get_values_for_type(x509.DNSName))
        ips = tuple(str(ip) for ip in sans.get_values_for_type(x509.IPAddress))
    except x509.ExtensionNotFound:
        dns, ips = (), ()
    try:
        constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints).value
        is_ca = constraints.ca
    except x509.ExtensionNotFound:
        is_ca = False
    return CertificateInfo(
        serial=format(certificate.serial_number, "x"),
        common_name=_common_name(certificate.subject),
        issuer=_common_name(certificate.issuer),
        dns_names=dns,
        ip_addresses=ips,
        not_before=certificate.not_valid_before_utc,
        not_after=certificate.not_valid_after_utc,
        is_ca=is_ca,
    )


def split_pem(pem: str) -> list[str]:
    """The PEM blocks of certificates in ``pem``, each normalised, in order."""
    return [_pem(c) for c in x509.load_pem_x509_certificates(pem.encode())] if pem.strip() else []


def _ca_builder(
    subject: x509.Name,
    issuer: x509.Name,
    *,
    public_key: ec.EllipticCurvePublicKey,
    issuer_public_key: ec.EllipticCurvePublicKey,
    now: datetime,
    ttl: timedelta,
    path_length: int,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + ttl)
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public_key), critical=False
        )
    )


def _load(material: CaMaterial) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    certificate = x509.load_pem_x509_certificate(material.certificate.encode())
    key = serialization.load_pem_private_key(material.private_key.encode(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise InvalidError("the CA key is not an EC key", kind=type(key).__name__)
    return certificate, key


def _material(certificate: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> CaMaterial:
    return CaMaterial(certificate=_pem(certificate), private_key=_key_pem(key))


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _common_name(name: x509.Name) -> str:
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    value = values[0].value if values else ""
    return value if isinstance(value, str) else value.decode()


def _pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _now(now: datetime | None) -> datetime:
    # X.509 times have whole seconds; dropping the fraction keeps the dates we
    # report equal to the ones in the certificate.
    return (now or datetime.now(UTC)).replace(microsecond=0)
