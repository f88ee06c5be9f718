"""The one-off commands of ``python pipeline.py COMMAND ...``, one module each.

Each module defines a :class:`Command`: its name, one line of help, the
arguments it takes and the function that runs it and returns the exit code
(0 done, 1 done with refusals reported, 2 fix the configuration or the input).
``pipeline.py`` builds its command line from :func:`all_commands`, importing them only for
a command or ``--help``; a command that
fails on our errors prints ``pipeline: <message>`` lines, never a traceback.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import pkgutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Command:
    """A subcommand: ``run`` gets the parsed arguments (``args.config`` is always there)."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


#: The order ``--help`` lists them in: the way from a new account to a running daemon and back.
ORDER = ("setup", "add", "check", "trace", "sample", "reverse", "relink", "unrestrict")


def names() -> frozenset[str]:
    """The commands' names, without importing them: the daemon's own start needs no command's code."""
    return frozenset(module.name for module in pkgutil.iter_modules(__path__))


@functools.cache
def all_commands() -> dict[str, Command]:
    """Every module of this package that defines ``COMMAND`` (one module per command, named after it)."""
    found: dict[str, Command] = {}
    for module in pkgutil.iter_modules(__path__):
        command = getattr(importlib.import_module(f"{__name__}.{module.name}"), "COMMAND", None)
        if isinstance(command, Command):
            if command.name != module.name:  # names() finds a command by its module
                raise AssertionError(f"commands/{module.name}.py defines the command {command.name!r}")
            found[command.name] = command
    rank = {name: i for i, name in enumerate(ORDER)}
    return dict(sorted(found.items(), key=lambda item: (rank.get(item[0], len(rank)), item[0])))


def fail(problem: object, code: int = 2) -> int:
    """Print ``pipeline: <line>`` on stderr per line of ``problem`` (an error may list several); return ``code``."""
    for line in str(problem).splitlines() or [""]:
        print(f"pipeline: {line}", file=sys.stderr)
    return code


def config_argument(parser: argparse.ArgumentParser) -> None:
    """``--config``, which every command takes."""
    parser.add_argument("--config", type=Path, default=Path("toloka.ini"),
                        help="configuration file (default: toloka.ini)")

