"""Tokens and passwords: generated with `secrets`, stored only as hashes, compared in constant time.

API tokens are 256-bit random strings, so a fast SHA-256 is the right hash (nothing to brute-force); passwords are
human-chosen, so they get argon2id (argon2-cffi's RFC 9106 profile) with a per-user salt. Hashes from before
argon2id (`scrypt$salt$digest`) still verify, and `check_password` says when to store a fresh hash in their place.

Checking a password always costs at least one argon2id verification, whether the stored hash is current, old or
missing (an unknown user): the time a login takes tells nothing about which usernames exist.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

TOKEN_PREFIX = "jn_"
_HASHER = PasswordHasher()  # argon2id, t=3, m=64 MiB, p=4 (RFC 9106, low-memory profile)
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_display_prefix(token: str) -> str:
    """The first characters, kept so a person can tell their tokens apart without the secret."""
    return token[:10]


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


@dataclass(frozen=True)
class PasswordCheck:
    ok: bool
    rehash: bool = False  # right password, but an old scheme or weaker parameters: store hash_password() instead


def check_password(password: str, stored: str | None) -> PasswordCheck:
    """Verify `password` against a stored hash (argon2id, or the older scrypt format) or against nothing."""
    if stored and stored.startswith("$argon2"):
        try:
            _HASHER.verify(stored, password)
        except VerifyMismatchError:
            return PasswordCheck(False)
        except (VerificationError, InvalidHashError):  # a broken hash, refused before any work: do the work anyway
            _burn(password)
            return PasswordCheck(False)
        return PasswordCheck(True, rehash=_HASHER.check_needs_rehash(stored))
    ok = _verify_scrypt(password, stored) if stored and stored.startswith("scrypt$") else False
    _burn(password)  # the same argon2id work as a current hash: no timing difference to learn from
    return PasswordCheck(ok, rehash=ok)


def verify_password(password: str, stored: str | None) -> bool:
    return check_password(password, stored).ok


def _verify_scrypt(password: str, stored: str) -> bool:
    try:
        _, salt_b64, digest_b64 = stored.split("$")
        salt, expected = base64.b64decode(salt_b64), base64.b64decode(digest_b64)
    except ValueError:
        return False
    actual = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return hmac.compare_digest(actual, expected)


@cache
def _dummy_hash() -> str:
    return _HASHER.hash(secrets.token_urlsafe(16))


def _burn(password: str) -> None:
    """One argon2id verification that cannot succeed, with the parameters a current hash has."""
    try:
        _HASHER.verify(_dummy_hash(), password)
    except VerificationError:
        pass
