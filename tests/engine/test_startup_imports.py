"""What the daemon imports before its first tick: the status page's code only when the page is on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_a_daemon_without_the_status_page_does_not_import_it() -> None:
    # The page (aiohttp.web, the snapshot code) is off by default; importing it cost every start
    # about a tenth of a second of CPU. engine.runner imports it where the page is started.
    probe = ("import sys, pipelines, engine.runner; "
             "print(' '.join(m for m in ('status.server', 'aiohttp.web', 'engine.snapshot') if m in sys.modules))")
    found = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True)
    assert found.stdout.split() == []


def test_a_daemon_imports_neither_the_commands_nor_the_other_pipelines() -> None:
    # What pipeline.py runs before the first tick of a pedestrian daemon: its arguments, then its pipeline.
    probe = ("import sys, pipeline, pipelines, engine.runner; pipeline.parse_args(['--config', 'x.ini']); "
             "pipelines.get('pedestrian'); "
             "print(' '.join(m for m in sys.modules if m.startswith(('commands.', 'pipelines.find_items'))))")
    found = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True)
    assert found.stdout.split() == []


def test_every_registered_pipeline_loads_under_its_own_name() -> None:
    import pipelines

    assert sorted(pipelines.REGISTRY) == ["find_items", "pedestrian"]
    for name in pipelines.REGISTRY:
        assert pipelines.get(name).name == name


def test_the_daemon_help_still_lists_every_command() -> None:
    shown = subprocess.run([sys.executable, "pipeline.py", "--help"], cwd=REPO, capture_output=True, text=True,
                           check=True).stdout
    import commands

    assert commands.names() == set(commands.all_commands())
    for name, command in commands.all_commands().items():
        assert f"  {name:<12} {command.help}" in shown
