"""End to end in a real terminal: live changes through tmux at 80x24 -- "*" and "/" change the
learning rate of a run in progress (also with a form field focused), Ctrl+N / Ctrl+T run one
step / one epoch while paused. The bundled sample; skips when tmux is missing."""

from __future__ import annotations

import json
import os
import re
import shutil

import pytest

from tests.e2e.test_tmux import termnist_command
from tests.e2e.tmux import Tmux

pytestmark = [pytest.mark.e2e, pytest.mark.slow,
              pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")]

# 8,000 training rows one at a time through 512-256: seconds an epoch (the log's lines stay on
# screen), until stopped
SETTINGS = {"form": {"dataset": "mnist", "hidden": "512,256", "epochs": "1000", "batch_size": "1",
                     "val_size": "2000", "lr": "0.005", "optimizer": "sgd", "seed": "0"},
            "ui": {"sample_ok": True}}


def show_panel(tmux: Tmux, title: str) -> None:
    """F3 until the panel bar marks ``title`` as shown (the number of panels may grow). One F3
    at a time: the next only once the bar shows the last one's effect (a loaded machine may
    take longer than any fixed pause, and a second F3 in flight would overshoot)."""
    def marked(screen: str) -> str:
        bar = screen.splitlines()[0] if screen else ""
        found = re.search(r"\[(\w+)\]", bar)
        return found.group(1) if found else ""

    for _ in range(8):
        now = marked(tmux.screen())
        if now == title:
            return
        tmux.keys("F3")
        tmux.wait_for(lambda s, was=now: marked(s) not in ("", was), 15, f"F3 to move on from {now}")
    raise AssertionError(f"F3 never showed the {title} panel")


def test_live_keys_in_tmux(tmp_path):
    config = tmp_path / "config"
    config.mkdir()
    (config / "settings.json").write_text(json.dumps(SETTINGS))
    env = {"TERMNIST_CONFIG_DIR": str(config), "TERMNIST_STATE_DIR": str(tmp_path / "state"),
           "TERMNIST_LOG_DIR": str(tmp_path / "log"), "TERM": "xterm-256color", "LANG": "C.UTF-8",
           "LC_ALL": "C.UTF-8", "TERMNIST_DATA": str(tmp_path / "no-data")}
    for key in ("PATH", "HOME"):
        env.setdefault(key, os.environ.get(key, ""))
    tmux = Tmux(tmp_path, 80, 24)
    try:
        tmux.start(f"{termnist_command()} --dataset mnist-sample", env)
        tmux.wait_for(lambda s: "Hidden layers" in s and "sample" in s, 60, "the app with the sample")
        tmux.keys("F5")
        tmux.wait_for(lambda s: "training epoch" in s, 60, "training")
        tmux.keys("*")
        tmux.wait_for(lambda s: re.search(r"epoch \d+ step \d+: lr 0\.005 -> 0\.01", s), 15, "lr x2")
        show_panel(tmux, "Settings")                      # the form: a field focused
        tmux.wait_for(lambda s: "Learning rate   0.01 " in s, 15, "the form, showing lr x2")
        tmux.keys("/")
        tmux.wait_for(lambda s: "Learning rate   0.005" in s, 15, "lr /2 shown in the form")
        show_panel(tmux, "Training")                      # back to the training panel
        screen = tmux.wait_for(lambda s: re.search(r"lr 0\.01 -> 0\.005", s), 15, "lr /2 in the log")
        tmux.keys("F6")
        screen = tmux.wait_for(lambda s: re.search(r"paused at epoch \d+ step \d+", s), 15, "pause")
        epoch, step = map(int, re.search(r"paused at epoch (\d+) step (\d+)", screen).groups())
        tmux.keys("C-n")
        tmux.wait_for(lambda s: f"one step: paused at epoch {epoch} step {step + 1}" in s, 15, "one step")
        tmux.keys("C-t")
        tmux.wait_for(lambda s: f"one epoch: paused at epoch {epoch + 1} step 0" in s, 60, "one epoch")
        assert "PAUSED" in tmux.screen()
        tmux.keys("F7")
        tmux.wait_for(lambda s: "stopped after" in s, 30, "stop")
    finally:
        tmux.kill()
