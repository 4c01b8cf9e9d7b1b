"""`termnist eval MODEL.npz --confusion FILE.csv|.json`: the matrix written atomically, the
same numbers as the eval report; a bad suffix or directory is one line, exit 1, no file."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from engine.checkpoint import save_checkpoint
from engine.datasets import SAMPLE_DIR
from engine.metrics import confusion_matrix
from engine.training import TrainConfig, TrainingSession, predict_images
from tests.test_cli_insight import sample, termnist  # noqa: F401 - the fixture is used by name


@pytest.fixture(scope="module")
def model(sample, tmp_path_factory):  # noqa: F811
    s = TrainingSession(TrainConfig(hidden=(16,), epochs=1, val_size=0, lr=0.05), sample)
    for _ in s.run():
        pass
    ckpt = s.checkpoint()
    path = tmp_path_factory.mktemp("model") / "m.npz"
    save_checkpoint(path, ckpt)
    probs = predict_images(ckpt.model, sample.x_test, sample.max_value, ckpt.model.dtype)
    return path, confusion_matrix(sample.y_test, probs.argmax(1), 10)


def test_confusion_csv_and_json(model, tmp_path):
    path, cm = model
    r = termnist("eval", str(path), "--data", str(SAMPLE_DIR), "--confusion", str(tmp_path / "cm.csv"))
    assert r.returncode == 0, r.stderr
    assert "test accuracy" in r.stdout and "confusion matrix written to" in r.stderr
    with open(tmp_path / "cm.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["true\\pred", *[str(i) for i in range(10)], "total", "accuracy"]
    assert [[int(v) for v in row[1:11]] for row in rows[1:]] == cm.tolist()
    assert [float(row[12]) for row in rows[1:]] == pytest.approx((np.diag(cm) / cm.sum(1)).tolist(), abs=1e-6)

    r = termnist("eval", str(path), "--data", str(SAMPLE_DIR), "--json", "--confusion", str(tmp_path / "cm.json"))
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)                     # stdout stays one JSON object
    obj = json.loads((tmp_path / "cm.json").read_text())
    assert obj["counts"] == cm.tolist() == report["confusion_matrix"]
    assert obj["class_names"] == [str(i) for i in range(10)] and obj["total"] == int(cm.sum())


@pytest.mark.parametrize("name", ["cm.txt", "missing-dir/cm.csv"])
def test_bad_confusion_path_is_one_line(model, tmp_path, name):
    path, _ = model
    r = termnist("eval", str(path), "--data", str(SAMPLE_DIR), "--confusion", str(tmp_path / name))
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("termnist: ") and "Traceback" not in r.stderr
    assert not list(tmp_path.rglob("*.csv")) and not list(tmp_path.rglob("*.tmp"))
