"""End to end in a real terminal: the `termnist` app inside tmux at 80x24, on full MNIST.

Starts the app with `--data <full MNIST>`, trains two epochs of a small network (the form's
settings come from a pre-written settings file, the way a returning user's would), reads
the screen with `tmux capture-pane`, and checks the chart, the epoch rows and the captioned
test digits. The captures are written to /tmp/termnist-e2e-80x24.txt for the README.

Skips when tmux or the full MNIST set is missing.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import sys
from pathlib import Path

import pytest

from tests.conftest import find_full_mnist
from tests.e2e.tmux import Tmux

pytestmark = [pytest.mark.e2e, pytest.mark.full_mnist, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
CAPTURE = Path("/tmp/termnist-e2e-80x24.txt")
SETTINGS = {"form": {"dataset": "mnist", "hidden": "64", "epochs": "2", "batch_size": "128",
                     "val_size": "5000", "lr": "0.1", "optimizer": "momentum", "seed": "0"}}


def termnist_command() -> str:
    script = Path(sys.executable).with_name("termnist")
    if script.exists():
        return shlex.quote(str(script))
    return f"{shlex.quote(sys.executable)} -m tui.cli"


@pytest.fixture
def mnist_dir() -> Path:
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    d = find_full_mnist()
    if d is None:
        pytest.skip("full MNIST not found: set $TERMNIST_DATA or provide ../shared/data/mnist")
    return d


def start_app(tmp_path: Path, mnist: Path, extra_env: dict[str, str] | None = None,
              settings: dict | None = None, size: tuple[int, int] = (80, 24)) -> Tmux:
    config = tmp_path / "config"
    config.mkdir()
    (config / "settings.json").write_text(json.dumps(settings or SETTINGS))
    env = {"TERMNIST_CONFIG_DIR": str(config), "TERMNIST_STATE_DIR": str(tmp_path / "state"),
           "TERMNIST_LOG_DIR": str(tmp_path / "log"), "TERM": "xterm-256color", "LANG": "C.UTF-8",
           "LC_ALL": "C.UTF-8", **(extra_env or {})}
    for key in ("PATH", "HOME"):
        env.setdefault(key, os.environ.get(key, ""))
    tmux = Tmux(tmp_path, *size)
    tmux.start(f"{termnist_command()} --data {shlex.quote(str(mnist))}", env)
    return tmux


def epoch_rows(screen: str) -> list[str]:
    """The epochs ("1/2", "2/2") of the log rows on screen."""
    return re.findall(r"^\S?\s*([12]/2)\s+\d\.\d{4}\s+\d+\.\d\d%\s+\d\.\d{4}\s+\d+\.\d\d%",
                      screen, flags=re.MULTILINE)


def test_train_two_epochs_in_tmux(tmp_path, mnist_dir):
    tmux = start_app(tmp_path, mnist_dir)
    try:
        first = tmux.wait_for(lambda s: "MNIST (60,000 train images)" in s, 60, "full MNIST to load")
        assert "Hidden layers" in first and "F5" in first.upper()
        tmux.keys("F5")
        tmux.wait_for(lambda s: "test accuracy" in s, 240, "two epochs and the test accuracy")
        # the "finished" notification fades after a few seconds, and the last chart redraw
        # (up to 0.25 s after the run) may still be pending: wait for the settled screen
        training = tmux.wait_for(
            lambda s: "Training finished" not in s and "2.00" in s and epoch_rows(s) == ["1/2", "2/2"],
            30, "the finished run's screen to settle (toast gone, chart at epoch 2, both rows)")
        # the chart: axes and labels, both series
        assert "epoch" in training and "loss" in training
        assert "train" in training and "validation" in training
        assert re.search(r"\d\.\d\d┤", training), "y-axis ticks"
        # the epoch log: header and one row per epoch
        assert "trn loss" in training and "val acc" in training
        assert epoch_rows(training) == ["1/2", "2/2"], training
        assert "2.00" in training, "x axis reaches epoch 2"
        acc = float(re.search(r"test accuracy (\d+\.\d\d)%", training).group(1))
        assert acc > 90.0

        tmux.keys("F3")       # the digits panel, with the preview focused
        digits = tmux.wait_for(lambda s: "[Digits]" in s and "%" in s, 10, "the digit preview")
        captions = re.findall(r"(X?)\s+(\d)\s+(\d+)% \((\d)\)", digits)
        assert len(captions) >= 8, digits
        for mark, guess, _pct, true in captions:
            assert (mark == "X") == (guess != true)
        assert re.search(r"[.:\-=+*#%@]{3}", digits), "ASCII-shaded digits"

        tmux.keys("m")        # mistakes only: every caption is marked
        mistakes = tmux.wait_for(lambda s: "mistakes 1-" in s, 10, "the mistakes filter")
        marked = re.findall(r"(X?)\s+(\d)\s+(\d+)% \((\d)\)", mistakes)
        assert marked and all(m == "X" for m, *_ in marked)

        CAPTURE.write_text(
            "termnist in tmux, 80x24, full MNIST, two epochs of 784-64-10\n\n"
            "--- Training panel ---\n" + training + "\n--- Digits panel (F3) ---\n" + digits
            + "\n--- Mistakes only (m) ---\n" + mistakes, encoding="utf-8")

        tmux.keys("C-q")      # idle: quits without asking
        tmux.wait_for(lambda s: "EXITED 0" in s, 15, "the app to quit")
    finally:
        tmux.kill()


@pytest.mark.parametrize("env", [{"NO_COLOR": "1"}, {"TERM": "xterm"}, {"TERM": "xterm-256color"}],
                         ids=["no-color", "16-colour", "256-colour"])
def test_quit_while_training_in_each_colour_mode(tmp_path, mnist_dir, env):
    """Legible in every colour mode (markers and text carry the meaning), and quitting
    mid-run asks first, then ends the process promptly."""
    slow = {"form": {**SETTINGS["form"], "hidden": "512,256", "epochs": "50", "batch_size": "16"}}
    tmux = start_app(tmp_path, mnist_dir, env, settings=slow)
    try:
        tmux.wait_for(lambda s: "MNIST (60,000 train images)" in s, 60, "full MNIST to load")
        tmux.keys("F5")
        tmux.wait_for(lambda s: "ETA" in s, 60, "training progress")
        tmux.keys("C-q")
        tmux.wait_for(lambda s: "Stop it and quit?" in s, 10, "the quit confirmation")
        tmux.keys("n")
        tmux.wait_for(lambda s: "Stop it and quit?" not in s and "ETA" in s, 10, "training to go on")
        tmux.keys("C-q")
        tmux.wait_for(lambda s: "Stop it and quit?" in s, 10, "the confirmation again")
        tmux.keys("y")
        tmux.wait_for(lambda s: "EXITED 0" in s, 30, "the process to end")
    finally:
        tmux.kill()
