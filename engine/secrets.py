"""Secrets from the keyring (service ``TOLOKA``), wrapped so they cannot leak.

A :class:`Secret` never shows its value in ``str``/``repr``/f-strings or pickles;
code that needs the value calls :meth:`Secret.reveal` at the last moment
(building an HTTP header, an SDK credential).
"""

from __future__ import annotations

import keyring
import keyring.errors

from engine.errors import SecretError

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

    def __reduce__(self) -> object:
        raise TypeError("a Secret must not be pickled (checkpoints hold no secrets)")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other.name == self.name and other._value == self._value

    def __hash__(self) -> int:
        return hash(self.name)


def read_secret(entry: str) -> Secret:
    """Read keyring entry ``entry`` of service ``TOLOKA``; a clear error if absent."""
    try:
        value = keyring.get_password(SERVICE, entry)
    except keyring.errors.NoKeyringError:
        raise SecretError(f"cannot read secret {entry!r}: {NO_BACKEND_HELP}") from None
    except keyring.errors.KeyringError as exc:
        raise SecretError(
            f"cannot read secret {entry!r} from the keyring ({type(exc).__name__})"
        ) from None
    if value is None or value == "":
        raise SecretError(
            f"secret {entry!r} is not in the keyring (service {SERVICE}); "
            f"store it with `python add_password.py`"
        )
    return Secret(entry, value)
