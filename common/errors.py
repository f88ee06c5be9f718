"""The project's one exception hierarchy, and whether retrying can help.

Every error the daemon raises on purpose derives from :class:`PipelineError`, so
the tick loop can tell "our" failures (reported clearly, other pools go on)
from programming errors. Adapters (the Toloka client, the file stores, the
tables, the keyring) translate vendor exceptions into these at their boundary,
and that is also where they decide :attr:`PipelineError.retryable`: nothing
above an adapter looks at a vendor exception or at an HTTP status.

The rule (docs/errors.md): a retryable error is retried with backoff by the
adapter itself, and again at the next tick; a non-retryable one is reported
once and parked until a person acts (fixes ``toloka.ini``, the keyring, the
bucket, frees the disk). ``retryable`` is a class attribute, so the tree below
says it; an instance overrides it only where one class covers both cases (a
``StorageError`` for a timeout and one for a missing bucket). Ask the instance,
``exc.retryable``, never the class::

    * PipelineError                       no   common.errors (the default for every subclass)
      + ConfigError                       no   common.errors: toloka.ini is wrong
        - ConfigFileError                 no   engine.config: toloka.ini cannot be read
        - ConfigErrors                    no   common.ini: several mistakes at once (``.problems``)
        - PoolSpecError                   no   engine.pool_specs: a pool's project does not fit the pipeline
      + SecretError                       no   common.errors: keyring entry or backend missing
      + StateError                        no   common.errors: checkpoint, journal, lock
        - LockHeldError                   no   engine.lock: a second daemon
        - IntakeLockHeld                  no   engine.intake: a second ``pipeline.py add`` on the saves folder
      + IntakeError                       no   engine.intake: a file of work ``add`` cannot use at all
      + StorageError                      per instance, set by file_store's s3/azure/local:
      |                                        yes: timeout, connection refused/reset, 5xx,
      |                                             throttling (503 SlowDown, 429), EAGAIN-like
      |                                             disk errors (see retryable_os_error)
      |                                        no:  missing bucket/container/folder, refused
      |                                             credentials, no such object, full disk
        - InvalidKeyError (+ValueError)   no   file_store.keys: a key that could escape its folder
        - MissingObjectError              no   common.errors: no object under a key, in a store that answered
      + TableError                        per instance, set by tables.tsv: retryable_os_error(exc)
      |                                        for disk errors (ENOSPC, EACCES, EROFS: no);
      |                                        other columns in the file: no
      + TolokaError                       no   toloka_client.errors: an answer the tree has no
      |                                        leaf for (405, 413, ...); an HTTP answer's flag is
      |                                        its status's: 408, 429 and 5xx yes, others no
        - AuthenticationError             no   401
        - AccessDenied                    no   403
        - NotFound                        no   404
        - ValidationError                 no   400 (and a bonus Toloka refused)
        - IncorrectAction                 no   409 and every "incorrect action" code
          · ConflictState                 no   409 CONFLICT_STATE
          · InappropriateStatus           no   409 INAPPROPRIATE_STATUS
          · OperationAlreadyExists        no   409 OPERATION_ALREADY_EXISTS
        - TooManyRequests                 YES  429 (rate limit, quota)
        - ServerError                     YES  5xx, JSON or empty or HTML body
        - TransportError                  YES  no answer: refused, reset, dropped, timeout
        - UnexpectedResponse              no   a 2xx answer of the wrong shape;
        |                                      yes for created objects not yet readable back
        - AttachmentTooLarge              no   past the download limit
        - OperationFailed                 no   an operation that ended FAIL;
                                               yes for one not finished in time (it is resumed)
      + ActionFailed                      no   engine.executor: one action failed; today it carries
      |                                        its own ``permanent``, and should pass
      |                                        ``retryable=not permanent`` (docs/errors.md)
      + StatusServerError                 no   status.server: cannot bind host:port
      + ScenarioError, StoreError         no   emulator only (never raised by the daemon)

Intermediate "transient"/"permanent" classes are deliberately absent: with
instance overrides they would be a second answer to the same question that
could disagree with ``exc.retryable``.
"""

from __future__ import annotations

import errno

# Disk and socket errors that a later attempt may not meet again: the call was
# interrupted, a resource was busy or briefly exhausted, a network file system
# or a connection hiccupped. Everything else (ENOSPC, EDQUOT, EACCES, EPERM,
# EROFS, ENOENT, EIO, ...) needs a person, so it is not retried.
_TRANSIENT_ERRNOS = frozenset(
    getattr(errno, name)
    for name in (
        "EAGAIN", "EWOULDBLOCK", "EINTR", "EBUSY", "ETIMEDOUT", "ESTALE", "ENOLCK",
        "EMFILE", "ENFILE", "ENOBUFS", "ENOMEM",
        "ECONNRESET", "ECONNREFUSED", "ECONNABORTED", "EPIPE", "ENETDOWN", "ENETUNREACH", "EHOSTUNREACH",
    )
    if hasattr(errno, name)
)


def retryable_os_error(exc: OSError) -> bool:
    """Whether another attempt can succeed after ``exc`` without a person acting.

    True for EAGAIN/EINTR-like errors (busy, interrupted, briefly out of
    descriptors or memory, a stale NFS handle, a reset connection); False for a
    full disk, a quota, a permission or read-only problem, a missing path, an
    I/O error, and an ``OSError`` without an errno (such as a short write).
    """
    return exc.errno in _TRANSIENT_ERRNOS


class PipelineError(Exception):
    """Root of every error this project raises on purpose.

    ``retryable`` says whether trying the same thing again later can succeed
    without a person acting. The class attribute is the usual answer; pass
    ``retryable=`` to override it for one instance.
    """

    retryable: bool = False

    def __init__(self, *args: object, retryable: bool | None = None) -> None:
        super().__init__(*args)
        if retryable is not None:
            self.retryable = retryable


class ConfigError(PipelineError):
    """A value in ``toloka.ini`` is missing or wrong.

    The message always names the section, the key, what was expected and what
    was found, so the operator can fix the file without reading code.
    """

    def __init__(self, section: str, key: str, expected: str, found: str | None, *, file: str = "toloka.ini") -> None:
        self.section = section
        self.key = key
        self.expected = expected
        self.found = found
        self.file = file
        shown = "nothing (the key is missing)" if found is None else repr(found)
        super().__init__(f"{file} [{section}] {key}: expected {expected}, found {shown}")

    def in_file(self, file: str) -> ConfigError:
        """The same mistake, named in ``file`` (the configuration file's name as the operator gave it)."""
        if type(self) is not ConfigError:  # a subclass builds its own message
            return self
        return ConfigError(self.section, self.key, self.expected, self.found, file=file)


class SecretError(PipelineError):
    """A secret cannot be read from, or written to, the keyring.

    Messages name the keyring entry, never its value.
    """


class StorageError(PipelineError):
    """A file store (S3, Azure Blob, local folder) failed; the message says what to fix.

    Not retryable unless the backend that raised it says so (a timeout, a
    dropped connection, throttling, a 5xx after the SDK's own retries).
    """


class MissingObjectError(StorageError):
    """No object under one key, in a store that answered (its bucket, container or folder is there).

    Its own class so that a caller can report one missing photo and go on, while any
    other :class:`StorageError` (refused credentials, a missing bucket) stops it.
    """


class StateError(PipelineError):
    """Checkpoint, journal or lock problems found at start-up (corrupt file, second daemon)."""
