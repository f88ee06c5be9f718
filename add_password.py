"""Store a secret in the keyring (service TOLOKA) for the pipeline daemon.

Usage: ``python add_password.py [NAME]``. Asks for the secret's name (unless
given) and its value twice, hidden. Refuses an empty value or two different
values. The name is what ``toloka.ini`` ``[Secrets]`` refers to, e.g.
``toloka_token``. The value is never printed.

Exit codes: 0 stored, 1 refused (mismatch, empty, bad name, interrupted),
2 the keyring cannot store it (no usable backend: the message says how to
configure one).
"""

from __future__ import annotations

import argparse
import configparser
import getpass
import sys
from pathlib import Path

from common.errors import SecretError
from common.secrets import SERVICE, check_entry_name, describe_backend, keyring_backend, store_secret

EXIT_OK, EXIT_REFUSED, EXIT_NO_BACKEND = 0, 1, 2


def known_names(config: Path) -> list[str]:
    """Entry names listed in ``[Secrets]`` of ``config`` (empty if unreadable)."""
    cfg = configparser.ConfigParser(interpolation=None)
    try:
        cfg.read(config, encoding="utf-8")
    except (configparser.Error, OSError, UnicodeDecodeError):
        return []
    if not cfg.has_section("Secrets"):
        return []
    return [value.strip() for value in dict(cfg.items("Secrets")).values() if value.strip()]


def main(argv: list[str] | None = None) -> int:
    """Run the dialogue; returns the exit code."""
    parser = argparse.ArgumentParser(description=f"Store a secret in the keyring (service {SERVICE}).")
    parser.add_argument("name", nargs="?", help="keyring entry name, as written in toloka.ini [Secrets]")
    parser.add_argument("--config", type=Path, default=Path("toloka.ini"), help="to list the expected names")
    args = parser.parse_args(argv)

    # Check the backend before asking for anything: typing a token for nothing is annoying.
    try:
        backend = keyring_backend()
    except SecretError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_NO_BACKEND

    try:
        name = args.name
        if name is None:
            expected = known_names(args.config)
            if expected:
                print(f"Names used in {args.config} [Secrets]: {', '.join(expected)}")
            name = input("Secret name: ").strip()
        try:
            check_entry_name(name)
        except SecretError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_REFUSED
        value = getpass.getpass(f"Value of {name!r} (hidden): ")
        if not value:
            print("Empty value: nothing stored.", file=sys.stderr)
            return EXIT_REFUSED
        again = getpass.getpass(f"Value of {name!r} again: ")
        if again != value:
            print("The two values differ: nothing stored.", file=sys.stderr)
            return EXIT_REFUSED
        backend = store_secret(name, value)
    except SecretError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_NO_BACKEND
    except (KeyboardInterrupt, EOFError):
        print("\nInterrupted: nothing stored.", file=sys.stderr)
        return EXIT_REFUSED
    print(f"Stored secret {name!r} under service {SERVICE} "
          f"in {describe_backend(backend)}.")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
