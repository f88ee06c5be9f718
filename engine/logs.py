"""Log files: ``logs/<handler>_<pool_id>/`` per pool and ``logs/pipeline/`` for everything.

Each folder holds ``info.log`` (INFO and up, or the configured level if higher),
``error.log`` (WARNING and up: the "real problems" file) and, when
``[Pipeline] log_level = DEBUG``, ``debug.log``. Files rotate at midnight UTC
and keep ``backup_days`` old files. Pool loggers propagate, so
``logs/pipeline/`` is the whole story in one place.

Secrets must never be logged in the first place (:class:`~common.secrets.Secret`
hides itself). :class:`SecretRedactor`, attached to every handler, is the
second line of defence: it replaces any known secret value in a record's
message, arguments, exception text and stack text before it is written.

Only the entry point calls :func:`setup_logging`; modules use
``logging.getLogger(__name__)`` or :func:`pool_logger`.
"""

from __future__ import annotations

import logging
import logging.handlers
import re
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, quote_plus

from common.errors import ConfigError
from common.secrets import Secret

ROOT_FOLDER = "pipeline"
LOG_FORMAT = "%(asctime)s.%(msecs)03dZ %(levelname)s %(name)s: %(message)s"
DATE_FORMAT = "%Y-%m-%dT%H:%M:%S"
# Libraries that are noisy (and, at DEBUG, print request headers) are kept at WARNING or above.
QUIET_LIBRARIES = ("aiohttp.access", "botocore", "aiobotocore", "boto3", "s3transfer", "urllib3", "azure")
MIN_SECRET_LENGTH = 4


class SecretRedactor(logging.Filter):
    """Replaces known secret values with ``[REDACTED:<name>]`` in every record it sees.

    Values shorter than :data:`MIN_SECRET_LENGTH` are not redacted (they would
    shred ordinary text); secrets are never that short in practice.
    """

    def __init__(self, secrets: Iterable[Secret] = ()) -> None:
        super().__init__()
        self._names: dict[str, str] = {}  # shown form -> secret name
        self._pattern: re.Pattern[str] | None = None
        for secret in secrets:
            self.add(secret)

    def add(self, secret: Secret) -> None:
        """Start redacting ``secret`` (its raw, URL-quoted and form-quoted forms)."""
        value = secret.reveal()
        if len(value) < MIN_SECRET_LENGTH:
            return
        for form in {value, quote(value, safe=""), quote_plus(value)}:
            self._names[form] = secret.name
        forms = sorted(self._names, key=len, reverse=True)  # longest first: no partial leftovers
        self._pattern = re.compile("|".join(re.escape(form) for form in forms))

    def redact(self, text: str) -> str:
        """``text`` with every known secret replaced."""
        if self._pattern is None:
            return text
        return self._pattern.sub(lambda m: f"[REDACTED:{self._names[m.group(0)]}]", text)

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place (message, args, exception, stack); never drops it."""
        if self._pattern is None:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not bypass redaction
            message = f"{record.msg} (arguments could not be formatted)"
        record.msg = self.redact(str(message))
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def pool_logger_name(handler: str, pool_id: str) -> str:
    """Logger name of one pool handler, e.g. ``pipeline.pool.visit_2``."""
    return f"pipeline.pool.{handler}_{pool_id}"


def pool_logger(handler: str, pool_id: str) -> logging.Logger:
    """The logger whose records go to ``logs/<handler>_<pool_id>/``."""
    return logging.getLogger(pool_logger_name(handler, pool_id))


@dataclass
class LogSetup:
    """What :func:`setup_logging` installed, so it can be taken down again (tests, shutdown)."""

    folder: Path
    redactor: SecretRedactor
    installed: list[tuple[logging.Logger, logging.Handler]] = field(default_factory=list)
    previous_levels: dict[str, int] = field(default_factory=dict)

    def files(self) -> list[Path]:
        """Paths of every log file opened."""
        return [
            Path(h.baseFilename)
            for _, h in self.installed
            if isinstance(h, logging.FileHandler)
        ]

    def close(self) -> None:
        """Remove and close every handler installed; restore logger levels."""
        for logger, handler in self.installed:
            logger.removeHandler(handler)
            handler.close()
        self.installed.clear()
        for name, level in self.previous_levels.items():
            logging.getLogger(name or None).setLevel(level)
        self.previous_levels.clear()


def setup_logging(
    logs_folder: Path,
    level: str,
    pools: Mapping[str, str],
    redactor: SecretRedactor,
    *,
    console: bool = True,
    backup_days: int = 30,
) -> LogSetup:
    """Install the file (and console) handlers; ``pools`` maps handler name -> pool id.

    Raises :class:`ConfigError` for ``[Pipeline] logs_folder`` when a folder or
    file cannot be created or written, naming the path.
    """
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ConfigError("Pipeline", "log_level", "DEBUG, INFO, WARNING or ERROR", level)
    folder = Path(logs_folder).absolute()
    setup = LogSetup(folder=folder, redactor=redactor)
    formatter = logging.Formatter(LOG_FORMAT, DATE_FORMAT)
    formatter.converter = time.gmtime
    try:
        root = logging.getLogger()
        _set_level(setup, root, numeric)
        _add_files(setup, root, folder / ROOT_FOLDER, numeric, formatter, backup_days)
        for handler_name, pool_id in pools.items():
            logger = pool_logger(handler_name, pool_id)
            _set_level(setup, logger, logging.NOTSET)
            _add_files(setup, logger, folder / f"{handler_name}_{pool_id}", numeric, formatter, backup_days)
        for name in QUIET_LIBRARIES:
            _set_level(setup, logging.getLogger(name), max(numeric, logging.WARNING))
    except BaseException:
        setup.close()
        raise
    if console:
        stream = logging.StreamHandler(sys.stderr)
        stream.setLevel(numeric)
        _install(setup, root, stream, formatter)
    return setup


def _set_level(setup: LogSetup, logger: logging.Logger, level: int) -> None:
    key = "" if logger is logging.getLogger() else logger.name
    setup.previous_levels.setdefault(key, logger.level)
    logger.setLevel(level)


def _add_files(
    setup: LogSetup,
    logger: logging.Logger,
    folder: Path,
    level: int,
    formatter: logging.Formatter,
    backup_days: int,
) -> None:
    wanted = [("info.log", max(level, logging.INFO)), ("error.log", max(level, logging.WARNING))]
    if level <= logging.DEBUG:
        wanted.append(("debug.log", logging.DEBUG))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name, file_level in wanted:
            handler = logging.handlers.TimedRotatingFileHandler(
                folder / name, when="midnight", utc=True, backupCount=backup_days, encoding="utf-8"
            )
            handler.setLevel(file_level)
            _install(setup, logger, handler, formatter)
    except OSError as exc:
        where = exc.filename or folder
        raise ConfigError(
            "Pipeline", "logs_folder",
            f"a folder where log files can be written ({exc.strerror or exc}: {where})",
            str(setup.folder),
        ) from None


def _install(setup: LogSetup, logger: logging.Logger, handler: logging.Handler, formatter: logging.Formatter) -> None:
    handler.setFormatter(formatter)
    handler.addFilter(setup.redactor)
    logger.addHandler(handler)
    setup.installed.append((logger, handler))
