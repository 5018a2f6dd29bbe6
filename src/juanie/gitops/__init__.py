"""Git edges: source repositories (fetch, read, checkout), GitOps repositories (commit, revert, diff, log),
and push webhooks."""

from juanie.gitops.git import GitError, redact, run_git
from juanie.gitops.message import CommitMessage, GitOpsCommit
from juanie.gitops.repo import GitOpsError, GitOpsRepo
from juanie.gitops.source import DEFAULT_POLL_INTERVAL, BranchUpdate, CommitInfo, SourceError, SourceRepo, poll
from juanie.gitops.webhooks import PushEvent, ReplayGuard, WebhookError, parse_push, verify_github, verify_gitlab

__all__ = [
    "DEFAULT_POLL_INTERVAL",
    "BranchUpdate",
    "CommitInfo",
    "CommitMessage",
    "GitError",
    "GitOpsCommit",
    "GitOpsError",
    "GitOpsRepo",
    "PushEvent",
    "ReplayGuard",
    "SourceError",
    "SourceRepo",
    "WebhookError",
    "parse_push",
    "poll",
    "redact",
    "run_git",
    "verify_github",
    "verify_gitlab",
]
