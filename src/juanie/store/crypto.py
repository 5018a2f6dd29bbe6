"""Secrets at rest: AES-256-GCM with a key from `JUANIE_SECRET_KEY` or a generated key file (mode 0600).

Each value is bound to its place (project/environment/name) as associated data, so a ciphertext copied to another
row does not decrypt. The stored form is `version byte | 12-byte nonce | ciphertext+tag`.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = b"\x01"


class SecretKeyError(Exception):
    pass


def _key_from_text(text: str) -> bytes:
    """A 32-byte key given as base64 is used as is; any other string is stretched with SHA-256."""
    text = text.strip()
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        if len(raw) == 32:
            return raw
    except ValueError:
        pass
    return hashlib.sha256(text.encode()).digest()


def load_or_create_key(key_text: str | None, key_file: Path) -> bytes:
    if key_text:
        return _key_from_text(key_text)
    if key_file.exists():
        return _key_from_text(key_file.read_text())
    key_file.parent.mkdir(parents=True, exist_ok=True)
    encoded = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(encoded + "\n")
    return _key_from_text(encoded)


class SecretBox:
    def __init__(self, key: bytes):
        if len(key) != 32:
            raise SecretKeyError("secret key must be 32 bytes")
        self._aead = AESGCM(key)

    def seal(self, plaintext: str, context: str) -> bytes:
        nonce = secrets.token_bytes(12)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext.encode(), context.encode())

    def open(self, sealed: bytes, context: str) -> str:
        if not sealed or sealed[:1] != _VERSION:
            raise SecretKeyError("unknown secret format")
        try:
            return self._aead.decrypt(sealed[1:13], sealed[13:], context.encode()).decode()
        except InvalidTag:
            raise SecretKeyError(
                "secret cannot be decrypted: the key (JUANIE_SECRET_KEY or secret.key) changed, or the row was moved"
            ) from None

    def __repr__(self) -> str:
        return "SecretBox(<key hidden>)"
