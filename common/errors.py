"""The project's one exception hierarchy.

Every error the daemon raises on purpose derives from :class:`PipelineError`, so
the tick loop can tell "our" failures (reported clearly, other pools go on)
from programming errors. Adapters (the Toloka client, the file stores, the
keyring) translate vendor exceptions into these at their boundary.
"""

from __future__ import annotations


class PipelineError(Exception):
    """Root of every error this project raises on purpose."""


class ConfigError(PipelineError):
    """A value in ``toloka.ini`` is missing or wrong.

    The message always names the section, the key, what was expected and what
    was found, so the operator can fix the file without reading code.
    """

    def __init__(self, section: str, key: str, expected: str, found: str | None) -> None:
        self.section = section
        self.key = key
        self.expected = expected
        self.found = found
        shown = "nothing (the key is missing)" if found is None else repr(found)
        super().__init__(f"toloka.ini [{section}] {key}: expected {expected}, found {shown}")


class SecretError(PipelineError):
    """A secret cannot be read from, or written to, the keyring.

    Messages name the keyring entry, never its value.
    """


class StorageError(PipelineError):
    """A file store (S3, Azure Blob, local folder) failed; the message says what to fix."""


class StateError(PipelineError):
    """Checkpoint, journal or lock problems found at start-up (corrupt file, second daemon)."""
