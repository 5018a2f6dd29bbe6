"""First start: an administrator and a token, written to `<data>/admin-token` (mode 0600) and never logged."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import func, select

from juanie.store import accounts
from juanie.store.db import Database
from juanie.store.models import User

ADMIN_USERNAME = "admin"


def ensure_admin(db: Database, token_file: Path) -> bool:
    """Create the admin and its token if there are no users yet. Returns True if it created them."""
    with db.session() as s:
        if (s.scalar(select(func.count()).select_from(User)) or 0) > 0:
            return False
        user = accounts.create_user(
            s, ADMIN_USERNAME, is_admin=True, display_name="Administrator", actor="system"
        )
        _, plaintext = accounts.issue_token(s, user, "admin (first start)", actor="system")
        token_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = token_file.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(plaintext + "\n")
        os.replace(tmp, token_file)
        return True
