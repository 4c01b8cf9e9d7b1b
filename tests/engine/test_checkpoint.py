"""Checkpoints: round trip, atomic write, and refusal of anything unsafe or inconsistent."""

from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest

from engine import events as ev
from engine.checkpoint import load_checkpoint, save_checkpoint
from engine.errors import CheckpointError
from engine.training import TrainConfig, TrainingSession
from tests.factories import make_dataset

CFG = TrainConfig(hidden=(16, 8), batch_size=32, epochs=2, val_size=100, dataset="synthetic", optimizer="adam", lr=0.01)


@pytest.fixture(scope="module")
def trained():
    data = make_dataset()
    s = TrainingSession(CFG, data)
    events = list(s.run())
    assert isinstance(events[-1], ev.Finished)
    return s, data


def test_round_trip_restores_everything(tmp_path, trained):
    session, _data = trained
    path = save_checkpoint(tmp_path / "model.npz", session.checkpoint())
    ck = load_checkpoint(path)
    assert ck.config == CFG
    w0, w1 = session.model.get_weights(), ck.model.get_weights()
    assert w0.keys() == w1.keys() and all(np.array_equal(w0[k], w1[k]) for k in w0)
    assert ck.model.sizes == session.model.sizes
    assert ck.metadata["epochs_done"] == 2
    assert ck.metadata["dataset"] == "synthetic"
    assert abs(ck.metadata["test_acc"] - session.last_test[1]) < 1e-12
    assert len(ck.metadata["history"]) == 2
    opt = session.optimizer.state_dict()
    assert ck.optimizer_state is not None and opt.keys() == ck.optimizer_state.keys()
    np.testing.assert_array_equal(ck.model.predict_proba(np.zeros((2, 64), np.float32)),
                                  session.model.predict_proba(np.zeros((2, 64), np.float32)))


def test_suffix_added_and_no_temp_files_left(tmp_path, trained):
    session, _ = trained
    path = save_checkpoint(tmp_path / "model", session.checkpoint())
    assert path.name == "model.npz"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]


def test_save_into_missing_directory_is_a_clear_error(tmp_path, trained):
    session, _ = trained
    with pytest.raises(CheckpointError, match="does not exist"):
        save_checkpoint(tmp_path / "nope" / "m.npz", session.checkpoint())


def test_failed_save_keeps_the_old_file(tmp_path, trained, monkeypatch):
    session, _ = trained
    path = save_checkpoint(tmp_path / "m.npz", session.checkpoint())
    before = path.read_bytes()

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(CheckpointError, match=r"(?i)no space left"):
        save_checkpoint(path, session.checkpoint())
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]


def _rewrite(src, dst, drop=(), replace=None):
    """Copy the npz at src to dst, dropping and replacing entries."""
    with np.load(src, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if k not in drop}
    arrays.update(replace or {})
    np.savez(dst, **arrays)
    return dst


def test_missing_key_refused(tmp_path, trained):
    src = save_checkpoint(tmp_path / "a.npz", trained[0].checkpoint())
    bad = _rewrite(src, tmp_path / "b.npz", drop=("param/dense1.W",))
    with pytest.raises(CheckpointError, match=r"missing array 'dense1\.W'"):
        load_checkpoint(bad)


def test_wrong_shape_refused(tmp_path, trained):
    src = save_checkpoint(tmp_path / "a.npz", trained[0].checkpoint())
    bad = _rewrite(src, tmp_path / "b.npz", replace={"param/dense0.W": np.zeros((64, 17), np.float32)})
    with pytest.raises(CheckpointError, match=r"'dense0.W' has shape \(64, 17\).*needs \(64, 16\)"):
        load_checkpoint(bad)


def test_nan_weights_refused(tmp_path, trained):
    src = save_checkpoint(tmp_path / "a.npz", trained[0].checkpoint())
    w = np.full((64, 16), np.nan, np.float32)
    bad = _rewrite(src, tmp_path / "b.npz", replace={"param/dense0.W": w})
    with pytest.raises(CheckpointError, match="NaN"):
        load_checkpoint(bad)


class Evil:
    def __reduce__(self):
        return (os.system, ("touch /tmp/termnist-pwned",))


