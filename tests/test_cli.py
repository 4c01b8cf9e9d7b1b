"""The `termnist` command: train/eval end to end on small data, errors, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.factories import make_dataset, write_idx_set

REPO = Path(__file__).resolve().parents[1]


def termnist(*args: str, env: dict | None = None, stdin=subprocess.DEVNULL, timeout: float = 120):
    return subprocess.run(
        [sys.executable, "-m", "tui.cli", *args],
        capture_output=True, text=True, cwd=REPO, stdin=stdin, timeout=timeout, check=False,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture(scope="module")
def idx_dir(tmp_path_factory):
    """A tiny dataset written as the four canonical MNIST IDX files (28x28 to fit mnist)."""
    d = tmp_path_factory.mktemp("idx")
    ds = make_dataset(n_train=400, n_test=100, side=28)
    return write_idx_set(d, ds)


def test_help_is_usable():
    r = termnist("--help")
    assert r.returncode == 0
    for word in ("train", "eval", "download", "datasets"):
        assert word in r.stdout


def test_train_json_events_then_eval(idx_dir, tmp_path):
    model = tmp_path / "m.npz"
    r = termnist("train", "--data", str(idx_dir), "--layers", "32", "--epochs", "2", "--val-size", "100",
                 "--batch-size", "32", "--json", "--save", str(model))
    assert r.returncode == 0, r.stderr
    events = [json.loads(line) for line in r.stdout.splitlines()]
    epochs = [e for e in events if e["event"] == "epoch"]
    assert [e["epoch"] for e in epochs] == [1, 2]
    for key in ("train_loss", "train_acc", "val_loss", "val_acc", "seconds", "samples_per_s"):
        assert isinstance(epochs[0][key], float)
    done = [e for e in events if e["event"] == "done"]
    assert len(done) == 1 and done[0]["test_acc"] > 0.5 and "test_loss" in done[0]
    assert model.exists()

    r = termnist("eval", str(model), "--data", str(idx_dir), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert abs(out["test_acc"] - done[0]["test_acc"]) < 1e-9
    cm = np.array(out["confusion_matrix"])
    assert cm.shape == (10, 10) and cm.sum() == 100
    assert len(out["per_class_acc"]) == 10

    r = termnist("eval", str(model), "--data", str(idx_dir))
    assert r.returncode == 0 and "confusion matrix" in r.stdout and "test accuracy" in r.stdout


def test_train_human_output(idx_dir):
    r = termnist("train", "--data", str(idx_dir), "--layers", "16", "--epochs", "1", "--val-size", "50")
    assert r.returncode == 0, r.stderr
    assert "epoch   1/1" in r.stdout and "test accuracy" in r.stdout


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--lr", "abc"], "--lr"),
        (["--lr", "-1"], "--lr"),
        (["--batch-size", "0"], "--batch-size"),
        (["--layers", "128,,x"], "--layers"),
        (["--activation", "softsign"], "--activation"),
        (["--preset", "nope"], "preset"),
        (["--schedule", "cosine", "--epochs", "2", "--warmup-epochs", "20"], "error: --warmup-epochs:"),
        (["--gamma", "1.5"], "error: --gamma:"),
    ],
)
def test_usage_errors_exit_2_with_one_line(idx_dir, args, needle):
    r = termnist("train", "--data", str(idx_dir), *args)
    assert r.returncode == 2
    assert needle in r.stderr
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_missing_data_dir_exits_1_without_traceback(tmp_path):
    r = termnist("train", "--data", str(tmp_path / "nowhere"), "--epochs", "1")
    assert r.returncode == 1
    assert "Traceback" not in r.stderr and r.stderr.strip()


def test_eval_of_a_broken_model_exits_1(tmp_path, idx_dir):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    r = termnist("eval", str(bad), "--data", str(idx_dir))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "bad.npz" in r.stderr


def test_diverging_run_exits_1_with_message(idx_dir):
    r = termnist("train", "--data", str(idx_dir), "--layers", "32", "--lr", "10000", "--epochs", "3",
                 "--val-size", "50", "--activation", "relu")
    assert r.returncode == 1
    assert "diverged at epoch" in r.stderr and "smaller learning rate" in r.stderr
    assert "Traceback" not in r.stderr


def test_app_without_a_terminal_says_use_train():
    r = termnist()
    assert r.returncode == 2
    assert "termnist train" in r.stderr
    assert "\x1b[" not in r.stdout + r.stderr


def test_ctrl_c_stops_after_the_current_batch_and_exits_130(idx_dir):
    import signal

    p = subprocess.Popen(
        [sys.executable, "-m", "tui.cli", "train", "--data", str(idx_dir), "--layers", "16", "--epochs", "100000",
         "--batch-size", "8", "--val-size", "50", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, stdin=subprocess.DEVNULL,
    )
    try:
        for line in p.stdout:
            if '"event": "epoch"' in line:
                break
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
    finally:
        p.kill()
    assert p.returncode == 130
    assert "Traceback" not in err
    assert "interrupted" in err or "interrupted" in out
    assert '"event": "done"' in out  # it finished cleanly: test evaluation of the kept weights


def test_a_stop_mid_epoch_is_printed_where_the_weights_are(capsys):
    # Issue 12: "stopped after 1 completed epoch(s)" and a test accuracy of weights that were
    # in fact 172 steps into epoch 2.
    from engine import events as ev
    from tui.commands.train import _Output

    out = _Output(json_mode=False)
    out.event(ev.Stopped(epoch=1, step=954, steps_into_epoch=172))
    out.event(ev.Finished(epochs_done=1, test_loss=0.1, test_acc=0.9712, seconds=3.0, reason="stopped",
                          steps_into_epoch=172))
    text = capsys.readouterr().out
    assert "stopped at epoch 2 step 172 (weights at that step, after 1 completed epoch(s))" in text
    assert "test accuracy 97.12% (loss 0.1000) of the weights at epoch 2 step 172" in text
    out.event(ev.Stopped(epoch=2, step=1564))
    assert "stopped after 2 completed epoch(s)" in capsys.readouterr().out


def test_the_train_flags_help_names_exactly_the_engines_choices():
    # The parser must not import NumPy (so it cannot ask the registries); this keeps its
    # help text true to them.
    import re

    from engine.config import CHOICES
    from tui.commands.train import TRAIN_FLAGS

    for flag, field, _, help_text in TRAIN_FLAGS:
        if field in CHOICES:
            words = set(re.findall(r"[a-z][a-z0-9_-]*", help_text))
            assert set(CHOICES[field]) <= words, (flag, help_text)
