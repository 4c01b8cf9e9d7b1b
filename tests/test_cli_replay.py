"""`termnist train --replay RUN_ID`: a run's settings and its recorded live changes, applied
at the same steps, give bit-identical weights; `termnist runs show` lists the changes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from engine import events as ev
from engine.checkpoint import load_checkpoint
from engine.datasets import load_dataset
from engine.runs import RunRecorder, RunStore
from engine.training import TrainConfig, TrainingSession

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("isolated_cli")


def termnist(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tui.cli", *args], capture_output=True, text=True, cwd=REPO,
                          stdin=subprocess.DEVNULL, timeout=timeout, check=False,
                          env={**os.environ, "PYTHONPATH": str(REPO)})


def train_with_changes() -> tuple[str, dict[str, np.ndarray], list[ev.HyperparamsChanged]]:
    """A run as the app trains one (one BLAS thread, recorded), with live changes at set steps."""
    ds = load_dataset("mnist-sample")
    config = TrainConfig(hidden=(8,), epochs=2, batch_size=100, val_size=2000, lr=0.05, seed=7)
    at = {30: {"lr": 0.1}, 60: {"batch_size": 64, "momentum": 0.8}, 100: {"weight_decay": 0.0005}}
    session = TrainingSession(config, ds, progress_every=1)
    changed = []
    with threadpool_limits(limits=1), RunRecorder.open(dataset=ds, source="app", threads=1) as recorder:
        for e in session.run():
            recorder.feed(e)
            if isinstance(e, ev.BatchProgress) and e.global_step in at:
                session.change(**at[e.global_step])
            if isinstance(e, ev.HyperparamsChanged):
                changed.append(e)
        run_id = recorder.last_run_id
    assert run_id and len(changed) == 4
    return run_id, session.model.get_weights(), changed


def test_replay_gives_bit_identical_weights_and_runs_show_lists_the_changes(tmp_path):
    run_id, weights, changed = train_with_changes()
    stored = RunStore().get(run_id).changes
    assert [(c["epoch"], c["step"], c["field"], c["new"]) for c in stored] == [
        (e.epoch, e.step_in_epoch, e.field, e.new) for e in changed]

    out = tmp_path / "replayed.npz"
    r = termnist("train", "--replay", run_id[:8], "--save", str(out), "--threads", "1")
    assert r.returncode == 0, r.stderr
    assert f"replaying run {run_id}: its settings and 4 recorded live change(s)" in r.stderr + r.stdout
    for e in changed:                     # each applied where it was, said as the app says it
        assert e.describe() in r.stdout
    replayed = load_checkpoint(out).model.get_weights()
    assert replayed.keys() == weights.keys()
    assert all(np.array_equal(replayed[k], weights[k]) for k in weights)

    shown = termnist("runs", "show", run_id)
    assert shown.returncode == 0, shown.stderr
    assert "live changes:" in shown.stdout
    for line in ("lr", "batch_size", "momentum", "weight_decay"):
        assert line in shown.stdout.split("live changes:")[1]


def test_replay_refuses_settings_flags_and_unknown_runs():
    r = termnist("train", "--replay", "abc", "--lr", "0.1")
    assert r.returncode == 2 and "--replay: takes the run's own settings; do not combine it with --lr" in r.stderr
    r = termnist("train", "--replay", "00000000")
    assert r.returncode == 2 and "--replay: no run" in r.stderr and "Traceback" not in r.stderr
