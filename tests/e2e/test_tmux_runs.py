"""End to end in tmux at 80x24: two short runs with different learning rates on the bundled
sample, in the real app; then the Runs panel (F3) lists both, and selecting both overlays
their validation curves with a legend naming each learning rate.

The captures are written to /tmp/termnist-e2e-runs-80x24.txt (for the README). Skips when
tmux is missing. No full MNIST needed: the app's search finds none (private cache dir, no
$TERMNIST_DATA) and trains on the bundled sample.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from engine.runs import RunStore
from tests.e2e.test_tmux import termnist_command
from tests.e2e.tmux import Tmux

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CAPTURE = Path("/tmp/termnist-e2e-runs-80x24.txt")
SETTINGS = {"form": {"dataset": "mnist", "hidden": "32", "epochs": "2", "batch_size": "128",
                     "val_size": "1000", "lr": "0.1", "optimizer": "momentum", "seed": "0"}}


def status_line(screen: str) -> str:
    lines = screen.rstrip("\n").splitlines()
    return lines[-2] if len(lines) >= 2 else ""


def test_two_runs_overlaid_in_the_runs_panel(tmp_path):
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed")
    config = tmp_path / "config"
    config.mkdir()
    (config / "settings.json").write_text(json.dumps(SETTINGS))
    state = tmp_path / "state"
    env = {"TERMNIST_CONFIG_DIR": str(config), "TERMNIST_STATE_DIR": str(state),
           "TERMNIST_LOG_DIR": str(tmp_path / "log"), "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "XDG_DATA_HOME": str(tmp_path / "data"), "TERM": "xterm-256color", "LANG": "C.UTF-8",
           "LC_ALL": "C.UTF-8"}
    for key in ("PATH", "HOME"):
        env.setdefault(key, os.environ.get(key, ""))
    tmux = Tmux(tmp_path, 80, 24)
    tmux.start(termnist_command(), env)
    try:
        tmux.wait_for(lambda s: "sample" in status_line(s), 60, "the bundled sample to load")
        # run 1: lr 0.1, from the remembered settings
        tmux.keys("F5")
        tmux.wait_for(lambda s: "idle, test accuracy" in status_line(s), 120, "the first run to end")
        # run 2: lr 0.02, typed into the form (F3 from the training panel: digits, runs, sweep, form)
        for panel in ("[Digits]", "[Runs]", "[Sweep]", "[Settings]"):
            tmux.keys("F3")
            tmux.wait_for(lambda s, p=panel: p in s, 10, f"the {panel} panel")
        time.sleep(1.0)                  # the panel's focus lands after a refresh
        tmux.keys("Tab", "Tab", "Tab", "Tab", "Tab", "Tab")     # preset .. optimizer -> learning rate
        time.sleep(0.5)
        tmux.keys("End", *["BSpace"] * 8)
        tmux.wait_for(lambda s: "^ required" in s, 10, "the learning rate emptied")
        time.sleep(0.5)
        tmux.run("send-keys", "-t", tmux.name, "-l", "0.02")
        tmux.wait_for(lambda s: "Learning rate   0.02" in s, 10, "lr 0.02 in the form")
        tmux.keys("F5")
        tmux.wait_for(lambda s: "training" in status_line(s), 60, "the second run to start")
        tmux.wait_for(lambda s: "idle, test accuracy" in status_line(s), 120, "the second run to end")
        with RunStore(state / "runs.sqlite", readonly=True) as store:
            runs = store.list()
        assert [r.settings["lr"] for r in runs] == [0.02, 0.1]
        assert all(r.status == "completed" and r.epochs_done == 2 and r.checkpoint for r in runs)
        # the Runs panel: both runs, newest first; select both
        tmux.wait_for(lambda s: "[Training]" in s, 10, "the training panel (F5 showed it)")
        for panel in ("[Digits]", "[Runs]"):
            tmux.keys("F3")
            tmux.wait_for(lambda s, p=panel: p in s, 10, f"the {panel} panel")
        tmux.wait_for(lambda s: "space Select" in s, 10, "the table focused (its keys in the footer)")
        table = tmux.wait_for(lambda s: "2 runs" in s, 10, "the two runs listed")
        assert "0.02" in table and "0.1" in table
        tmux.keys("Up", "Up")            # the cursor stayed on the run it was on: the older one
        time.sleep(0.3)
        tmux.keys("Space")               # selects the newest run, the cursor moves down one
        tmux.wait_for(lambda s: "1 selected" in s, 10, "one run selected")
        tmux.keys("Space")
        overlay = tmux.wait_for(lambda s: "lr=0.02" in s and "lr=0.1" in s, 15, "the overlay's legend")
        assert "2 selected" in overlay and "val loss" in overlay
        tmux.keys("F2")
        accuracy = tmux.wait_for(lambda s: "val acc %" in s, 10, "the accuracy overlay")
        assert "lr=0.02" in accuracy and "lr=0.1" in accuracy
        tmux.keys("d")
        diff = tmux.wait_for(lambda s: "Settings that differ" in s, 10, "the diff")
        assert "lr" in diff and "0.02" in diff
        tmux.keys("Escape")
        CAPTURE.write_text("termnist in tmux, 80x24, bundled sample: two runs, lr 0.1 and 0.02\n\n"
                           "--- Runs panel, both selected (validation loss) ---\n" + overlay
                           + "\n--- F2: validation accuracy ---\n" + accuracy
                           + "\n--- d: diff ---\n" + diff, encoding="utf-8")
        tmux.keys("C-q")
        tmux.wait_for(lambda s: "EXITED 0" in s, 15, "the app to quit")
    finally:
        tmux.kill()
