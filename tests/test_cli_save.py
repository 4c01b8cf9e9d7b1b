"""`termnist train --save`: a good model is never lost.

A run that diverges or is interrupted never replaces the file named (it is saved beside
it); a target that cannot be written is refused before training; a final write that fails
keeps the weights elsewhere and says where; saves behave like `cp` (umask, kept mode,
written through symlinks) and refuse a directory or an empty name.
"""

from __future__ import annotations

import errno
import os
import signal
from pathlib import Path

import numpy as np
import pytest

from engine.checkpoint import load_checkpoint
from engine.idx import write_idx
from tests.factories import make_dataset
from tui.cli import main

TRAIN = ("train", "--layers", "8", "--epochs", "1", "--val-size", "50")


pytestmark = pytest.mark.usefixtures("isolated_cli")   # tests/conftest.py


@pytest.fixture
def data(tmp_path) -> Path:
    d = tmp_path / "idx"
    d.mkdir()
    ds = make_dataset(n_train=300, n_test=60, side=28)
    for name, a in (("train-images-idx3-ubyte.gz", ds.x_train), ("train-labels-idx1-ubyte.gz", ds.y_train),
                    ("t10k-images-idx3-ubyte.gz", ds.x_test), ("t10k-labels-idx1-ubyte.gz", ds.y_test)):
        write_idx(d / name, a)
    return d


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def good(capsys, data, tmp_path) -> Path:
    """A good model saved by a completed run."""
    path = tmp_path / "good.npz"
    assert run(capsys, *TRAIN, "--data", str(data), "--save", str(path))[0] == 0
    return path


def test_a_diverged_run_never_replaces_the_saved_model(capsys, data, good):
    before = good.read_bytes()
    code, out, err = run(capsys, *TRAIN, "--data", str(data), "--lr", "1e6", "--save", str(good))
    assert code == 1
    assert good.read_bytes() == before
    beside = good.with_name("good.diverged.npz")
    assert beside.is_file() and f"saved as {beside}, not over {good}" in err
    assert "Traceback" not in out + err


def test_an_interrupted_run_never_replaces_the_saved_model(capsys, data, good, monkeypatch):
    from engine.training import TrainingSession

    real_run = TrainingSession.run

    def run_then_ctrl_c(self):
        for event in real_run(self):
            yield event
            if type(event).__name__ == "EpochEnded":
                os.kill(os.getpid(), signal.SIGINT)   # one Ctrl+C: stop after this batch

    monkeypatch.setattr(TrainingSession, "run", run_then_ctrl_c)
    before = good.read_bytes()
    code, _, err = run(capsys, *TRAIN, "--epochs", "3", "--data", str(data), "--save", str(good))
    assert code == 130
    assert good.read_bytes() == before
    beside = good.with_name("good.interrupted.npz")
    assert load_checkpoint(beside).metadata["epochs_done"] == 1
    assert f"saved as {beside}, not over {good}" in err


@pytest.mark.parametrize("case", ["missing-dir", "read-only", "a-directory", "empty"])
def test_a_target_that_cannot_be_written_is_refused_before_training(capsys, data, tmp_path, monkeypatch, case):
    target = {"missing-dir": tmp_path / "nowhere" / "m.npz", "read-only": tmp_path / "m.npz",
              "a-directory": tmp_path, "empty": ""}[case]
    if case == "read-only":    # root writes anywhere: make creating the probe file fail as on a ro mount
        import engine.checkpoint

        def refuse(*args, **kwargs):
            raise OSError(errno.EROFS, "Read-only file system")

        monkeypatch.setattr(engine.checkpoint.tempfile, "mkstemp", refuse)
    code, out, err = run(capsys, *TRAIN, "--data", str(data), "--save", str(target))
    assert code == 2
    assert out == ""                                   # nothing was trained
    line, = err.strip().splitlines()
    assert line.startswith("termnist: error: --save: ")
    assert {"missing-dir": "does not exist", "read-only": "read-only file system",
            "a-directory": "is a directory", "empty": "empty path"}[case] in line


def test_a_final_write_that_fails_keeps_the_weights_and_says_where(capsys, data, tmp_path, monkeypatch):
    real_replace = os.replace

    def disk_full_for_the_target(src, dst, *args, **kwargs):
        if Path(dst).name == "m.npz":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", disk_full_for_the_target)
    code, _, err = run(capsys, *TRAIN, "--data", str(data), "--save", str(tmp_path / "m.npz"))
    assert code == 1
    assert not (tmp_path / "m.npz").exists()
    line, = err.strip().splitlines()
    assert "no space left on device" in line and "the weights are kept in" in line
    kept = Path(line.split("the weights are kept in ", 1)[1].split(" instead")[0])
    assert kept.parent == tmp_path / "state" / "unsaved"
    assert load_checkpoint(kept).metadata["epochs_done"] == 1


def test_saves_respect_the_umask_and_keep_an_existing_mode(capsys, data, tmp_path):
    old = os.umask(0o027)
    try:
        assert run(capsys, *TRAIN, "--data", str(data), "--save", str(tmp_path / "new.npz"))[0] == 0
        assert (tmp_path / "new.npz").stat().st_mode & 0o777 == 0o640
        kept = tmp_path / "kept.npz"
        kept.write_bytes(b"old")
        kept.chmod(0o604)
        assert run(capsys, *TRAIN, "--data", str(data), "--save", str(kept))[0] == 0
        assert kept.stat().st_mode & 0o777 == 0o604
    finally:
        os.umask(old)


def test_a_save_writes_through_a_symlink(capsys, data, tmp_path):
    (tmp_path / "models").mkdir()
    real = tmp_path / "models" / "real.npz"
    real.write_bytes(b"old")
    link = tmp_path / "link.npz"
    link.symlink_to(real)
    assert run(capsys, *TRAIN, "--data", str(data), "--save", str(link))[0] == 0
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert load_checkpoint(real).metadata["epochs_done"] == 1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]   # no temp file left


@pytest.mark.parametrize(("given", "written"), [("model", "model.npz"), ("model.", "model.npz"),
                                                 ("model.npz", "model.npz"), ("m.v2.npz", "m.v2.npz"),
                                                 ("n" * 251 + ".npz", "n" * 251 + ".npz")])   # 255: the limit
def test_the_name_written(capsys, data, tmp_path, given, written):
    assert run(capsys, *TRAIN, "--data", str(data), "--save", str(tmp_path / given))[0] == 0
    assert (tmp_path / written).is_file()
    assert np.load(tmp_path / written, allow_pickle=False)["meta"].shape == ()
