"""Signature headers are judged by their shape before any secret is looked up; odd bytes are a refusal, not a crash."""

from __future__ import annotations

import pytest

from juanie.gitops.webhooks import sign_github, signature_problem, verify_github, verify_gitlab

BODY = b'{"ref": "refs/heads/main"}'
GOOD = sign_github("s3cret", BODY)


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Hub-Signature-256": "sha256=" + "é" * 64},
        {"X-Hub-Signature-256": "sha256=" + "Ã©" * 32},  # UTF-8 bytes as the server decodes them (Latin-1)
        {"X-Hub-Signature-256": "sha256=zz"},
        {"X-Hub-Signature-256": "md5=" + "0" * 64},
        {"X-Hub-Signature-256": GOOD + "0"},
        {"X-Hub-Signature-256": GOOD[:-1] + "g"},
        {"X-Gitlab-Token": "ñ-token"},
        {"X-Gitlab-Token": "token\x00"},
        {"X-Hub-Signature-256": "sha256=zz", "X-Gitlab-Token": "fine"},
    ],
)
def test_malformed_or_non_ascii_signatures_are_named_as_such(headers):
    problem = signature_problem(headers)
    assert problem is not None and problem.code == "malformed_signature"
    assert "malformed signature" in str(problem) and "\n" not in str(problem)


def test_missing_signatures_and_well_formed_ones():
    assert signature_problem({"X-GitHub-Event": "push"}).code == "no_signature"  # type: ignore[union-attr]
    assert signature_problem({"X-Hub-Signature-256": ""}).code == "no_signature"  # type: ignore[union-attr]
    assert signature_problem({"X-Hub-Signature-256": GOOD}) is None
    assert signature_problem({"X-Hub-Signature-256": GOOD.upper().replace("SHA256=", "sha256=")}) is None
    assert signature_problem({"x-gitlab-token": "a-printable-token"}) is None


def test_verifiers_refuse_odd_bytes_instead_of_raising():
    assert verify_github("s3cret", BODY, GOOD)
    assert not verify_github("s3cret", BODY, "sha256=" + "é" * 64)
    assert not verify_github("s3cret", BODY, "sha256=" + "Ã©" * 32)
    assert not verify_gitlab("s3cret", "s3crét")
    assert verify_gitlab("s3cret", "s3cret")
