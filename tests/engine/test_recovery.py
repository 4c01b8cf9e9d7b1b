"""The recovery slot: save a cut run, load it, resume it exactly."""

from __future__ import annotations

import numpy as np
import pytest

from engine import events as ev
from engine.errors import CheckpointError
from engine.recovery import clear_recovery, load_recovery, save_recovery
from engine.training import TrainConfig, TrainingSession
from tests.factories import make_dataset

CFG = TrainConfig(hidden=(16,), epochs=4, batch_size=32, val_size=100, dataset="synthetic")


def test_save_load_resume_matches_uninterrupted(tmp_path):
    data = make_dataset()
    straight = TrainingSession(CFG, data)
    list(straight.run())

    cut = TrainingSession(CFG, data, progress_every=1)
    for e in cut.run():
        # the connection drops in the middle of epoch 3
        if isinstance(e, ev.BatchProgress) and e.epoch == 3 and e.step == 5:
            cut.stop()
    save_recovery(cut.checkpoint(last_completed_epoch=True), log=["epoch 1", "epoch 2"],
                  data_dir="/some/dir", reason="hangup", directory=tmp_path)

    rec = load_recovery(tmp_path)
    assert rec is not None
    assert rec.log == ["epoch 1", "epoch 2"] and rec.data_dir == "/some/dir" and rec.reason == "hangup"
    assert rec.checkpoint.metadata["epochs_done"] == 2
    assert "2/4 epochs" in rec.describe()

    resumed = TrainingSession(rec.checkpoint.config, data, resume=rec.checkpoint)
    events = list(resumed.run())
    assert [e.epoch for e in events if isinstance(e, ev.EpochEnded)] == [3, 4]
    a, b = straight.model.get_weights(), resumed.model.get_weights()
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3, 4]


def test_empty_slot_and_clear(tmp_path):
    assert load_recovery(tmp_path) is None
    data = make_dataset()
    s = TrainingSession(CFG.replace(epochs=1), data)
    list(s.run())
    save_recovery(s.checkpoint(), directory=tmp_path)
    assert load_recovery(tmp_path) is not None
    clear_recovery(tmp_path)
    assert load_recovery(tmp_path) is None
    assert list(tmp_path.iterdir()) == []


def test_damaged_marker_is_a_clear_error(tmp_path):
    (tmp_path / "interrupted.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="damaged recovery file"):
        load_recovery(tmp_path)
