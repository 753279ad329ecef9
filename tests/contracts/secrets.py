"""Behaviour every secrets backend and certificate authority must show.

Backends subclass :class:`SecretsContract` and :class:`CertificateAuthorityContract`
and provide a ``backend`` fixture (unit: the embedded files; integration: a real
OpenBao server). Tests write under a fresh ``prefix`` each, so a server shared
by the session never mixes them up.

Certificates are checked with ``cryptography.x509.verification``, the way a TLS
client would, never by comparing strings.
"""

from __future__ import annotations

import ipaddress
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from kubefox.core.errors import ConflictError, InvalidError, NotFoundError
from kubefox.security import IssuedCertificate, SecurityBackend


def certificates(pem: str) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(pem.encode())


def verify_server(issued: IssuedCertificate, name: x509.DNSName | x509.IPAddress) -> None:
    """Raise ``VerificationError`` unless a TLS client trusting the bundle accepts ``name``."""
    leaf, *intermediates = certificates(issued.chain)
    verifier = (
        PolicyBuilder()
        .store(Store(certificates(issued.ca_bundle)))
        .time(datetime.now(UTC))
        .build_server_verifier(name)
    )
    verifier.verify(leaf, intermediates)


def verify_client(issued: IssuedCertificate) -> None:
    leaf, *intermediates = certificates(issued.chain)
    verifier = (
        PolicyBuilder()
        .store(Store(certificates(issued.ca_bundle)))
        .time(datetime.now(UTC))
        .build_client_verifier()
    )
    verifier.verify(leaf, intermediates)


def dns(name: str) -> x509.DNSName:
    return x509.DNSName(name)


def ip(address: str) -> x509.IPAddress:
    return x509.IPAddress(ipaddress.ip_address(address))


