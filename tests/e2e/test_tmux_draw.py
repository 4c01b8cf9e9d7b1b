"""End to end in a real terminal: draw a "1" with the keyboard alone (F8) in tmux at 80x24,
and see the `default` recipe read it as 1.

The model is the `default` preset trained for three epochs on the bundled sample (a few
seconds, headless), saved, and loaded with `termnist --load`. Skips when tmux is missing.
"""

from __future__ import annotations

import shutil

import pytest

from engine.checkpoint import save_checkpoint
from engine.datasets import load_dataset
from engine.presets import get_preset
from engine.training import TrainingSession
from tests.e2e.test_tmux import termnist_command
from tests.e2e.tmux import Tmux

pytestmark = [pytest.mark.e2e, pytest.mark.slow,
              pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")]


def test_a_one_drawn_with_the_keyboard_is_read_as_1(tmp_path):
    data = load_dataset("mnist-sample")
    config = get_preset("default").replace(dataset="mnist-sample", epochs=3, val_size=1000)
    session = TrainingSession(config, data)
    list(session.run())
    model = save_checkpoint(tmp_path / "default.npz", session.checkpoint())
    env = {"TERMNIST_CONFIG_DIR": str(tmp_path / "config"), "TERMNIST_STATE_DIR": str(tmp_path / "state"),
           "TERMNIST_LOG_DIR": str(tmp_path / "log"), "TERM": "xterm-256color", "LANG": "C.UTF-8"}
    (tmp_path / "config").mkdir()          # a returning user who chose the sample: no data panel
    (tmp_path / "config" / "settings.json").write_text('{"ui": {"sample_ok": true}}')
    tmux = Tmux(tmp_path, 80, 24)
    try:
        tmux.start(f"{termnist_command()} --load {model}", env)
        # the status line gives the loaded model's test accuracy once it is evaluated
        tmux.wait_for(lambda s: "idle, test accuracy" in s, 60, "the loaded model")
        tmux.keys("F8")
        tmux.wait_for(lambda s: "draw a digit" in s, 15, "the empty canvas")
        # the pen starts at the canvas centre: up six cells, pen down, twelve cells down, pen up
        tmux.keys(*["Up"] * 6, "Space", *["Down"] * 12, "Space")
        screen = tmux.wait_for(lambda s: "It is a" in s, 15, "a prediction")
        assert "It is a 1 " in screen, screen
        assert "The network sees (28x28)" in screen
    finally:
        tmux.kill()
