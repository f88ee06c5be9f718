"""add_password.py driven through a real pseudo-terminal, with a real file keyring in a temp folder."""

from __future__ import annotations

import fcntl
import os
import select
import subprocess
import sys
import termios
import time
from pathlib import Path

from engine_helpers import REPO

SCRIPT = REPO / "add_password.py"
TOKEN = "y0_AgAAAAB-secret-token-7c1d"


def _take_terminal() -> None:
    """In the child: make the pty (already on fds 0-2) the controlling terminal, so /dev/tty works."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Terminal:
    """A child process on a pseudo-terminal: wait for text, type lines, collect the transcript."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path) -> None:
        master, slave = os.openpty()
        self.master = master
        self.transcript = b""
        self.proc = subprocess.Popen(
            [sys.executable, str(SCRIPT), *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=cwd,
            env=env,
            start_new_session=True,
            preexec_fn=_take_terminal,  # noqa: PLW1509 - single-threaded test child, needed for a ctty
        )
        os.close(slave)

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return True
        try:
            chunk = os.read(self.master, 4096)
        except OSError:  # EIO: the child closed the terminal
            chunk = b""
        self.transcript += chunk
        return bool(chunk)

    def expect(self, text: str, timeout: float = 30.0) -> None:
        """Read until ``text`` was printed (fails with the transcript otherwise)."""
        deadline = time.monotonic() + timeout
        while text.encode() not in self.transcript:
            left = deadline - time.monotonic()
            assert left > 0, f"timed out waiting for {text!r}; got {self.transcript!r}"
            if not self._read(min(left, 0.5)) and self.proc.poll() is not None:
                raise AssertionError(f"child exited before printing {text!r}; got {self.transcript!r}")

    def type_line(self, line: str) -> None:
        """Type ``line`` and Enter."""
        os.write(self.master, line.encode() + b"\n")

    def finish(self, timeout: float = 30.0) -> tuple[int, str]:
        """Wait for exit; returns the exit code and the whole transcript."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._read(0.5):
            pass
        code = self.proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        os.close(self.master)
        return code, self.transcript.decode(errors="replace")


def read_back(env: dict[str, str], name: str) -> subprocess.CompletedProcess[str]:
    """Read the entry in a fresh process, the way the daemon does."""
    code = (
        "import sys\nfrom common.secrets import read_secret\nfrom common.errors import SecretError\n"
        f"try:\n    print(read_secret({name!r}).reveal())\n"
        "except SecretError as exc:\n    print('SecretError:', exc)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=True
    )


def test_stores_a_secret_typed_twice_and_never_shows_it(keyring_env: dict[str, str], tmp_path: Path) -> None:
    """Name prompted, value typed twice without echo, stored under TOLOKA, readable by another process."""
    (tmp_path / "toloka.ini").write_text("[Secrets]\ntoloka_token = toloka_token\ns3_key_id = s3_key_id\n")
    term = Terminal([], keyring_env, cwd=tmp_path)
    term.expect("Names used in toloka.ini [Secrets]: toloka_token, s3_key_id")
    term.expect("Secret name: ")
    term.type_line("toloka_token")
    term.expect("(hidden): ")
    term.type_line(TOKEN)
    term.expect("again: ")
    term.type_line(TOKEN)
    code, transcript = term.finish()
    assert code == 0, transcript
    assert "Stored secret 'toloka_token' under service TOLOKA" in transcript
    assert "PlaintextKeyring" in transcript
    assert TOKEN not in transcript  # neither echoed while typed nor printed in the confirmation
    assert read_back(keyring_env, "toloka_token").stdout.strip() == TOKEN
    keyring_file = Path(keyring_env["XDG_DATA_HOME"]) / "python_keyring" / "keyring_pass.cfg"
    assert keyring_file.exists()


def test_mismatch_is_refused_and_nothing_is_stored(keyring_env: dict[str, str], tmp_path: Path) -> None:
    """Two different values: a clear refusal, exit 1, and the keyring stays empty."""
    term = Terminal(["s3_access_key"], keyring_env, cwd=tmp_path)
    term.expect("(hidden): ")
    term.type_line("first-value-1234")
    term.expect("again: ")
    term.type_line("second-value-5678")
    code, transcript = term.finish()
    assert code == 1, transcript
    assert "differ" in transcript and "nothing stored" in transcript
    assert "first-value-1234" not in transcript and "second-value-5678" not in transcript
    assert "is not in the keyring" in read_back(keyring_env, "s3_access_key").stdout


def test_empty_value_is_refused(keyring_env: dict[str, str], tmp_path: Path) -> None:
    """Enter on an empty prompt stores nothing."""
    term = Terminal(["toloka_token"], keyring_env, cwd=tmp_path)
    term.expect("(hidden): ")
    term.type_line("")
    code, transcript = term.finish()
    assert code == 1 and "Empty value" in transcript
    assert "is not in the keyring" in read_back(keyring_env, "toloka_token").stdout


def test_no_backend_explains_how_to_configure_one(keyring_env: dict[str, str], tmp_path: Path) -> None:
    """With keyring's fail backend: exit 2 before asking for the value, with configuration advice."""
    env = dict(keyring_env, PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    term = Terminal(["toloka_token"], env, cwd=tmp_path)
    code, transcript = term.finish()
    assert code == 2, transcript
    flat = " ".join(transcript.split())
    assert "No usable keyring backend" in flat
    for advice in ("keyrings.alt", "PYTHON_KEYRING_BACKEND", "keyringrc.cfg"):
        assert advice in flat
    assert "hidden" not in transcript  # it never asked for the secret