class SecretsContract:
    @pytest.fixture
    def prefix(self) -> str:
        """A folder no other test writes to."""
        return f"t{uuid.uuid4().hex[:12]}"

    async def test_put_then_get_returns_the_data_as_version_one(
        self, backend: SecurityBackend, prefix: str
    ) -> None:
        """A new document reads back unchanged, at version 1, with a timezone-aware time."""
        written = await backend.put(f"{prefix}/db", {"password": "s3cret", "port": 5432})

        read = await backend.get(f"{prefix}/db")

        assert written.version == read.version == 1
        assert read.data == {"password": "s3cret", "port": 5432}
        assert read.path == f"{prefix}/db"
        assert read.created_at.tzinfo is not None
        assert abs(read.created_at - datetime.now(UTC)) < timedelta(minutes=1)

    async def test_every_put_is_a_new_version_and_old_ones_stay_readable(
        self, backend: SecurityBackend, prefix: str
    ) -> None:
        """KV v2: versions count up from 1; get(version=n) returns that version."""
        path = f"{prefix}/env/qa"
        versions = [(await backend.put(path, {"v": str(n)})).version for n in range(3)]

        assert versions == [1, 2, 3]
        assert (await backend.get(path)).data == {"v": "2"}
        assert (await backend.get(path, version=1)).data == {"v": "0"}
        assert (await backend.get(path, version=2)).version == 2

    async def test_cas_zero_creates_only_if_absent(
        self, backend: SecurityBackend, prefix: str
    ) -> None:
        """cas=0 is "create": the second one is a conflict and the first value stays."""
        await backend.put(f"{prefix}/a", {"v": "first"}, cas=0)

        with pytest.raises(ConflictError):
            await backend.put(f"{prefix}/a", {"v": "second"}, cas=0)

        assert (await backend.get(f"{prefix}/a")).data == {"v": "first"}

    async def test_cas_must_name_the_current_version(
        self, backend: SecurityBackend, prefix: str
    ) -> None:
        """A put against a stale version is refused; against the current one it succeeds."""
        await backend.put(f"{prefix}/a", {"v": "1"})
        await backend.put(f"{prefix}/a", {"v": "2"})

        with pytest.raises(ConflictError):
            await backend.put(f"{prefix}/a", {"v": "stale"}, cas=1)
        updated = await backend.put(f"{prefix}/a", {"v": "3"}, cas=2)

        assert updated.version == 3
        assert (await backend.get(f"{prefix}/a")).data == {"v": "3"}

    async def test_missing_documents_and_versions_are_not_found(
        self, backend: SecurityBackend, prefix: str
    ) -> None:
        """get raises NotFoundError (a LookupError) for an unknown path or version."""
        await backend.put(f"{prefix}/a", {"v": "1"})

        with pytest.raises(NotFoundError):
            await backend.get(f"{prefix}/missing")
        with pytest.raises(LookupError):
            await backend.get(f"{prefix}/a", version=7)

    async def test_delete_removes_every_version(
        self, backend: SecurityBackend, prefix: str
    ) -> None:
        """After delete nothing is readable, and a new put starts again at version 1."""
        await backend.put(f"{prefix}/a", {"v": "1"})
        await backend.put(f"{prefix}/a", {"v": "2"})

        await backend.delete(f"{prefix}/a")

        with pytest.raises(NotFoundError):
            await backend.get(f"{prefix}/a")
        with pytest.raises(NotFoundError):
            await backend.get(f"{prefix}/a", version=1)
        assert (await backend.put(f"{prefix}/a", {"v": "new"})).version == 1

    async def test_deleting_a_missing_document_is_a_no_op(
        self, backend: SecurityBackend, prefix: str
    ) -> None:
        """delete is idempotent."""
        await backend.delete(f"{prefix}/never")
        await backend.delete(f"{prefix}/never")

    async def test_list_returns_every_path_under_a_prefix_sorted(
        self, backend: SecurityBackend, prefix: str
    ) -> None:
        """Nested paths are listed in full; siblings of the prefix are not."""
        for path in ("env/qa", "env/prod", "env/team/dev", "nats/operator"):
            await backend.put(f"{prefix}/{path}", {"x": "1"})
        await backend.put(f"{prefix}x/env/other", {"x": "1"})

        assert await backend.list(f"{prefix}/env") == [
            f"{prefix}/env/prod",
            f"{prefix}/env/qa",
            f"{prefix}/env/team/dev",
        ]
        assert await backend.list(f"{prefix}/env/") == await backend.list(f"{prefix}/env")
        assert len(await backend.list(prefix)) == 4
        assert await backend.list(f"{prefix}/nothing") == []
        assert {f"{prefix}/nats/operator", f"{prefix}x/env/other"} <= set(await backend.list())

    @pytest.mark.parametrize("path", ["", "/abs", "a//b", "a/../b", "a/./b", "trailing/", "sp ace"])
    async def test_malformed_paths_are_invalid(self, backend: SecurityBackend, path: str) -> None:
        """Paths are segment(/segment)* with safe characters: no escaping surprises."""
        with pytest.raises(InvalidError):
            await backend.put(path, {"x": "1"})
        with pytest.raises(InvalidError):
            await backend.get(path)

    async def test_only_json_objects_are_stored(
        self, backend: SecurityBackend, prefix: str
    ) -> None:
        """Non-JSON values are refused before anything is written, without echoing them."""
        with pytest.raises(InvalidError) as caught:
            await backend.put(f"{prefix}/a", {"when": datetime.now(UTC), "pw": "hunter2"})

        assert "hunter2" not in str(caught.value)
        with pytest.raises(NotFoundError):
            await backend.get(f"{prefix}/a")

    async def test_the_stored_document_is_a_copy(
        self, backend: SecurityBackend, prefix: str
    ) -> None:
        """Changing the caller's dict after put changes nothing stored."""
        data = {"list": ["a"]}
        await backend.put(f"{prefix}/a", data)
        data["list"].append("b")

        assert (await backend.get(f"{prefix}/a")).data == {"list": ["a"]}

    async def test_document_reprs_never_show_the_data(
        self, backend: SecurityBackend, prefix: str
    ) -> None:
        """A document that ends up in a log line shows its path and version only."""
        document = await backend.put(f"{prefix}/a", {"pw": "hunter2"})

        assert "hunter2" not in repr(document)


