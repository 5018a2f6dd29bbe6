"""The command tree: the root app and its verb groups, shared by every module that adds commands."""

from __future__ import annotations

import typer

app = typer.Typer(name="juanie", help="Juanie: from a git commit to production, kept healthy.",
                  no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
get_app = typer.Typer(help="List resources.", no_args_is_help=True)
create_app = typer.Typer(help="Create resources.", no_args_is_help=True)
secret_app = typer.Typer(help="Manage secrets (values are write-only).", no_args_is_help=True)
logs_app = typer.Typer(help="Show logs: `juanie logs -p P -e ENV [-s SERVICE] [-f]`, or `juanie logs run ID`.",
                        invoke_without_command=True)
run_app = typer.Typer(help="Run things (pipelines).", no_args_is_help=True)
gitops_app = typer.Typer(help="The GitOps repository: history and diffs.", no_args_is_help=True)
app.add_typer(get_app, name="get")
app.add_typer(create_app, name="create")
app.add_typer(secret_app, name="secret")
app.add_typer(logs_app, name="logs")
app.add_typer(run_app, name="run")
app.add_typer(gitops_app, name="gitops")
