"""Two handles on one source repository fetching at the same moment: after a restart the sources poller fetches while
a pushed commit's run fetches for its checkout, each through its own `SourceRepo`. Both must succeed — git refuses
the second of two concurrent fetches into one mirror ("cannot lock ref ... is at X but expected Y")."""

from __future__ import annotations

import threading
from pathlib import Path

from juanie.gitops.source import SourceRepo
from tests.integration.gitops.gitrepo_helpers import commit_file


def test_handles_on_one_mirror_fetch_one_at_a_time_and_all_succeed(source_repo: Path, tmp_path: Path) -> None:
    errors: list[str] = []
    for n in range(15):
        head = commit_file(source_repo, "CHANGES.md", f"change {n}\n", f"docs: change {n}")
        handles = [SourceRepo(source_repo, tmp_path / "cache") for _ in range(3)]
        heads: list[str] = []

        def fetch(repo: SourceRepo, heads: list[str] = heads) -> None:
            try:
                heads.append(repo.fetch()["main"])
            except Exception as exc:  # collected: a failure in a thread would otherwise go unseen
                errors.append(str(exc))

        threads = [threading.Thread(target=fetch, args=(h,)) for h in handles]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors, errors[0]
        assert heads == [head] * 3
