"""Encryption of source API keys at rest (Fernet: AES-128-CBC with HMAC-SHA256)."""

import base64
import functools
import hashlib
import os
import stat
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from spark_core.errors import SparkError

_KEPT_TOKENS = 256
"""Opened tokens kept at most (the least recently used goes first)."""


class FernetSecretBox:
    """The ``SecretBox`` port on Fernet, keyed from configuration or a generated key file."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)
        # Every run of a source opens the same token: each is decrypted once (a refused one
        # raises, and is not kept).
        self._opened = functools.lru_cache(maxsize=_KEPT_TOKENS)(self._decrypt)

    @classmethod
    def from_passphrase(cls, passphrase: str) -> "FernetSecretBox":
        """A box keyed by ``SPARK_ENCRYPTION_KEY``: a Fernet key as is, any other text hashed."""
        raw = passphrase.strip().encode()
        try:
            Fernet(raw)
        except ValueError:
            raw = base64.urlsafe_b64encode(hashlib.sha256(raw).digest())
        return cls(raw)

    @classmethod
    def from_key_file(cls, path: Path | str) -> "FernetSecretBox":
        """A box keyed by ``path``, generating a new key there (mode 0600) on first use."""
        path = Path(path)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
                fd = os.open(path, flags, stat.S_IRUSR | stat.S_IWUSR)
            except FileExistsError:
                pass  # another process generated it first; use theirs
            else:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(Fernet.generate_key())
        return cls(path.read_bytes().strip())

    def seal(self, plaintext: str) -> str:
        """Encrypt ``plaintext`` into a printable token."""
        return self._fernet.encrypt(plaintext.encode()).decode()

    def open(self, token: str) -> str:
        """Decrypt a token made by ``seal`` with the same key (once: a token opened before is
        answered from memory)."""
        return self._opened(token)

    def _decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise SparkError(
                "A stored source key cannot be decrypted: SPARK_ENCRYPTION_KEY or the key file "
                "changed since it was stored; re-enter the source's API key"
            ) from exc
