"""Start the S3 and Azure emulators on free loopback ports (tests and the benchmark).

Not used by the daemon. moto is a test-only dependency, so it is imported lazily;
Azurite comes from npm (``package.json``; ``npm ci`` installs it in ``node_modules``).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

#: The well-known development account of Azurite (public, documented by Microsoft).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
REPO = Path(__file__).resolve().parent.parent
_LISTENING = re.compile(r"listens on (http://127\.0\.0\.1:\d+)")
_MOTO_RUNNING = re.compile(r"Running on (http://127\.0\.0\.1:\d+)")


class ServerStartError(RuntimeError):
    """An emulator could not be started; the message says how to install it."""


@dataclass
class MotoServer:
    """moto's S3 server in a thread of this process."""

    endpoint: str
    _server: Any = field(repr=False)

    def reset(self) -> None:
        """Forget every bucket and object."""
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10) as answer:
            answer.read()

    def stop(self) -> None:
        self._server.stop()


def start_moto() -> MotoServer:
    """Start ``ThreadedMotoServer`` on 127.0.0.1 and a free port."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return MotoServer(endpoint=f"http://{host}:{port}", _server=server)


@dataclass
class ChildServer:
    """An emulator running as a child process (Azurite, or moto with authentication on)."""

    endpoint: str
    _process: subprocess.Popen[str] = field(repr=False)
    _location: str | None = field(default=None, repr=False)

    def stop(self) -> None:
        self._process.terminate()
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(10)
        if self._location:
            shutil.rmtree(self._location, ignore_errors=True)


AzuriteServer = ChildServer


def start_moto_process(*, check_credentials: bool = False, timeout: float = 30.0) -> ChildServer:
    """moto's S3 server in a child process (its own GIL: fairer for benchmarks).

    With ``check_credentials`` it refuses unknown credentials: ``INITIAL_NO_AUTH_ACTION_COUNT=0``
    turns moto's IAM checks on; it is read once per process, so this cannot be the
    shared in-thread server.
    """
    env = dict(os.environ)
    if check_credentials:
        env["INITIAL_NO_AUTH_ACTION_COUNT"] = "0"
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip
    server = ChildServer(endpoint="", _process=process)
    server.endpoint = _wait_for_url(server, _MOTO_RUNNING, timeout, "moto.server")
    return server


def find_azurite() -> Path | None:
    """``azurite-blob`` from ``$AZURITE_BLOB``, the repo's ``node_modules`` or ``PATH``."""
    candidates = [os.environ.get("AZURITE_BLOB"), str(REPO / "node_modules" / ".bin" / "azurite-blob")]
    candidates.append(shutil.which("azurite-blob"))
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def start_azurite(executable: Path | None = None, *, timeout: float = 60.0) -> ChildServer:
    """Start Azurite's blob service on 127.0.0.1 and a free port, read the port from its stdout."""
    exe = executable or find_azurite()
    if exe is None or not exe.is_file():
        raise ServerStartError(
            "azurite-blob not found (looked at $AZURITE_BLOB, ./node_modules/.bin, PATH): "
            "run `npm ci` in the repository root (test.sh does it)"
        )
    location = tempfile.mkdtemp(prefix="azurite-")
    process = subprocess.Popen(
        [str(exe), "--blobHost", "127.0.0.1", "--blobPort", "0", "--location", location,
         "--skipApiVersionCheck", "--disableTelemetry"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    server = ChildServer(endpoint="", _process=process, _location=location)
    server.endpoint = _wait_for_url(server, _LISTENING, timeout, "azurite-blob") + f"/{AZURITE_ACCOUNT}"
    return server


def _wait_for_url(server: ChildServer, pattern: re.Pattern[str], timeout: float, name: str) -> str:
    """Read the child's output until ``pattern`` shows its URL; stop it and raise otherwise."""
    process = server._process
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line.rstrip())
        match = pattern.search(line)
        if match:
            # Keep reading its output so a full pipe can never stall the server.
            threading.Thread(target=_drain, args=(process.stdout,), daemon=True).start()
            return match.group(1)
    server.stop()
    process.stdout.close()
    raise ServerStartError(f"{name} did not report its port; it printed: {' | '.join(seen[-5:])}")


def _drain(stream: IO[str]) -> None:
    with stream:  # closed here at end of output, when the process has exited
        for _ in stream:
            pass