def test_object_array_with_pickle_payload_refused_and_not_executed(tmp_path, trained):
    src = save_checkpoint(tmp_path / "a.npz", trained[0].checkpoint())
    payload = np.array([Evil()], dtype=object)
    bad = tmp_path / "b.npz"
    with np.load(src, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["param/dense0.W"] = payload
    np.savez(bad, **arrays)  # np.savez pickles object arrays
    if os.path.exists("/tmp/termnist-pwned"):
        os.unlink("/tmp/termnist-pwned")
    with pytest.raises(CheckpointError, match="pickle"):
        load_checkpoint(bad)
    assert not os.path.exists("/tmp/termnist-pwned")


def test_plain_pickle_file_refused(tmp_path):
    p = tmp_path / "m.npz"
    p.write_bytes(pickle.dumps({"dense0.W": np.zeros(3)}))
    with pytest.raises(CheckpointError, match=r"not a termnist checkpoint|not a readable"):
        load_checkpoint(p)


def test_truncated_file_refused(tmp_path, trained):
    src = save_checkpoint(tmp_path / "a.npz", trained[0].checkpoint())
    data = src.read_bytes()
    for cut in (10, len(data) // 2, len(data) - 30):
        bad = tmp_path / f"cut{cut}.npz"
        bad.write_bytes(data[:cut])
        with pytest.raises(CheckpointError):
            load_checkpoint(bad)


def test_not_a_zip_refused(tmp_path):
    p = tmp_path / "m.npz"
    p.write_text("hello, I am not a model")
    with pytest.raises(CheckpointError, match=r"not a termnist checkpoint|not a readable"):
        load_checkpoint(p)


def test_foreign_npz_refused(tmp_path):
    p = tmp_path / "m.npz"
    np.savez(p, W=np.zeros((3, 3)))
    with pytest.raises(CheckpointError, match="no 'meta'"):
        load_checkpoint(p)


def test_meta_without_format_marker_refused(tmp_path, trained):
    src = save_checkpoint(tmp_path / "a.npz", trained[0].checkpoint())
    bad = _rewrite(src, tmp_path / "b.npz", replace={"meta": np.array(json.dumps({"x": 1}))})
    with pytest.raises(CheckpointError, match="format marker"):
        load_checkpoint(bad)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        load_checkpoint(tmp_path / "nothing.npz")
    with pytest.raises(CheckpointError, match="directory"):
        load_checkpoint(tmp_path)


def test_checkpoint_of_last_completed_epoch(trained):
    session, _ = trained
    ck = session.checkpoint(last_completed_epoch=True)
    assert ck.metadata["epochs_done"] == 2
    w = session.model.get_weights()
    assert all(np.array_equal(w[k], ck.model.get_weights()[k]) for k in w)


@pytest.mark.parametrize("optimizer, slot, lr", [("adagrad", "sum", 0.05), ("rmsprop", "square_avg", 0.001)])
def test_adaptive_optimizer_state_survives_a_file_and_resume_is_exact(tmp_path, optimizer, slot, lr):
    """AdaGrad/RMSProp: 2 epochs, save to a file, load, resume 1 more == 3 epochs straight."""
    data = make_dataset()
    cfg = CFG.replace(optimizer=optimizer, lr=lr, epochs=3)
    full = TrainingSession(cfg, data)
    list(full.run())
    first = TrainingSession(cfg, data)
    for e in first.run():
        if isinstance(e, ev.EpochEnded) and e.epoch == 2:
            first.stop()
    path = save_checkpoint(tmp_path / f"{optimizer}.npz", first.checkpoint())
    ck = load_checkpoint(path)
    assert ck.optimizer_state is not None
    assert f"{slot}/dense0.W" in ck.optimizer_state and int(ck.optimizer_state["step"]) > 0
    for k, v in first.optimizer.state_dict().items():
        np.testing.assert_array_equal(ck.optimizer_state[k], v)
    second = TrainingSession(cfg, data, resume=ck)
    list(second.run())
    wf, ws = full.model.get_weights(), second.model.get_weights()
    assert all(np.array_equal(wf[k], ws[k]) for k in wf)
