"""Log files per pool and for the whole pipeline, daily rotation, and secret redaction."""

from __future__ import annotations

import logging
import logging.handlers
import os
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from common.errors import ConfigError
from engine.logs import LogSetup, SecretRedactor, pool_logger, setup_logging
from common.secrets import Secret

TOKEN = "y0_AgAAAAAtoken+with/odd=chars-91c"
POOLS = {"pedestrian": "1", "visit": "2"}


@pytest.fixture
def installed() -> Iterator[list[LogSetup]]:
    """Collects setups and always takes them down (the root logger is global)."""
    setups: list[LogSetup] = []
    yield setups
    for setup in setups:
        setup.close()


def start(folder: Path, level: str, installed: list[LogSetup], *secrets: Secret, console: bool = False) -> LogSetup:
    setup = setup_logging(folder, level, POOLS, SecretRedactor(secrets), console=console)
    installed.append(setup)
    return setup


def flush(setup: LogSetup) -> None:
    for _, handler in setup.installed:
        handler.flush()


def test_each_pool_gets_info_and_error_logs_and_the_pipeline_log_gets_all(
    tmp_path: Path, installed: list[LogSetup]
) -> None:
    """logs/<handler>_<pool>/info.log and error.log, plus logs/pipeline/; no debug.log at INFO."""
    setup = start(tmp_path / "logs", "INFO", installed)
    visit = pool_logger("visit", "2")
    visit.debug("not at INFO")
    visit.info("task 17 aggregated")
    visit.warning("assignment a1 will be auto-accepted in 3 h")
    logging.getLogger("engine.journal").error("journal trouble")
    flush(setup)
    logs = tmp_path / "logs"
    assert sorted(p.name for p in logs.iterdir()) == ["pedestrian_1", "pipeline", "visit_2"]
    assert sorted(p.name for p in (logs / "visit_2").iterdir()) == ["error.log", "info.log"]
    visit_info = (logs / "visit_2" / "info.log").read_text()
    assert "task 17 aggregated" in visit_info and "auto-accepted" in visit_info and "not at INFO" not in visit_info
    visit_error = (logs / "visit_2" / "error.log").read_text()
    assert "auto-accepted" in visit_error and "task 17" not in visit_error
    assert (logs / "pedestrian_1" / "info.log").read_text() == ""
    pipeline_info = (logs / "pipeline" / "info.log").read_text()
    assert "task 17 aggregated" in pipeline_info and "journal trouble" in pipeline_info
    assert " INFO pipeline.pool.visit_2: task 17 aggregated" in pipeline_info
    assert "journal trouble" in (logs / "pipeline" / "error.log").read_text()


def test_debug_level_adds_debug_logs(tmp_path: Path, installed: list[LogSetup]) -> None:
    """log_level = DEBUG adds debug.log in every folder."""
    setup = start(tmp_path / "logs", "DEBUG", installed)
    pool_logger("pedestrian", "1").debug("attachment a-1 downloaded")
    flush(setup)
    assert "attachment a-1 downloaded" in (tmp_path / "logs" / "pedestrian_1" / "debug.log").read_text()
    assert "attachment a-1" not in (tmp_path / "logs" / "pedestrian_1" / "info.log").read_text()
    assert (tmp_path / "logs" / "pipeline" / "debug.log").exists()


def test_higher_level_filters_info_logs(tmp_path: Path, installed: list[LogSetup]) -> None:
    """log_level = WARNING keeps INFO lines out of every file."""
    setup = start(tmp_path / "logs", "WARNING", installed)
    pool_logger("visit", "2").info("quiet please")
    pool_logger("visit", "2").warning("loud")
    flush(setup)
    text = (tmp_path / "logs" / "visit_2" / "info.log").read_text()
    assert "quiet please" not in text and "loud" in text


