"""engine.datasets: search order, loaders (IDX dirs, Keras .npz, sample, digits), validation,
splitting, scaling and verification."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import importlib.util
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from engine import datasets as ds
from engine.datasets import (
    IDX_FILES, SAMPLE_DIR, Dataset, FileCheck, available_datasets, load_dataset,
    locate_dataset, split_train_val, to_features, verify_dir,
)
from engine.errors import DatasetError, DatasetNotFoundError, IDXFormatError
from engine.idx import write_idx

REPO = Path(__file__).resolve().parents[2]


def make_idx_dir(d: Path, n_train: int = 30, n_test: int = 10, shape=(28, 28), gz: bool = True,
                 n_classes: int = 10, seed: int = 0) -> Path:
    """Write a small, valid, synthetic IDX set into ``d``; n_train tags which one it is."""
    rng = np.random.default_rng(seed)
    d.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    for (fx, fy), n in ((IDX_FILES[:2], n_train), (IDX_FILES[2:], n_test)):
        write_idx(d / f"{fx}{suffix}", rng.integers(0, 256, (n, *shape), dtype=np.uint8))
        write_idx(d / f"{fy}{suffix}", (np.arange(n) % n_classes).astype(np.uint8))
    return d


@pytest.fixture
def places(tmp_path, monkeypatch):
    """Isolate every search place: no $TERMNIST_DATA, a tmp cache root and system root."""
    monkeypatch.delenv("TERMNIST_DATA", raising=False)
    monkeypatch.setattr(ds, "cache_root", lambda: tmp_path / "cache")
    monkeypatch.setattr(ds, "SYSTEM_ROOT", tmp_path / "system")
    return tmp_path


# --- search order ---------------------------------------------------------------------------

def test_search_order_env_then_cache_then_system_then_sample(places, monkeypatch):
    make_idx_dir(places / "env" / "mnist", n_train=31)
    make_idx_dir(places / "cache" / "mnist", n_train=32)
    make_idx_dir(places / "system" / "mnist", n_train=33)
    monkeypatch.setenv("TERMNIST_DATA", str(places / "env"))
    d = load_dataset("mnist")
    assert len(d.x_train) == 31 and d.source == str(places / "env" / "mnist")
    assert not d.is_sample
    monkeypatch.delenv("TERMNIST_DATA")
    assert len(load_dataset("mnist").x_train) == 32
    shutil.rmtree(places / "cache")
    assert len(load_dataset("mnist").x_train) == 33
    shutil.rmtree(places / "system")
    d = load_dataset("mnist")
    assert d.is_sample and d.source == "bundled sample" and len(d.x_train) == 10_000
    results = locate_dataset("mnist")
    assert [r.found for r in results] == [False, False, False, True]
    assert results[0].place == "$TERMNIST_DATA" and results[0].detail == "not set"
    assert results[1].detail == "no such directory"


def test_explicit_data_dir_is_the_only_place_searched(places):
    make_idx_dir(places / "cache" / "mnist")
    empty = places / "empty"
    empty.mkdir()
    with pytest.raises(DatasetNotFoundError) as ei:
        load_dataset("mnist", data_dir=empty)
    assert ei.value.searched == (f"{empty} (no IDX files or .npz here)",
                                 f"{empty / 'mnist'} (no such directory)")
    assert str(empty) in str(ei.value) and "\n" not in str(ei.value)


def test_data_dir_may_hold_a_subdirectory_named_after_the_dataset(places):
    make_idx_dir(places / "root" / "kmnist", n_train=12)
    d = load_dataset("kmnist", data_dir=places / "root")
    assert len(d.x_train) == 12 and d.class_names[:3] == ("o", "ki", "su")
    assert d.title == "Kuzushiji-MNIST"


def test_env_dir_named_after_the_dataset_is_used_only_for_that_dataset(places, monkeypatch):
    make_idx_dir(places / "data" / "mnist", n_train=14)
    monkeypatch.setenv("TERMNIST_DATA", str(places / "data" / "mnist"))
    assert len(load_dataset("mnist").x_train) == 14
    with pytest.raises(DatasetNotFoundError) as ei:  # MNIST files must not pass as Fashion-MNIST
        load_dataset("fashion-mnist")
    assert "termnist download fashion-mnist" in str(ei.value)
    assert any("fashion-mnist" in s for s in ei.value.searched)


def test_not_found_lists_every_place(places):
    with pytest.raises(DatasetNotFoundError) as ei:
        load_dataset("fashion-mnist")
    s = ei.value.searched
    assert s[0] == "$TERMNIST_DATA (not set)"
    assert s[1] == f"{places / 'cache' / 'fashion-mnist'} (no such directory)"
    assert s[2] == f"{places / 'system' / 'fashion-mnist'} (no such directory)"
    assert len(s) == 3  # no sample for Fashion-MNIST


def test_incomplete_directory_is_reported_and_skipped(places):
    d = make_idx_dir(places / "cache" / "mnist")
    (d / "t10k-labels-idx1-ubyte.gz").unlink()
    results = locate_dataset("mnist")
    assert results[1].detail == "incomplete: missing t10k-labels-idx1-ubyte[.gz]"
    assert load_dataset("mnist").is_sample


def test_raw_files_are_found_and_preferred_over_gz(places):
    d = make_idx_dir(places / "x", n_train=20, gz=False)
    make_idx_dir(d, n_train=21, gz=True)
    assert ds.find_idx_files(d)["train-images-idx3-ubyte"].name == "train-images-idx3-ubyte"
    assert len(load_dataset("mnist", data_dir=d).x_train) == 20


def test_unknown_dataset_name():
    with pytest.raises(DatasetError, match=r"unknown dataset 'cifar' \(known: mnist, "):
        load_dataset("cifar")


def test_available_datasets():
    names = available_datasets()
    assert names[:4] == ("mnist", "mnist-sample", "fashion-mnist", "kmnist")
    assert "digits" in names and "idx" not in names
    assert ds.DATASETS["fashion-mnist"].class_names == (
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
        "Bag", "Ankle boot")


# --- validation of what is found ------------------------------------------------------------

def test_count_mismatch_names_both_files(places):
    d = make_idx_dir(places / "x")
    write_idx(d / "train-labels-idx1-ubyte.gz", np.zeros(29, np.uint8))
    with pytest.raises(DatasetError, match=r"train split disagrees: train-images-idx3-ubyte.gz "
                       r"has 30 images but train-labels-idx1-ubyte.gz has 29 labels"):
        load_dataset("mnist", data_dir=d)


def test_label_out_of_range(places):
    d = make_idx_dir(places / "x")
    labels = np.zeros(10, np.uint8)
    labels[7] = 10
    write_idx(d / "t10k-labels-idx1-ubyte.gz", labels)
    with pytest.raises(DatasetError, match=r"MNIST: test label 10 at index 7 is outside 0..9"):
        load_dataset("mnist", data_dir=d)


def test_wrong_image_size_for_a_named_dataset(places):
    d = make_idx_dir(places / "x", shape=(8, 8))
    with pytest.raises(DatasetError, match=r"MNIST images are 28x28, but the train images here "
                       r"are 8x8: to train on IDX files of any image size, use --dataset idx$"):
        load_dataset("mnist", data_dir=d)
    assert load_dataset("idx", data_dir=d).image_shape == (8, 8)


def test_images_must_be_uint8_and_three_dimensional(places):
    d = make_idx_dir(places / "x")
    write_idx(d / "train-images-idx3-ubyte.gz", np.zeros((30, 28, 28), ">i2"))
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte.gz: expected uint8 images "
                       r"\(N, H, W\), got int16"):
        load_dataset("mnist", data_dir=d)
    write_idx(d / "train-images-idx3-ubyte.gz", np.zeros((30, 784), np.uint8))
    with pytest.raises(DatasetError, match=r"expected images \(N, H, W\), got shape 30x784"):
        load_dataset("mnist", data_dir=d)


def test_integer_labels_of_other_types_are_accepted_when_in_range(places):
    d = make_idx_dir(places / "x")
    write_idx(d / "train-labels-idx1-ubyte.gz", (np.arange(30) % 10).astype(">i4"))
    y = load_dataset("mnist", data_dir=d).y_train
    assert y.dtype == np.uint8 and y.tolist() == [i % 10 for i in range(30)]


def test_corrupt_file_is_an_error_not_a_fallback(places):
    d = make_idx_dir(places / "cache" / "mnist")
    raw = (d / "t10k-images-idx3-ubyte.gz").read_bytes()
    (d / "t10k-images-idx3-ubyte.gz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(IDXFormatError, match=r"t10k-images-idx3-ubyte.gz: truncated gzip"):
        load_dataset("mnist")


def test_generic_idx_directory(places):
    d = make_idx_dir(places / "any", shape=(5, 7), n_classes=3)
    data = load_dataset("idx", data_dir=d)
    assert data.name == "idx" and data.image_shape == (5, 7) and data.n_features == 35
    assert data.class_names == ("0", "1", "2") and data.max_value == 255
    with pytest.raises(DatasetNotFoundError, match="needs a directory"):
        load_dataset("idx")


def test_dataset_constructor_validates_and_stores_read_only_views():
    x = np.zeros((4, 3, 3), np.uint8)
    y = np.array([0, 1, 2, 1], np.uint8)
    d = Dataset("t", "T", x, y, x[:2], y[:2], ("a", "b", "c"), "here")
    assert not d.x_train.flags.writeable and x.flags.writeable  # caller's array untouched
    assert np.shares_memory(d.x_train, x)
    with pytest.raises(ValueError):
        d.x_train[0, 0, 0] = 1
    assert (d.image_shape, d.n_features, d.n_classes) == ((3, 3), 9, 3)
    with pytest.raises(DatasetError, match="train has 4 images but 3 labels"):
        Dataset("t", "T", x, y[:3], x, y, ("a", "b", "c"), "here")
    with pytest.raises(DatasetError, match=r"train images are 3x3 but test images are 2x2"):
        Dataset("t", "T", x, y, np.zeros((1, 2, 2), np.uint8), y[:1], ("a", "b", "c"), "here")
    with pytest.raises(DatasetError, match="test images must be a uint8 array"):
        Dataset("t", "T", x, y, x.astype(np.float32), y, ("a", "b", "c"), "here")


# --- Keras .npz -----------------------------------------------------------------------------

def _npz_arrays(n=20):
    rng = np.random.default_rng(5)
    return dict(x_train=rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
                y_train=(np.arange(n) % 10).astype(np.uint8),
                x_test=rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
                y_test=np.arange(5, dtype=np.uint8))


def test_keras_npz_in_a_directory_and_as_a_file(places):
    arrays = _npz_arrays()
    (places / "cache" / "mnist").mkdir(parents=True)
    np.savez_compressed(places / "cache" / "mnist" / "mnist.npz", **arrays)
    d = load_dataset("mnist")
    assert d.source.endswith("mnist.npz")
    np.testing.assert_array_equal(d.x_train, arrays["x_train"])
    np.testing.assert_array_equal(d.y_test, arrays["y_test"])
    d2 = load_dataset("mnist", data_dir=places / "cache" / "mnist" / "mnist.npz")
    np.testing.assert_array_equal(d2.x_test, arrays["x_test"])


def test_keras_npz_refuses_object_arrays(tmp_path):
    arrays = _npz_arrays()
    arrays["y_train"] = np.array([object()] * 20, dtype=object)
    np.savez(tmp_path / "evil.npz", **arrays)  # object arrays are pickled on save
    with pytest.raises(DatasetError, match=r"evil.npz: holds object \(pickled\) arrays; refusing"):
        load_dataset("mnist", data_dir=tmp_path / "evil.npz")


def test_keras_npz_missing_keys_and_garbage(tmp_path):
    np.savez(tmp_path / "part.npz", x_train=np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(DatasetError, match=r"part.npz: missing arrays y_train, x_test, y_test"):
        load_dataset("mnist", data_dir=tmp_path / "part.npz")
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(DatasetError, match=r"junk.npz: not a readable .npz file"):
        load_dataset("mnist", data_dir=tmp_path / "junk.npz")


# --- the bundled sample ---------------------------------------------------------------------

def test_sample_loads_balanced_and_read_only(places):
    d = load_dataset("mnist-sample")
    assert (d.name, d.title, d.is_sample, d.source) == ("mnist", "MNIST", True, "bundled sample")
    assert d.x_train.shape == (10_000, 28, 28) and d.x_test.shape == (2_000, 28, 28)
    assert d.x_train.dtype == np.uint8 and d.y_train.dtype == np.uint8
    assert np.bincount(d.y_train).tolist() == [1000] * 10
    assert np.bincount(d.y_test).tolist() == [200] * 10
    assert not d.x_train.flags.writeable
    assert d.x_train.max() == 255 and 0.09 < d.x_train.mean() / 255 < 0.16  # real digits
    via_dir = load_dataset("mnist", data_dir=SAMPLE_DIR)  # still flagged as the sample
    assert via_dir.is_sample and via_dir.source == "bundled sample"


def test_sample_index_file_matches_the_files():
    meta = json.loads((SAMPLE_DIR / "indices.json").read_text())
    assert meta["seed"] == 20261130
    tr, te = meta["train_indices"], meta["test_indices"]
    assert len(tr) == len(set(tr)) == 10_000 and tr == sorted(tr) and max(tr) < 60_000
    assert len(te) == len(set(te)) == 2_000 and te == sorted(te) and max(te) < 10_000
    for name in IDX_FILES:
        content = gzip.decompress((SAMPLE_DIR / f"{name}.gz").read_bytes())
        assert hashlib.sha256(content).hexdigest() == meta["sha256"][name]
    assert all(r.ok for r in verify_dir("mnist-sample", SAMPLE_DIR))
    assert "CC BY-SA 3.0" in (SAMPLE_DIR / "README.md").read_text()


def _make_sample_module():
    spec = importlib.util.spec_from_file_location("make_sample", REPO / "scripts" / "make_sample.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.full_mnist
def test_make_sample_verify_passes_and_detects_a_change(full_mnist_dir, tmp_path, capsys):
    mod = _make_sample_module()
    assert mod.main(["--verify", "--source", str(full_mnist_dir)]) == 0
    # negative control: one changed pixel in a copy must be caught
    copy = tmp_path / "sample"
    shutil.copytree(SAMPLE_DIR, copy)
    x = ds.read_idx(copy / "t10k-images-idx3-ubyte.gz")
    x[0, 14, 14] ^= 1
    write_idx(copy / "t10k-images-idx3-ubyte.gz", x)
    assert mod.main(["--verify", "--source", str(full_mnist_dir), "--out", str(copy)]) == 1
    assert "t10k-images-idx3-ubyte.gz: content differs" in capsys.readouterr().err


@pytest.mark.full_mnist
def test_full_mnist_loads_and_verifies(full_mnist_dir):
    d = load_dataset("mnist", data_dir=full_mnist_dir)
    assert d.x_train.shape == (60_000, 28, 28) and d.y_test.shape == (10_000,)
    assert not d.is_sample and d.x_train.dtype == np.uint8
    assert [r.status for r in verify_dir("mnist", full_mnist_dir)] == ["ok"] * 4


# --- digits (optional scikit-learn) ---------------------------------------------------------

def test_digits_without_scikit_learn(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)  # makes both find_spec and import fail
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(DatasetNotFoundError) as ei:
        load_dataset("digits")
    assert str(ei.value) == "scikit-learn is not installed: pip install 'termnist[digits]'"


def test_digits_with_scikit_learn():
    pytest.importorskip("sklearn", reason="scikit-learn not installed (optional extra 'digits')")
    d = load_dataset("digits")
    assert d.x_train.shape == (1438, 8, 8) and d.x_test.shape == (359, 8, 8)
    assert d.max_value == 16 and d.x_train.dtype == np.uint8 and int(d.x_train.max()) == 16
    assert d.n_features == 64 and d.n_classes == 10
    again = load_dataset("digits")  # deterministic split
    np.testing.assert_array_equal(d.y_test, again.y_test)
    f = to_features(d.x_test, d.max_value)
    assert f.max() == 1.0 and f.min() == 0.0


# --- split and features ---------------------------------------------------------------------

def test_split_train_val_views_last_rows():
    x = np.arange(10 * 4, dtype=np.uint8).reshape(10, 2, 2)
    y = np.arange(10, dtype=np.uint8)
    xt, yt, xv, yv = split_train_val(x, y, 3)
    assert yt.tolist() == list(range(7)) and yv.tolist() == [7, 8, 9]
    assert all(np.shares_memory(a, b) for a, b in ((xt, x), (xv, x), (yt, y), (yv, y)))
    xt, yt, xv, yv = split_train_val(x, y, 0)
    assert len(xt) == 10 and xv.shape == (0, 2, 2) and yv.shape == (0,)


@pytest.mark.parametrize("bad", [10, 11, -1, 2.5, True])
def test_split_train_val_rejects(bad):
    x, y = np.zeros((10, 2, 2), np.uint8), np.zeros(10, np.uint8)
    with pytest.raises(DatasetError):
        split_train_val(x, y, bad)


def test_to_features_scales_and_writes_into_out():
    x = np.array([[[0, 255], [51, 102]], [[255, 255], [0, 1]]], np.uint8)
    f = to_features(x, 255)
    assert f.shape == (2, 4) and f.dtype == np.float32
    np.testing.assert_array_equal(f, (x.reshape(2, 4) / np.float32(255)))
    assert f[0, 1] == 1.0 and f[0, 0] == 0.0
    out = np.full((2, 4), -1.0)
    res = to_features(x, 255, out=out)
    assert res is out and out.dtype == np.float64
    np.testing.assert_allclose(out, x.reshape(2, 4) / 255.0, rtol=0, atol=0)
    assert to_features(x, 255, dtype=np.float64).dtype == np.float64
    np.testing.assert_array_equal(to_features(np.array([[[16, 8]]], np.uint8), 16), [[1.0, 0.5]])
    with pytest.raises(ValueError, match="out must be a float array of shape"):
        to_features(x, 255, out=np.zeros((2, 5), np.float32))
    with pytest.raises(ValueError, match="float dtype"):
        to_features(x, 255, dtype=np.int32)


# --- verification ---------------------------------------------------------------------------

def test_verify_dir_reports_ok_mismatch_missing_and_unverified(places, monkeypatch):
    d = make_idx_dir(places / "v")
    content = {n: gzip.decompress((d / f"{n}.gz").read_bytes()) for n in IDX_FILES}
    checks = (
        FileCheck(IDX_FILES[0], sha256=hashlib.sha256(content[IDX_FILES[0]]).hexdigest()),
        FileCheck(IDX_FILES[1], sha256="0" * 64),
        FileCheck(IDX_FILES[2], md5_gz=hashlib.md5((d / f"{IDX_FILES[2]}.gz").read_bytes())
                  .hexdigest()),
        FileCheck(IDX_FILES[3], md5_gz="0" * 32),
    )
    spec = dataclasses.replace(ds.DATASETS["fashion-mnist"], files=checks)
    monkeypatch.setitem(ds.DATASETS, "fashion-mnist", spec)
    got = verify_dir("fashion-mnist", d)
    assert [r.status for r in got] == ["ok", "mismatch", "ok", "mismatch"]
    assert got[0].detail == "SHA-256 of the content matches"
    assert got[2].detail == "MD5 of the .gz matches the published one"
    # a raw copy can only be checked by content, never by a .gz MD5
    raw = places / "raw"
    raw.mkdir()
    for n in IDX_FILES[:3]:
        (raw / n).write_bytes(content[n])
    got = verify_dir("fashion-mnist", raw)
    assert [r.status for r in got] == ["ok", "mismatch", "unverified", "missing"]
