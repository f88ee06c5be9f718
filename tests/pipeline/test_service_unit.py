"""deploy/toloka-pipeline.service: systemd accepts it, its settings are the ones the daemon needs,
and its command line, run with its environment, exits 2 on a configuration mistake and 0 on SIGTERM."""

from __future__ import annotations

import re
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines import load_settings
from tools.harness import REPO, TOKEN, edit_ini, emulator, fast_config, keyring_env, set_password, wait_for_ticks

UNIT = REPO / "deploy" / "toloka-pipeline.service"
CODE = "/opt/toloka-pipeline"  # where the unit expects the checkout
STATE = "/var/lib/toloka-pipeline"  # its StateDirectory and WorkingDirectory


def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """Sections -> key -> every value (systemd allows a key many times, e.g. Environment=)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None and "=" in line, f"{path.name}:{number}: not 'Key=value' in a section: {raw!r}"
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def one(service: dict[str, list[str]], key: str) -> str:
    values = service.get(key, [])
    assert len(values) == 1, f"[Service] {key}: expected one value, found {values}"
    return values[0]


def environment(service: dict[str, list[str]]) -> dict[str, str]:
    pairs = [pair for value in service.get("Environment", []) for pair in shlex.split(value)]
    return dict(pair.split("=", 1) for pair in pairs)


def local_command(service: dict[str, list[str]], state: Path) -> list[str]:
    """ExecStart as this checkout runs it: this Python, this repository, ``state`` for the state folder."""
    argv = shlex.split(one(service, "ExecStart"))
    mapped = [arg.replace(f"{CODE}/.venv/bin/python", sys.executable).replace(CODE, str(REPO))
              .replace(STATE, str(state)) for arg in argv]
    return mapped


def local_environment(service: dict[str, list[str]], state: Path) -> dict[str, str]:
    env = keyring_env(state)  # the rest of this environment (PATH, ...), with the test keyring's values
    env.update({key: value.replace(STATE, str(state)) for key, value in environment(service).items()})
    return env


def test_the_unit_restarts_on_failure_but_not_on_exit_2_and_stops_with_sigterm() -> None:
    unit = parse_unit(UNIT)
    service = unit["Service"]
    assert one(service, "Restart") == "on-failure"
    assert one(service, "RestartPreventExitStatus") == "2"
    assert one(service, "KillSignal") == "SIGTERM"
    assert one(service, "User") not in ("", "root") and one(service, "Group") not in ("", "root")
    assert one(service, "WorkingDirectory") == STATE and one(service, "StateDirectory") == Path(STATE).name
    # A tick (60 s by default, each request retried for up to 300 s) must be able to finish.
    period = load_settings(REPO / "toloka.example.ini").pipeline.period_s
    timeout = int(one(service, "TimeoutStopSec"))
    assert timeout > period and timeout >= 300
    assert one(service, "NoNewPrivileges") == "yes" and one(service, "ProtectSystem") == "strict"
    assert "network-online.target" in unit["Unit"]["After"][0]
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]


def test_the_unit_gives_the_keyring_the_backend_and_folder_the_tests_use() -> None:
    env = environment(parse_unit(UNIT)["Service"])
    tests_env = keyring_env(Path("/x"))
    assert env["PYTHON_KEYRING_BACKEND"] == tests_env["PYTHON_KEYRING_BACKEND"] == "keyrings.alt.file.PlaintextKeyring"
    assert env["XDG_DATA_HOME"].startswith(STATE + "/") and env["XDG_CONFIG_HOME"].startswith(STATE + "/")


def test_execstart_is_the_daemon_with_a_config_the_command_line_accepts() -> None:
    import importlib.util

    # By path: inside tests/, the name ``pipeline`` is the tests' own package.
    found = importlib.util.spec_from_file_location("pipeline_cli", REPO / "pipeline.py")
    assert found is not None and found.loader is not None
    pipeline = importlib.util.module_from_spec(found)
    found.loader.exec_module(pipeline)
    service = parse_unit(UNIT)["Service"]
    argv = shlex.split(one(service, "ExecStart"))
    assert argv[0] == f"{CODE}/.venv/bin/python" and argv[1] == f"{CODE}/pipeline.py"
    assert (REPO / Path(argv[1]).name).is_file()
    args = pipeline.parse_args(argv[2:])
    assert args.command == "run" and not args.once and not args.demo
    assert args.config == Path(STATE) / "toloka.ini"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here")
def test_systemd_analyze_verifies_the_unit_without_a_warning(tmp_path: Path) -> None:
    # verify checks that ExecStart's program exists: point it at this Python, the rest unchanged.
    local = tmp_path / UNIT.name
    local.write_text(UNIT.read_text().replace(f"{CODE}/.venv/bin/python", sys.executable))
    verified = subprocess.run(["systemd-analyze", "verify", str(local)], capture_output=True, text=True, timeout=60)
    assert verified.returncode == 0 and verified.stdout + verified.stderr == "", verified.stdout + verified.stderr
    security = subprocess.run(["systemd-analyze", "security", "--offline=yes", str(local)],
                              capture_output=True, text=True, timeout=60)
    found = re.search(r"Overall exposure level for \S+: ([\d.]+)", security.stdout)
    assert found is not None, security.stdout[-2000:] + security.stderr
    assert float(found.group(1)) <= 2.0  # systemd calls up to 3.9 "OK", 9+ "UNSAFE"


def test_execstart_with_the_units_environment_exits_2_on_a_config_mistake(tmp_path: Path) -> None:
    service = parse_unit(UNIT)["Service"]
    (tmp_path / "toloka.ini").write_text(
        (REPO / "toloka.example.ini").read_text().replace("period_seconds = 60", "period_seconds = soon", 1))
    result = subprocess.run(local_command(service, tmp_path), cwd=tmp_path, env=local_environment(service, tmp_path),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "period_seconds" in result.stderr and "Traceback" not in result.stderr


def test_execstart_with_the_units_environment_ticks_and_exits_0_on_sigterm(tmp_path: Path) -> None:
    service = parse_unit(UNIT)["Service"]
    env = local_environment(service, tmp_path)
    with emulator(tmp_path, seed=8, speed=1) as url:
        config = fast_config(tmp_path)
        entry = load_settings(config).secrets.toloka_token
        token = TOKEN
        # The token goes in as a person stores it on the server: add_password.py, the unit's environment.
        stored = subprocess.run([sys.executable, str(REPO / "add_password.py"), entry], input=f"{token}\n{token}\n",
                                cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
                                start_new_session=True)  # no terminal: getpass reads the piped lines
        assert stored.returncode == 0, stored.stderr
        assert (tmp_path / "keyring" / "python_keyring" / "keyring_pass.cfg").is_file()
        out = tmp_path / "service.out"
        with out.open("w") as sink:
            proc = subprocess.Popen(local_command(service, tmp_path), cwd=tmp_path, env=env, stdout=sink,
                                    stderr=subprocess.STDOUT, text=True)
        try:
            wait_for_ticks(proc, out, 2)
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=int(one(service, "TimeoutStopSec")))
        finally:
            if proc.poll() is None:
                proc.kill()
        assert url and code == 0, out.read_text()[-2000:]
    assert token not in out.read_text()


def test_a_toloka_that_does_not_answer_at_start_up_exits_75_which_the_unit_restarts(tmp_path: Path) -> None:
    import socket

    service = parse_unit(UNIT)["Service"]
    assert "75" not in one(service, "RestartPreventExitStatus").split()  # on-failure: every other non-zero exit
    with socket.socket() as probe:  # a port nothing listens on: connections are refused
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    config = tmp_path / "toloka.ini"
    config.write_text((REPO / "toloka.example.ini").read_text())
    edit_ini(config, "Toloka", environment=f"http://127.0.0.1:{dead}")
    edit_ini(config, "Pipeline", saves_folder=str(tmp_path / "saves"), logs_folder=str(tmp_path / "logs"),
             results_folder=str(tmp_path / "results"))
    edit_ini(config, "FileStore", local_folder=str(tmp_path / "photos"))
    env = local_environment(service, tmp_path)
    entry = load_settings(config).secrets.toloka_token
    set_password(tmp_path, entry, "x" * 20, env=env)
    result = subprocess.run(local_command(service, tmp_path), cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 75, result.stderr[-2000:]
    assert "starting again later may work" in result.stderr and "Traceback" not in result.stderr
