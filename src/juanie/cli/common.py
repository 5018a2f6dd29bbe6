"""What every command module shares: the one-line error handling and the common options."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

import typer

from juanie.cli.client import CliError
from juanie.cli.output import Format, err_console

OutputOpt = typer.Option(Format.table, "--output", "-o", help="table, json or yaml")
ProjectOpt = typer.Option(..., "--project", "-p", help="project name")


def friendly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn user errors into one line on stderr and exit code 1."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except CliError as exc:
            err_console.print(f"[red]error:[/red] {exc}", highlight=False)
            raise typer.Exit(1) from None

    return wrapper


def command(typer_app: typer.Typer, *args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Any]:
    def register(fn: Callable[..., Any]) -> Any:
        return typer_app.command(*args, **kwargs)(friendly(fn))

    return register
