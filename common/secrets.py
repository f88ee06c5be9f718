"""Secrets from the keyring (service ``TOLOKA``), wrapped so they cannot leak.

A :class:`Secret` never shows its value in ``str``/``repr``/f-strings or pickles;
code that needs the value calls :meth:`Secret.reveal` at the last moment
(building an HTTP header, an SDK credential).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NoReturn

import keyring
import keyring.backend
import keyring.backends.fail
import keyring.backends.null
import keyring.errors

from common.errors import SecretError

SERVICE = "TOLOKA"

NO_BACKEND_HELP = (
    "No usable keyring backend. On a headless server install keyrings.alt and choose a file "
    "backend, e.g. `export PYTHON_KEYRING_BACKEND=keyrings.alt.file.PlaintextKeyring` (plain "
    "text, file mode 0600) or keyrings.alt.file.EncryptedKeyring (needs pycryptodomex and a "
    "passphrase), or set it in ~/.config/python_keyring/keyringrc.cfg under [backend] "
    "default-keyring=..."
)


class Secret:
    """A secret value that refuses to be printed, logged or pickled."""

    __slots__ = ("_value", "name")

    def __init__(self, name: str, value: str) -> None:
        self.name = name
        self._value = value

    def reveal(self) -> str:
        """The value itself: use it only where it leaves the process (a header, an SDK)."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({self.name!r}, '***')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Secret must not be pickled (checkpoints hold no secrets)")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other.name == self.name and other._value == self._value

    def __hash__(self) -> int:
        return hash(self.name)


def read_secret(entry: str) -> Secret:
    """Read keyring entry ``entry`` of service ``TOLOKA``; a clear error if absent."""
    value = _lookup(entry)
    if value is None:
        raise SecretError(
            f"secret {entry!r} is not in the keyring (service {SERVICE}); "
            f"store it with `python add_password.py`"
        )
    return Secret(entry, value)


def _lookup(entry: str) -> str | None:
    """The stored value, None when absent; backend problems raise :class:`SecretError`."""
    try:
        value = keyring_backend().get_password(SERVICE, entry)
    except SecretError as exc:
        raise SecretError(f"cannot read secret {entry!r}: {exc}") from None
    except keyring.errors.NoKeyringError:
        raise SecretError(f"cannot read secret {entry!r}: {NO_BACKEND_HELP}") from None
    except keyring.errors.KeyringError as exc:
        raise SecretError(
            f"cannot read secret {entry!r} from the keyring ({type(exc).__name__})"
        ) from None
    return value or None


def keyring_backend() -> keyring.backend.KeyringBackend:
    """The configured keyring backend, or :class:`SecretError` saying how to configure one.

    Refuses ``keyring.backends.fail.Keyring`` (nothing usable was found) and
    ``keyring.backends.null.Keyring`` (it silently stores nothing).
    """
    try:
        backend = keyring.get_keyring()
    except Exception as exc:  # a bad PYTHON_KEYRING_BACKEND raises anything
        raise SecretError(
            f"the keyring backend cannot be loaded ({type(exc).__name__}: {exc}); check "
            f"PYTHON_KEYRING_BACKEND and keyringrc.cfg. {NO_BACKEND_HELP}"
        ) from None
    if isinstance(backend, (keyring.backends.fail.Keyring, keyring.backends.null.Keyring)):
        raise SecretError(f"{NO_BACKEND_HELP} (current backend: {describe_backend(backend)})")
    return backend


def describe_backend(backend: keyring.backend.KeyringBackend) -> str:
    """``module.Class`` of the backend, plus its file when it keeps one (keyrings.alt)."""
    name = f"{type(backend).__module__}.{type(backend).__qualname__}"
    file_path = getattr(backend, "file_path", None)
    return f"{name} (file {file_path})" if isinstance(file_path, str) else name


def check_entry_name(entry: str) -> str:
    """A keyring entry name as written in ``[Secrets]``: non-empty, no surrounding or inner spaces."""
    if not entry or entry != entry.strip() or any(ch.isspace() for ch in entry):
        raise SecretError(f"a secret name must be a non-empty word without spaces, got {entry!r}")
    return entry


def store_secret(entry: str, value: str) -> keyring.backend.KeyringBackend:
    """Store ``value`` as entry ``entry`` of service ``TOLOKA`` and check it was kept.

    Returns the backend used. Errors name the entry, never the value.
    """
    check_entry_name(entry)
    if not value:
        raise SecretError(f"refusing to store an empty value for secret {entry!r}")
    backend = keyring_backend()
    try:
        backend.set_password(SERVICE, entry, value)
        kept = backend.get_password(SERVICE, entry)
    except keyring.errors.NoKeyringError:
        raise SecretError(f"cannot store secret {entry!r}: {NO_BACKEND_HELP}") from None
    except keyring.errors.KeyringError as exc:
        raise SecretError(f"cannot store secret {entry!r} in the keyring ({type(exc).__name__})") from None
    if kept != value:
        raise SecretError(
            f"the keyring backend {describe_backend(backend)} did not keep secret {entry!r}; "
            f"choose another backend. {NO_BACKEND_HELP}"
        )
    return backend


def read_secrets(entries: Iterable[str]) -> dict[str, Secret]:
    """Read every entry at once; one :class:`SecretError` lists all that are missing."""
    found: dict[str, Secret] = {}
    missing: list[str] = []
    for entry in dict.fromkeys(entries):
        value = _lookup(entry)
        if value is None:
            missing.append(entry)
        else:
            found[entry] = Secret(entry, value)
    if missing:
        names = ", ".join(repr(name) for name in missing)
        raise SecretError(
            f"secrets {names} are not in the keyring (service {SERVICE}); "
            f"store each with `python add_password.py`"
        )
    return found
