"""The recovery slot: save a cut run, load it, resume it exactly."""

from __future__ import annotations

import json

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
    save_recovery(cut.checkpoint(last_completed_epoch=True), data_dir="/some/dir", reason="hangup",
                  directory=tmp_path)

    rec = load_recovery(tmp_path)
    assert rec is not None
    assert rec.data_dir == "/some/dir" and rec.reason == "hangup"
    # the log is rendered from the structured history, not kept as screen text
    assert [h["epoch"] for h in rec.checkpoint.metadata["history"]] == [1, 2]
    assert "log" not in json.loads((tmp_path / "interrupted.json").read_text())
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


# ------------------------------------------------------------- one slot per running app
def _saved(directory, epochs_done=1, reason="a run"):
    data = make_dataset(n_train=200, n_test=50)
    s = TrainingSession(CFG.replace(epochs=epochs_done), data)
    list(s.run())
    save_recovery(s.checkpoint(), reason=reason, directory=directory)


def test_two_running_apps_hold_different_slots(tmp_path):
    from engine.recovery import claim_slot

    first, second = claim_slot(tmp_path), claim_slot(tmp_path)     # flock: per open file
    try:
        assert first.directory == tmp_path and second.directory == tmp_path / "slot-1"
        assert first.held and second.held
        first.release()
        third = claim_slot(tmp_path)                 # a slot is free again once released
        assert third.directory == tmp_path
        third.release()
    finally:
        first.release()
        second.release()


def test_a_run_no_app_holds_is_adopted_and_a_held_one_is_not(tmp_path):
    from engine.recovery import adopt_orphan, claim_slot, resumable

    me, other = claim_slot(tmp_path), claim_slot(tmp_path)
    try:
        _saved(other.directory, reason="the other app's run")
        assert adopt_orphan(me) is None                          # its app still runs
        assert load_recovery(me.directory) is None
        other.release()                                          # ... and now it is gone
        assert resumable(tmp_path) == tmp_path / "slot-1"
        assert adopt_orphan(me) == tmp_path / "slot-1"
        assert load_recovery(me.directory).reason == "the other app's run"
        assert load_recovery(tmp_path / "slot-1") is None        # moved, not copied
        assert not list((tmp_path / "slot-1").glob("interrupted*"))
    finally:
        me.release()
        other.release()


def test_the_newest_orphan_is_adopted_and_an_own_run_comes_first(tmp_path):
    import json

    from engine.recovery import adopt_orphan, claim_slot

    for i, when in ((1, 100.0), (2, 300.0), (3, 200.0)):
        d = tmp_path / f"slot-{i}"
        _saved(d, reason=f"run {i}")
        info = json.loads((d / "interrupted.json").read_text())
        (d / "interrupted.json").write_text(json.dumps({**info, "saved_at": when}))
    me = claim_slot(tmp_path)
    try:
        assert adopt_orphan(me) == tmp_path / "slot-2"
        assert load_recovery(me.directory).reason == "run 2"
        assert adopt_orphan(me) is None                          # our slot is not empty now
    finally:
        me.release()


def test_resumable_skips_runs_held_by_a_running_app(tmp_path):
    from engine.recovery import claim_slot, resumable

    assert resumable(tmp_path) is None
    other = claim_slot(tmp_path)
    try:
        _saved(other.directory)
        assert resumable(tmp_path) is None
    finally:
        other.release()
    assert resumable(tmp_path) == tmp_path