class CertificateAuthorityContract:
    async def test_a_leaf_verifies_for_its_dns_and_ip_names(self, backend: SecurityBackend) -> None:
        """A client that trusts the CA bundle accepts the chain for each SAN."""
        issued = await backend.issue(
            "kubefox-nats",
            dns_names=["localhost", "nats.kubefox.svc"],
            ip_addresses=["127.0.0.1", "::1"],
            ttl=timedelta(hours=1),
        )

        for name in (dns("kubefox-nats"), dns("localhost"), dns("nats.kubefox.svc")):
            verify_server(issued, name)
        verify_server(issued, ip("127.0.0.1"))
        verify_server(issued, ip("::1"))
        verify_client(issued)

    async def test_a_leaf_does_not_verify_for_other_names(self, backend: SecurityBackend) -> None:
        """Names outside the SANs are refused by the verifier."""
        issued = await backend.issue("kubefox-api", dns_names=["localhost"], ttl=timedelta(hours=1))

        with pytest.raises(VerificationError):
            verify_server(issued, dns("evil.example.com"))
        with pytest.raises(VerificationError):
            verify_server(issued, ip("10.0.0.1"))

    async def test_a_leaf_does_not_verify_against_another_ca(
        self, backend: SecurityBackend, tmp_path_factory: pytest.TempPathFactory
    ) -> None:
        """A throwaway CA's bundle does not vouch for this CA's leaves."""
        from kubefox.security.embedded import EmbeddedSecretsBackend

        other = EmbeddedSecretsBackend(tmp_path_factory.mktemp("other-ca"))
        issued = await backend.issue("kubefox-api", dns_names=["localhost"], ttl=timedelta(hours=1))
        foreign = IssuedCertificate(
            certificate=issued.certificate,
            chain=issued.chain,
            private_key=issued.private_key,
            ca_bundle=await other.ca_bundle(),
            serial=issued.serial,
            not_before=issued.not_before,
            not_after=issued.not_after,
        )

        with pytest.raises(VerificationError):
            verify_server(foreign, dns("localhost"))

    async def test_the_key_belongs_to_the_certificate(self, backend: SecurityBackend) -> None:
        """The private key's public half is the certificate's public key."""
        issued = await backend.issue("kubefox-api", ttl=timedelta(hours=1))

        key = serialization.load_pem_private_key(issued.private_key.encode(), password=None)
        leaf = certificates(issued.certificate)[0]
        assert key.public_key() == leaf.public_key()
        assert "PRIVATE KEY" not in repr(issued)

    async def test_lifetime_serial_and_chain_match_the_certificate(
        self, backend: SecurityBackend
    ) -> None:
        """not_after is ttl from now; serial is the certificate's, in plain hex."""
        before = datetime.now(UTC).replace(microsecond=0)
        issued = await backend.issue("kubefox-httpsrv", ttl=timedelta(minutes=10))

        leaf = certificates(issued.certificate)[0]
        assert issued.serial == format(leaf.serial_number, "x")
        assert issued.not_after == leaf.not_valid_after_utc
        assert issued.not_before == leaf.not_valid_before_utc <= before
        expected = before + timedelta(minutes=10)
        assert (
            expected - timedelta(seconds=2) <= issued.not_after <= expected + timedelta(seconds=5)
        )
        assert certificates(issued.chain)[0] == leaf
        assert len(certificates(issued.chain)) == 2  # leaf + intermediate

    async def test_each_issue_is_a_new_key_and_serial(self, backend: SecurityBackend) -> None:
        """Two certificates for the same names share nothing secret."""
        one = await backend.issue("kubefox-api", ttl=timedelta(hours=1))
        two = await backend.issue("kubefox-api", ttl=timedelta(hours=1))

        assert one.serial != two.serial
        assert one.private_key != two.private_key
        assert one.ca_bundle == two.ca_bundle == await backend.ca_bundle()

    async def test_revoked_serials_are_on_the_signed_crl(self, backend: SecurityBackend) -> None:
        """After revoke, the CRL (signed by the issuing CA) lists the serial; others are not."""
        kept = await backend.issue("kubefox-api", ttl=timedelta(hours=1))
        revoked = await backend.issue("kubefox-api", ttl=timedelta(hours=1))

        await backend.revoke(revoked.serial)
        await backend.revoke(revoked.serial)  # idempotent

        crl = x509.load_pem_x509_crl((await backend.crl()).encode())
        issuer = certificates(revoked.chain)[1]
        public_key = issuer.public_key()
        assert isinstance(public_key, ec.EllipticCurvePublicKey)
        assert crl.is_signature_valid(public_key)
        assert crl.get_revoked_certificate_by_serial_number(int(revoked.serial, 16)) is not None
        assert crl.get_revoked_certificate_by_serial_number(int(kept.serial, 16)) is None

    async def test_revoking_an_unknown_serial_is_not_found(self, backend: SecurityBackend) -> None:
        """Only certificates this CA issued can be revoked."""
        with pytest.raises(NotFoundError):
            await backend.revoke("1234abcd")

    @pytest.mark.parametrize(
        ("common_name", "dns_names", "ips", "ttl"),
        [
            ("bad name", (), (), timedelta(hours=1)),
            ("ok", ("-leading.dash",), (), timedelta(hours=1)),
            ("ok", (), ("999.1.1.1",), timedelta(hours=1)),
            ("ok", (), (), timedelta(0)),
        ],
    )
    async def test_malformed_requests_are_invalid(
        self,
        backend: SecurityBackend,
        common_name: str,
        dns_names: tuple[str, ...],
        ips: tuple[str, ...],
        ttl: timedelta,
    ) -> None:
        """Names, addresses and the lifetime are checked before the CA is asked."""
        with pytest.raises(InvalidError):
            await backend.issue(common_name, dns_names=dns_names, ip_addresses=ips, ttl=ttl)