def test_files_rotate_at_midnight(tmp_path: Path, installed: list[LogSetup]) -> None:
    """Handlers rotate daily at midnight UTC; a due rollover renames info.log with the date."""
    setup = start(tmp_path / "logs", "INFO", installed)
    handlers = [h for _, h in setup.installed if isinstance(h, logging.handlers.TimedRotatingFileHandler)]
    assert handlers and all(h.when == "MIDNIGHT" and h.utc for h in handlers)
    info = next(h for h in handlers if h.baseFilename.endswith(os.path.join("visit_2", "info.log")))
    pool_logger("visit", "2").info("yesterday")
    info.rolloverAt = int(time.time()) - 1  # midnight has just passed
    pool_logger("visit", "2").info("today")
    flush(setup)
    folder = tmp_path / "logs" / "visit_2"
    rotated = [p for p in folder.iterdir() if p.name.startswith("info.log.")]
    assert len(rotated) == 1 and "yesterday" in rotated[0].read_text()
    assert "today" in (folder / "info.log").read_text() and "yesterday" not in (folder / "info.log").read_text()


async def test_token_in_a_failing_request_never_reaches_a_log_file(
    tmp_path: Path, installed: list[LogSetup], capsys: pytest.CaptureFixture[str]
) -> None:
    """DEBUG logging of a real failing HTTP request that carries the token: every file shows it redacted."""
    secret = Secret("toloka_token", TOKEN)
    setup = start(tmp_path / "logs", "DEBUG", installed, secret, console=True)
    log = pool_logger("pedestrian", "1")

    async def refuse(request: web.Request) -> web.Response:
        return web.Response(status=401, text=f"token {request.headers['Authorization']} is not valid")

    app = web.Application()
    app.router.add_get("/api/v1/pools/1", refuse)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        url = f"http://127.0.0.1:{port}/api/v1/pools/1?token={TOKEN}"
        async with aiohttp.ClientSession() as session:
            async with session.get(url, headers={"Authorization": f"OAuth {secret.reveal()}"}) as response:
                body = await response.text()
                log.debug("GET %s -> %s headers=%s", response.url, response.status, dict(response.request_info.headers))
                try:
                    raise RuntimeError(f"Toloka answered {response.status}: {body}")
                except RuntimeError:
                    log.exception("request for pool %s failed", "1")
                log.error("plain message with %s and %r", TOKEN, {"token": TOKEN})
    finally:
        await runner.cleanup()
    flush(setup)
    files = setup.files()
    assert any(f.name == "debug.log" for f in files)
    combined = ""
    for path in files:
        text = path.read_text()
        assert TOKEN not in text, path
        assert "token%2Bwith%2Fodd%3Dchars" not in text, path  # the URL-quoted form too
        combined += text
    assert "[REDACTED:toloka_token]" in combined
    assert "Traceback" in combined and "RuntimeError: Toloka answered 401" in combined
    assert TOKEN not in capsys.readouterr().err


def test_record_with_broken_arguments_is_still_redacted(tmp_path: Path, installed: list[LogSetup]) -> None:
    """A bad format string does not let the raw message through unredacted."""
    setup = start(tmp_path / "logs", "INFO", installed, Secret("toloka_token", TOKEN))
    pool_logger("visit", "2").info(f"token {TOKEN} and %d", "not a number")
    flush(setup)
    text = (tmp_path / "logs" / "visit_2" / "info.log").read_text()
    assert TOKEN not in text and "[REDACTED:toloka_token]" in text


def test_unwritable_logs_folder_is_a_clear_error(tmp_path: Path, installed: list[LogSetup]) -> None:
    """A logs_folder that cannot be created is reported with the key and the path; nothing stays installed."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    before = list(logging.getLogger().handlers)
    with pytest.raises(ConfigError) as info:
        setup_logging(blocker / "logs", "INFO", POOLS, SecretRedactor())
    message = str(info.value)
    assert "[Pipeline] logs_folder" in message and str(blocker / "logs") in message
    assert logging.getLogger().handlers == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes whatever the permission bits say")
def test_read_only_logs_folder_is_a_clear_error(tmp_path: Path) -> None:
    """A folder without write permission is reported with its path."""
    folder = tmp_path / "logs"
    folder.mkdir(mode=0o500)
    try:
        with pytest.raises(ConfigError) as info:
            setup_logging(folder, "INFO", POOLS, SecretRedactor())
        assert str(folder) in str(info.value)
    finally:
        folder.chmod(0o700)
