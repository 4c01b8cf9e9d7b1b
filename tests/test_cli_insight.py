"""`termnist eval --mistakes N` and `termnist predict FILE...` end to end (subprocesses), on a
model trained here on the bundled MNIST sample."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.checkpoint import Checkpoint, save_checkpoint
from engine.datasets import SAMPLE_DIR, load_dataset
from engine.insight.drawing import preprocess_drawing
from engine.mlp import MLP
from engine.training import TrainConfig, TrainingSession
from tui.ascii_art import render_image

REPO = Path(__file__).resolve().parents[1]
HAS_PIL = importlib.util.find_spec("PIL") is not None


def termnist(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tui.cli", *args], capture_output=True, text=True, cwd=REPO,
                          stdin=subprocess.DEVNULL, timeout=timeout, check=False,
                          env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})


@pytest.fixture(scope="module")
def sample():
    return load_dataset("mnist", data_dir=SAMPLE_DIR)


@pytest.fixture(scope="module")
def model_path(sample, tmp_path_factory):
    s = TrainingSession(TrainConfig(hidden=(64,), epochs=2, val_size=0, lr=0.05), sample)
    for _ in s.run():
        pass
    path = tmp_path_factory.mktemp("model") / "m.npz"
    save_checkpoint(path, s.checkpoint())
    return path


def test_eval_mistakes_prints_ascii_art_and_top3(model_path):
    r = termnist("eval", str(model_path), "--data", str(SAMPLE_DIR), "--mistakes", "3")
    assert r.returncode == 0, r.stderr
    assert "test accuracy" in r.stdout and "confusion matrix" in r.stdout      # the usual report first
    assert "3 worst mistake(s)" in r.stdout
    heads = [ln for ln in r.stdout.splitlines() if ln.startswith("#")]
    assert len(heads) == 3 and all("predicted" in h for h in heads)
    assert r.stdout.count("top 3:") == 3
    plain = termnist("eval", str(model_path), "--data", str(SAMPLE_DIR))
    assert plain.returncode == 0 and "worst mistake" not in plain.stdout


def test_eval_mistakes_json(model_path, sample):
    r = termnist("eval", str(model_path), "--data", str(SAMPLE_DIR), "--mistakes", "5", "--json")
    assert r.returncode == 0, r.stderr
    obj = json.loads(r.stdout)
    assert obj["event"] == "eval" and "confusion_matrix" in obj
    ms = obj["mistakes"]
    assert len(ms) == 5
    confs = [m["confidence"] for m in ms]
    assert confs == sorted(confs, reverse=True)
    for m in ms:
        assert m["true"] == int(sample.y_test[m["index"]]) and m["pred"] != m["true"]
        assert len(m["probs"]) == 10 and sum(m["probs"]) == pytest.approx(1.0, abs=1e-4)
        assert m["pred"] == int(np.argmax(m["probs"])) and m["top3"][0][0] == m["pred"]


def test_eval_negative_mistakes_is_a_usage_error(model_path):
    r = termnist("eval", str(model_path), "--data", str(SAMPLE_DIR), "--mistakes", "-1")
    assert r.returncode == 2 and "--mistakes" in r.stderr


@pytest.fixture(scope="module")
def image_files(sample, tmp_path_factory):
    d = tmp_path_factory.mktemp("images")
    files = {}
    # paper-like binary PGM: dark ink on white, twice the size, off-centre on a 60x80 canvas
    big = np.full((80, 60), 255, np.uint8)
    big[5:61, 2:58] = 255 - np.kron(sample.x_test[0], np.ones((2, 2), np.uint8))
    files["p5"] = d / "d0.pgm"
    files["p5"].write_bytes(b"P5\n# drawn by hand\n60 80\n255\n" + big.tobytes())
    files["p2"] = d / "d1.pgm"
    files["p2"].write_text("P2\n28 28\n255\n" + "\n".join(" ".join(map(str, row)) for row in sample.x_test[1]))
    files["ascii"] = d / "d2.txt"
    files["ascii"].write_text("\n".join(render_image(sample.x_test[2], 255, "ascii", 14, 7, margin=2)) + "\n")
    files["blocks"] = d / "d3.txt"
    files["blocks"].write_text("\n".join(render_image(sample.x_test[3], 255, "blocks", 20, 10, margin=2)) + "\n")
    return files


def test_predict_reads_pgm_and_ascii_art_like_a_drawing(model_path, image_files, sample):
    from engine.checkpoint import load_checkpoint
    from engine.insight.imagefile import read_image_file

    model = load_checkpoint(model_path).model
    r = termnist("predict", str(model_path), *(str(p) for p in image_files.values()), "--json")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(ln) for ln in r.stdout.splitlines()]
    assert [row["file"] for row in rows] == [str(p) for p in image_files.values()]
    for row, path in zip(rows, image_files.values()):
        image = preprocess_drawing(read_image_file(path), max_value=1.0)
        expect = model.predict_proba(image.reshape(1, -1).astype(np.float32))[0]
        assert row["pred"] == int(np.argmax(expect)) and row["label"] == str(row["pred"])
        np.testing.assert_allclose(row["probs"], expect, rtol=1e-4, atol=1e-6)
        assert len(row["top3"]) == 3
    # the PGMs hold test images 0 and 1 (a 4 and a 9): preprocessed as MNIST was, they read right
    assert [rows[0]["pred"], rows[1]["pred"]] == [int(sample.y_test[0]), int(sample.y_test[1])]
    human = termnist("predict", str(model_path), str(image_files["p5"]))
    assert human.returncode == 0 and human.stdout.startswith(f"{image_files['p5']}: 4 (")
    assert len(human.stdout.splitlines()) == 1 and "top 3:" in human.stdout


def test_predict_blank_ascii_art_says_draw_a_digit(model_path, tmp_path):
    blank = tmp_path / "blank.txt"
    blank.write_text("   \n\n")
    r = termnist("predict", str(model_path), str(blank))
    assert r.returncode == 0 and r.stdout.strip() == f"{blank}: no ink: draw a digit"


def test_unreadable_files_give_one_line_each_and_exit_1(model_path, image_files, tmp_path):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(bytes(range(256)))
    bad_pgm = tmp_path / "bad.pgm"
    bad_pgm.write_bytes(b"P5\n28 28\n255\n" + bytes(10))
    missing = tmp_path / "missing.pgm"
    r = termnist("predict", str(model_path), str(junk), str(image_files["p2"]), str(bad_pgm), str(missing))
    assert r.returncode == 1
    errors = r.stderr.strip().splitlines()
    assert len(errors) == 3 and "Traceback" not in r.stderr
    for line, path in zip(errors, (junk, bad_pgm, missing)):
        assert str(path) in line and "cannot read" in line
    assert r.stdout.startswith(str(image_files["p2"]))      # the readable file is still classified


@pytest.mark.skipif(HAS_PIL, reason="Pillow is installed: PNG files are read")
def test_png_without_pillow_says_how_to_get_it(model_path, tmp_path):
    png = tmp_path / "x.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(32))
    r = termnist("predict", str(model_path), str(png))
    assert r.returncode == 1 and str(png) in r.stderr and "termnist[image]" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.skipif(not HAS_PIL, reason="Pillow (the 'image' extra) is not installed")
def test_png_with_pillow(model_path, sample, tmp_path):
    from PIL import Image

    png = tmp_path / "d0.png"
    Image.fromarray(255 - sample.x_test[0]).resize((56, 56)).save(png)        # dark ink on white
    rgba = np.zeros((84, 84, 4), np.uint8)                                    # a canvas app's export:
    rgba[..., 3] = np.kron(sample.x_test[1], np.ones((3, 3), np.uint8))       # black ink, transparent
    transparent = tmp_path / "d1.png"
    Image.fromarray(rgba, "RGBA").save(transparent)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(32))
    r = termnist("predict", str(model_path), str(png), str(transparent), str(broken), "--json")
    assert r.returncode == 1 and str(broken) in r.stderr and len(r.stderr.strip().splitlines()) == 1
    rows = [json.loads(ln) for ln in r.stdout.splitlines()]
    assert [rows[0]["pred"], rows[1]["pred"]] == [int(sample.y_test[0]), int(sample.y_test[1])]
    assert rows[2]["file"] == str(broken) and "error" in rows[2]


def test_a_model_for_8x8_digits_says_why_it_cannot_take_a_drawing(tmp_path, image_files):
    model = MLP((64, 16, 10), activation="sigmoid", loss="mse")
    path = tmp_path / "digits.npz"
    save_checkpoint(path, Checkpoint(model, TrainConfig(dataset="digits", hidden=(16,), activation="sigmoid",
                                                        loss="mse"), {"dataset": "digits"}))
    r = termnist("predict", str(path), str(image_files["p2"]))
    assert r.returncode == 1 and r.stdout == ""
    assert "64 inputs (8x8 images)" in r.stderr and "28x28" in r.stderr and len(r.stderr.splitlines()) == 1


def test_help_lists_the_commands_without_importing_numpy():
    r = subprocess.run([sys.executable, "-c", "import sys; from tui.cli import build_parser; build_parser();"
                        "print('numpy' in sys.modules)"], capture_output=True, text=True, cwd=REPO, check=True)
    assert r.stdout.strip() == "False"
    h = termnist("--help")
    assert "predict" in h.stdout and "--mistakes" in h.stdout


def test_a_20x20_idx_set_eval_mistakes_works_and_predict_says_why_not(tmp_path, image_files):
    from engine.idx import write_idx
    from tests.factories import make_dataset

    ds = make_dataset(n_train=400, n_test=100, side=20, noise=120)
    for name, arr in (("train-images-idx3-ubyte", ds.x_train), ("train-labels-idx1-ubyte", ds.y_train),
                      ("t10k-images-idx3-ubyte", ds.x_test), ("t10k-labels-idx1-ubyte", ds.y_test)):
        write_idx(tmp_path / f"{name}.gz", arr)
    model = tmp_path / "m20.npz"
    r = termnist("train", "--dataset", "idx", "--data", str(tmp_path), "--layers", "16", "--epochs", "1",
                 "--val-size", "0", "--lr", "0.01", "--save", str(model))
    assert r.returncode == 0, r.stderr
    r = termnist("eval", str(model), "--data", str(tmp_path), "--mistakes", "2", "--json")
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)["mistakes"]) == 2
    r = termnist("eval", str(model), "--data", str(tmp_path), "--mistakes", "1")
    assert r.returncode == 0 and r.stdout.count("top 3:") == 1
    r = termnist("predict", str(model), str(image_files["p2"]))
    assert r.returncode == 1 and "400 inputs (20x20 images)" in r.stderr
