"""Encrypt a file with a key kept beside it: the embedded secrets store's at-rest protection.

AES-256-GCM with a random 96-bit nonce per write. The key file (32 random
bytes, mode ``0600``) is created on first use. The sealed file is
``MAGIC || nonce || ciphertext+tag``; the magic doubles as associated data, so
a file of another format or version never decrypts by accident. Writes are
atomic (:func:`~kubefox.security.private_files.write_atomic`).

The key sits next to the data on the same disk: this protects against the
secrets file being copied, backed up or shown on its own, not against someone
who can read the whole state directory. Point ``key_file`` elsewhere (a
mounted secret, a different disk) to separate them.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kubefox.core.errors import InvalidError
from kubefox.security.private_files import PRIVATE, ensure_private_dir, write_atomic

MAGIC = b"KFSEAL1\n"
_NONCE = 12
_KEY = 32


class SealedFile:
    """Bytes kept encrypted in ``path`` under the key in ``key_file``."""

    def __init__(self, path: Path, key_file: Path) -> None:
        self.path = path
        self.key_file = key_file

    def load(self) -> bytes | None:
        """The decrypted contents, or ``None`` if the file does not exist yet.

        Raises:
            InvalidError: the file is not ours, was altered, or the key is wrong.
        """
        try:
            sealed = self.path.read_bytes()
        except FileNotFoundError:
            return None
        if not sealed.startswith(MAGIC) or len(sealed) < len(MAGIC) + _NONCE:
            raise InvalidError(f"{self.path} is not a sealed kubefox file")
        nonce = sealed[len(MAGIC) : len(MAGIC) + _NONCE]
        try:
            return AESGCM(self._key()).decrypt(nonce, sealed[len(MAGIC) + _NONCE :], MAGIC)
        except InvalidTag as exc:
            raise InvalidError(
                f"{self.path} does not decrypt with {self.key_file}: altered or another key"
            ) from exc

    def save(self, data: bytes) -> None:
        """Encrypt ``data`` and replace the file atomically."""
        nonce = os.urandom(_NONCE)
        sealed = MAGIC + nonce + AESGCM(self._key()).encrypt(nonce, data, MAGIC)
        ensure_private_dir(self.path.parent)
        write_atomic(self.path, sealed, mode=PRIVATE)

    def _key(self) -> bytes:
        try:
            key = self.key_file.read_bytes()
        except FileNotFoundError:
            if self.path.exists():
                # A new key would make the existing file unreadable for good.
                raise InvalidError(
                    f"the key file {self.key_file} of {self.path} is missing"
                ) from None
            key = AESGCM.generate_key(bit_length=_KEY * 8)
            ensure_private_dir(self.key_file.parent)
            write_atomic(self.key_file, key, mode=PRIVATE)
        if len(key) != _KEY:
            raise InvalidError(f"{self.key_file} does not hold a {_KEY}-byte key")
        return key
