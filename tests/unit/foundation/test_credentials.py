"""Tokens, password hashes (argon2id, and the scrypt ones from before) and the secret box."""

from __future__ import annotations

import os

import pytest

from juanie.domain.credentials import (
    PasswordCheck,
    check_password,
    hash_password,
    hash_token,
    new_token,
    verify_password,
)
from juanie.store.crypto import SecretBox, SecretKeyError, load_or_create_key


def test_tokens_are_random_and_stored_hashed():
    a, b = new_token(), new_token()
    assert a != b and a.startswith("jn_") and len(a) > 40
    assert hash_token(a) != a and hash_token(a) == hash_token(a) and hash_token(a) != hash_token(b)


def test_password_hash_verifies_only_the_password():
    stored = hash_password("correct horse")
    assert "correct horse" not in stored
    assert verify_password("correct horse", stored)
    assert not verify_password("correct horsf", stored)
    assert not verify_password("x", None) and not verify_password("x", "garbage")
    assert hash_password("same") != hash_password("same")  # salted


def test_secret_box_round_trip_and_binding_to_its_place():
    box = SecretBox(os.urandom(32))
    sealed = box.seal("s3cr3t-value", "shop/prod/API_KEY")
    assert b"s3cr3t-value" not in sealed
    assert box.open(sealed, "shop/prod/API_KEY") == "s3cr3t-value"
    with pytest.raises(SecretKeyError, match="cannot be decrypted"):
        box.open(sealed, "shop/dev/API_KEY")
    with pytest.raises(SecretKeyError):
        SecretBox(os.urandom(32)).open(sealed, "shop/prod/API_KEY")
    assert "key" in repr(box) and "s3cr3t" not in repr(box)


def test_generated_key_file_is_private_and_stable(tmp_path):
    path = tmp_path / "secret.key"
    first = load_or_create_key(None, path)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert load_or_create_key(None, path) == first
    assert load_or_create_key("a passphrase", path) != first
    assert len(load_or_create_key("a passphrase", path)) == 32


def _scrypt(password: str) -> str:
    """A hash in the format stored before argon2id."""
    import base64
    import hashlib

    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    return "scrypt$" + base64.b64encode(salt).decode() + "$" + base64.b64encode(digest).decode()


def test_new_password_hashes_are_argon2id_and_need_no_upgrade():
    stored = hash_password("correct horse")
    assert stored.startswith("$argon2id$")
    assert check_password("correct horse", stored) == PasswordCheck(ok=True, rehash=False)
    assert check_password("wrong horse", stored) == PasswordCheck(ok=False, rehash=False)


def test_old_scrypt_hashes_still_verify_and_ask_for_an_upgrade():
    stored = _scrypt("from before")
    assert check_password("from before", stored) == PasswordCheck(ok=True, rehash=True)
    assert check_password("from after", stored) == PasswordCheck(ok=False, rehash=False)
    assert not check_password("x", "scrypt$not-base64$!").ok


def test_weaker_argon2_parameters_ask_for_an_upgrade():
    from argon2 import PasswordHasher

    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("pw")
    assert check_password("pw", weak) == PasswordCheck(ok=True, rehash=True)


class _CountingHasher:
    """The real hasher, counting the verifications that do argon2id's work (a well-formed hash)."""

    def __init__(self, real):
        self.real, self.verifications = real, 0

    def verify(self, stored, password):
        self.verifications += stored.startswith("$argon2id$v=")
        return self.real.verify(stored, password)

    def __getattr__(self, name):
        return getattr(self.real, name)


@pytest.mark.parametrize("stored", [None, "", "garbage", "$argon2id$broken", "scrypt$a$b", "known"])
def test_every_check_costs_one_argon2id_verification(monkeypatch, stored):
    """Unknown users (no hash), broken hashes and old hashes cost the same argon2id work as a current hash."""
    from juanie.domain import credentials

    stored = hash_password("other") if stored == "known" else stored
    counting = _CountingHasher(credentials._HASHER)
    monkeypatch.setattr(credentials, "_HASHER", counting)
    assert not check_password("pw", stored).ok
    assert counting.verifications == 1
