"""Tokens, password hashes and the secret box."""

from __future__ import annotations

import os

import pytest

from juanie.domain.credentials import hash_password, hash_token, new_token, verify_password
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
