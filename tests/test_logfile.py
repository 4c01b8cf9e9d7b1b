"""The log file (tui.logfile): where it goes, what a record holds, and that a log file that
cannot be opened never stops termnist."""

from __future__ import annotations

import io
import logging
import logging.handlers
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tui import logfile
from tui.cli import main

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _no_leftover_handlers():
    yield
    logfile.teardown_logging()


def _ours(name: str) -> list[logging.Handler]:
    return [h for h in logging.getLogger(name).handlers if getattr(h, logfile._MARK, False)]


def test_file_is_created_where_asked_and_gets_records_with_tracebacks(tmp_path):
    path = tmp_path / "deep" / "dir" / "my.log"
    assert logfile.setup_logging(path) == path
    assert path.exists()
    logging.getLogger("engine.training").info("epoch %d done", 3)
    try:
        1 / 0  # noqa: B018 - the error whose traceback is logged
    except ZeroDivisionError:
        logging.getLogger("tui.app").exception("training worker failed")
    logging.getLogger("tui.app").debug("not at the default level")
    for h in _ours("tui"):
        h.flush()
    text = path.read_text(encoding="utf-8")
    assert "INFO    engine.training" in text and "epoch 3 done" in text
    assert "ERROR   tui.app" in text and "training worker failed" in text
    assert "Traceback (most recent call last)" in text and "ZeroDivisionError: division by zero" in text
    assert "not at the default level" not in text
    assert f"[{os.getpid()}]" in text
    first = text.splitlines()[0]
    assert first[:4].isdigit() and first[4] == "-"          # starts with a timestamp


def test_default_location_is_the_log_dir_and_it_rotates(tmp_path, monkeypatch):
    monkeypatch.setenv(logfile.ENV_DIR, str(tmp_path / "logs"))
    path = logfile.setup_logging()
    assert path == tmp_path / "logs" / "termnist.log" and path.exists()
    (handler,) = _ours("engine")
    assert isinstance(handler, logging.handlers.RotatingFileHandler)
    assert (handler.maxBytes, handler.backupCount) == (1_000_000, 3)
    assert _ours("tui") == [handler]


def test_default_location_without_override_is_platformdirs(monkeypatch):
    import platformdirs

    monkeypatch.delenv(logfile.ENV_DIR, raising=False)
    assert logfile.default_log_path() == Path(platformdirs.user_log_dir("termnist")) / "termnist.log"


def test_setting_up_again_replaces_the_handler(tmp_path):
    logfile.setup_logging(tmp_path / "a.log")
    logfile.setup_logging(tmp_path / "b.log")
    assert len(_ours("engine")) == 1 and len(_ours("tui")) == 1
    logging.getLogger("tui.x").warning("to b")
    for h in _ours("tui"):
        h.flush()
    assert "to b" in (tmp_path / "b.log").read_text() and "to b" not in (tmp_path / "a.log").read_text()


def test_unwritable_location_is_one_warning_line_and_records_go_nowhere(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    err = io.StringIO()
    assert logfile.setup_logging(blocker / "termnist.log", stderr=err) is None
    lines = err.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("termnist: warning: cannot open the log file")
    assert str(blocker / "termnist.log") in lines[0]
    # no last-resort handler printing over the app's screen
    logging.getLogger("tui.app").error("nobody sees this")
    assert "nobody sees this" not in capsys.readouterr().err


def test_cli_log_file_before_and_after_the_subcommand(tmp_path, capsys):
    before, after = tmp_path / "before.log", tmp_path / "after.log"
    assert main(["--log-file", str(before), "datasets"]) == 0
    assert before.exists() and "termnist datasets started" in before.read_text()
    assert main(["datasets", "--log-file", str(after)]) == 0
    assert after.exists() and "termnist datasets started" in after.read_text()


def test_cli_unwritable_log_file_does_not_stop_the_command(tmp_path, capsys):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert main(["datasets", "--log-file", str(blocker / "x.log")]) == 0
    err = capsys.readouterr().err
    assert err.count("cannot open the log file") == 1


def test_train_logs_to_the_file_and_a_crash_leaves_its_traceback(tmp_path):
    """`termnist train --log-file` in a real process: the start line; then an unexpected error
    (a corrupt engine module stands in for a bug) lands in the log with its traceback."""
    log = tmp_path / "train.log"
    code = ("import sys, engine.presets\n"
            "def boom(name): raise RuntimeError('bug in the engine')\n"
            "engine.presets.get_preset = boom\n"
            "from tui.cli import main\n"
            "sys.exit(main(sys.argv[1:]))\n")
    proc = subprocess.run([sys.executable, "-c", code, "train", "--log-file", str(log)], cwd=REPO,
                          capture_output=True, text=True, timeout=60, check=False,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode != 0
    text = log.read_text(encoding="utf-8")
    assert "INFO    tui.cli [" in text and "termnist train started: train --log-file" in text
    assert "ERROR   tui.cli [" in text and "termnist train failed" in text
    assert "RuntimeError: bug in the engine" in text and "Traceback" in text
