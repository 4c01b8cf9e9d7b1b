"""A checkpoint's metadata is validated completely, against its arrays, before anything is
built; every error is a CheckpointError naming the file; a file that is not a zip says so."""

from __future__ import annotations

import copy
import gzip
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import engine.checkpoint
from engine.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from engine.errors import CheckpointError
from engine.mlp import MLP
from engine.training import TrainConfig
from tui.cli import main


@pytest.fixture
def saved(tmp_path) -> Path:
    model = MLP(sizes=(16, 8, 10), rng=np.random.default_rng(0))
    config = TrainConfig(hidden=(8,))
    meta = {"dataset": "mnist", "epochs_done": 2, "global_step": 20, "history": [{"epoch": 1}],
            "rng_state": np.random.default_rng(1).bit_generator.state, "class_names": list("0123456789")}
    return save_checkpoint(tmp_path / "good.npz", Checkpoint(model, config, meta))


def rewrite(src: Path, dst: Path, change) -> Path:
    with np.load(src, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["meta"]))
    change(meta)
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(dst, **arrays)
    return dst


def setter(*keys: str, value: Any):
    def change(meta: dict[str, Any]) -> None:
        d = meta
        for k in keys[:-1]:
            d = d[k]
        d[keys[-1]] = value
    return change


BAD = {
    "version-string": (setter("version", value="1"), "invalid 'version'"),
    "sizes-strings": (setter("architecture", "sizes", value=["16", "8", "10"]), "'sizes' must be"),
    "sizes-absurd": (setter("architecture", "sizes", value=[16, 10**12, 10]), "'sizes' must be"),
    "sizes-float": (setter("architecture", "sizes", value=[16.0, 8, 10]), "'sizes' must be"),
    "sizes-bool": (setter("architecture", "sizes", value=[True, 8, 10]), "'sizes' must be"),
    "sizes-not-list": (setter("architecture", "sizes", value="16-8-10"), "'sizes' must be"),
    "sizes-too-many": (setter("architecture", "sizes", value=[4] * 100), "'sizes' must be"),
    "sizes-disagree": (setter("architecture", "sizes", value=[16, 9, 10]), "disagree"),
    "activation-int": (setter("architecture", "activation", value=5), "'activation' is 5"),
    "loss-unknown": (setter("architecture", "loss", value="hinge"), "'loss' is 'hinge'"),
    "dtype-list": (setter("architecture", "dtype", value=["float32"]), "'dtype'"),
    "config-list": (setter("config", value=[1, 2]), "invalid settings"),
    "config-bad-type": (setter("config", "epochs", value="ten"), "invalid settings"),
    "metadata-list": (setter("metadata", value=[["dataset", "mnist"]]), "invalid metadata"),
    "epochs-done-string": (setter("metadata", "epochs_done", value="2"), "'epochs_done'"),
    "epochs-done-negative": (setter("metadata", "epochs_done", value=-1), "'epochs_done'"),
    "history-string": (setter("metadata", "history", value="x"), "'history'"),
    "history-rows": (setter("metadata", "history", value=[1, 2]), "'history'"),
    "rng-state-junk": (setter("metadata", "rng_state", value={"bit_generator": "PCG64", "state": 5}), "'rng_state'"),
    "dataset-int": (setter("metadata", "dataset", value=7), "'dataset'"),
    "class-names-ints": (setter("metadata", "class_names", value=[0, 1]), "'class_names'"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_metadata_is_refused_naming_the_file_before_building(saved, tmp_path, monkeypatch, capsys, case):
    change, needle = BAD[case]
    bad = rewrite(saved, tmp_path / f"{case}.npz", change)

    def no_model(*args, **kwargs):
        raise AssertionError("a model was built before the metadata was checked")

    if case != "sizes-disagree":     # (that one is refused once the arrays are read)
        monkeypatch.setattr(engine.checkpoint.MLP, "from_weights", no_model)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(bad)
    message = str(info.value)
    assert message.startswith(f"{bad}: ") and needle in message, message
    monkeypatch.undo()
    assert main(["eval", str(bad), "--dataset", "mnist-sample"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and str(bad) in err


def test_a_valid_checkpoint_still_loads(saved):
    ckpt = load_checkpoint(saved)
    assert ckpt.model.sizes == (16, 8, 10) and ckpt.metadata["epochs_done"] == 2


def _npy(path: Path) -> None:
    with open(path, "wb") as fh:
        np.save(fh, np.zeros(3))


@pytest.mark.parametrize(("case", "looks"), [
    ("text", "a text file"), ("empty", "an empty file"), ("gzip", "a gzip file"),
    ("npy", "a single NumPy .npy array"), ("pickle", "pickle"), ("device", "not a regular file"),
])
def test_a_file_that_is_not_a_zip_says_so(tmp_path, case, looks):
    path = tmp_path / "m.npz"
    if case == "text":
        path.write_text("hello\n")
    elif case == "empty":
        path.write_bytes(b"")
    elif case == "gzip":
        path.write_bytes(gzip.compress(b"data"))
    elif case == "npy":
        _npy(path)
    elif case == "pickle":
        import pickle

        path.write_bytes(pickle.dumps(copy.copy({"a": 1})))
    else:
        path = Path("/dev/zero")
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert message.startswith(f"{path}: not a termnist checkpoint: not an .npz archive") and looks in message
    assert "allow_pickle" not in message


def test_optimizer_state_that_does_not_fit_is_refused_naming_the_file(tmp_path):
    model = MLP(sizes=(16, 8, 10), rng=np.random.default_rng(0))
    config = TrainConfig(hidden=(8,), optimizer="momentum")
    state = {"step": np.array(3), "velocity/dense0.W": np.zeros((16, 8), np.float32),
             "velocity/dense0.b": np.zeros(8, np.float32), "velocity/dense1.W": np.zeros((8, 10), np.float32),
             "velocity/dense1.b": np.zeros(10, np.float32)}
    good = save_checkpoint(tmp_path / "good.npz", Checkpoint(model, config, {}, state))
    assert load_checkpoint(good).optimizer_state is not None
    bad = save_checkpoint(tmp_path / "bad.npz",
                          Checkpoint(model, config, {}, {**state, "velocity/dense0.W": np.zeros(3)}))
    with pytest.raises(CheckpointError, match=rf"^{bad}: optimizer_state: .*velocity/dense0.W"):
        load_checkpoint(bad)
