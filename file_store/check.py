"""The check commands ``python -m file_store.s3`` and ``python -m file_store.azure``.

They read ``toloka.ini`` and the keyring exactly as the daemon does, upload a file
(``README.md`` by default) under ``check/<file name>`` and print a link that downloads it,
so an operator can test a new bucket or container before starting the daemon. Errors
are printed as one line that says what to fix; the exit status is then 1.
"""

from __future__ import annotations

import argparse
import asyncio
import mimetypes
import sys
from pathlib import Path

from common.errors import PipelineError
from file_store import load_file_store_settings, make_key, open_file_store
from file_store.settings import read_config


def main(backend: str, argv: list[str] | None = None) -> int:
    """Run the check for ``backend`` (``s3`` or ``azure``); returns the exit status."""
    parser = argparse.ArgumentParser(
        prog=f"python -m file_store.{backend}",
        description=f"Upload a file to the {backend} store configured in toloka.ini and print a link to it.",
    )
    parser.add_argument("--config", default="toloka.ini", help="configuration file (default: toloka.ini)")
    parser.add_argument("--file", default="README.md", type=Path, help="file to upload (default: README.md)")
    args = parser.parse_args(argv)
    try:
        link = asyncio.run(_check(backend, Path(args.config), args.file))
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(link)
    return 0


async def _check(backend: str, config: Path, upload: Path) -> str:
    settings = load_file_store_settings(read_config(config), backend)
    if not await asyncio.to_thread(upload.is_file):
        raise PipelineError(f"cannot upload {str(upload)!r}: no such file (use --file PATH)")
    content_type = mimetypes.guess_type(upload.name)[0] or "application/octet-stream"
    key = make_key("check", upload.name)
    async with await open_file_store(settings) as store:
        await store.put(key, upload, content_type)
        return await store.link(key)
