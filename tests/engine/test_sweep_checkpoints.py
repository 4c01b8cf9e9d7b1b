"""The sweep keeps each trial's model when asked (SweepSpec.checkpoints): the app's Sweep panel
loads the best trial's model from it through the run store."""

from __future__ import annotations

from engine.checkpoint import load_checkpoint
from engine.config import TrainConfig
from engine.sweep import SweepSpec, parse_space
from engine.sweep.runner import _checkpoint_path
from engine.sweep.worker import keep_checkpoint
from engine.training import TrainingSession
from tests.factories import make_dataset


def test_checkpoint_path_only_when_asked_and_local(tmp_path):
    base = TrainConfig()
    spec = SweepSpec(name="a b/c", space=parse_space(["lr=0.01,0.1"]), base=base)
    assert _checkpoint_path(spec, 3) is None
    spec = SweepSpec(name="a b/c", space=spec.space, base=base, checkpoints=str(tmp_path))
    assert _checkpoint_path(spec, 3) == str(tmp_path / "sweep-a_b_c-trial3.npz")
    remote = SweepSpec(name="x", space=spec.space, base=base, checkpoints=str(tmp_path), cluster="tcp://h:1")
    assert _checkpoint_path(remote, 0) is None


def test_keep_checkpoint_writes_the_last_completed_epoch(tmp_path):
    ds = make_dataset(n_train=300, n_test=50, side=8)
    session = TrainingSession(TrainConfig(hidden=(8,), epochs=1, val_size=50, batch_size=32), ds)
    path = tmp_path / "deep" / "t.npz"
    keep_checkpoint(session, str(path))              # no epoch yet: nothing
    assert not path.exists()
    for _ in session.run():
        pass
    keep_checkpoint(session, str(path))
    ckpt = load_checkpoint(path)
    assert ckpt.config.hidden == (8,) and ckpt.metadata["epochs_done"] == 1
