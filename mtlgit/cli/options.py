"""Options shared by several commands, as composable decorators."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from mtlgit.cli.args import split_words

__all__ = ["filter_options", "json_option", "split_words"]

F = TypeVar("F", bound=Callable[..., Any])


def json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(func)


def filter_options(func: F) -> F:
    from mtlgit.rules import FORMATS, SCOPES

    options = [
        click.option("--format", "formats", multiple=True, type=click.Choice(FORMATS), help="Only this format."),
        click.option("--domain", "domains", multiple=True, help="Only memories in this domain (repeatable)."),
        click.option("--exclude-domain", "exclude_domains", multiple=True, help="Leave out this domain."),
        click.option("--tag", "tags", multiple=True, help="Only memories with this tag (repeatable)."),
        click.option("--scope", "scopes", multiple=True, type=click.Choice(SCOPES), help="Only this scope."),
    ]
    for option in reversed(options):
        func = option(func)
    return func
