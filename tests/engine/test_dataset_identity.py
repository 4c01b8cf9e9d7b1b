"""Checksums verify the decompressed content (any gzip wrapper), and tell which known set a
directory holds: MNIST is never "found" as Fashion-MNIST.

The data are generated; their digests are registered for the test in place of the real ones.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
from pathlib import Path

import pytest

from engine.datasets import (
    DATASETS,
    IDX_FILES,
    FileCheck,
    identify_dir,
    load_dataset,
    locate_dataset,
    verify_dir,
)
from engine.errors import DatasetNotFoundError
from engine.idx import write_idx
from tests.factories import make_dataset
from tui.cli import main


pytestmark = pytest.mark.usefixtures("isolated_cli")   # tests/conftest.py


def raw_idx(seed: int, tmp: Path) -> dict[str, bytes]:
    """The four IDX files of a generated 28x28 set, uncompressed: {canonical name: bytes}."""
    ds = make_dataset(n_train=120, n_test=40, side=28, seed=seed)
    out = {}
    for name, a in zip(IDX_FILES, (ds.x_train, ds.y_train, ds.x_test, ds.y_test)):
        write_idx(tmp / f"{name}-{seed}", a)
        out[name] = (tmp / f"{name}-{seed}").read_bytes()
    return out


def register(monkeypatch, name: str, raw: dict[str, bytes], published: dict[str, bytes]) -> None:
    """Give dataset ``name`` the digests of ``raw`` (content SHA-256) and ``published`` (.gz MD5)."""
    files = tuple(FileCheck(n, hashlib.sha256(raw[n]).hexdigest(), hashlib.md5(published[n]).hexdigest())
                  for n in IDX_FILES)
    monkeypatch.setitem(DATASETS, name, dataclasses.replace(DATASETS[name], files=files))


def write_dir(d: Path, files: dict[str, bytes]) -> Path:
    d.mkdir(parents=True)
    for n, data in files.items():
        (d / f"{n}.gz").write_bytes(data)
    return d


@pytest.fixture
def fashion(tmp_path, monkeypatch):
    """A generated stand-in for Fashion-MNIST: its raw files, the "published" .gz files, and a
    re-gzipped copy with another header (name, mtime, level), as Debian's package ships it."""
    raw = raw_idx(1, tmp_path)
    published = {n: gzip.compress(b, mtime=0) for n, b in raw.items()}
    register(monkeypatch, "fashion-mnist", raw, published)
    repacked = {}
    for n, b in raw.items():
        buf = io.BytesIO()
        with gzip.GzipFile(filename=n, mode="wb", fileobj=buf,
                           mtime=1_600_000_000, compresslevel=6) as g:
            g.write(b)
        repacked[n] = buf.getvalue()
    assert all(repacked[n] != published[n] for n in raw)
    return raw, published, repacked


def test_the_registry_knows_the_content_digest_of_mnist_and_fashion_mnist():
    for name in ("mnist", "fashion-mnist"):
        assert all(c.sha256 and len(c.sha256) == 64 for c in DATASETS[name].files), name


def test_a_re_gzipped_copy_verifies_by_its_content(fashion, tmp_path, capsys):
    d = write_dir(tmp_path / "debian" / "fashion-mnist", fashion[2])
    results = verify_dir("fashion-mnist", d)
    assert [r.status for r in results] == ["ok"] * 4
    assert all("SHA-256 of the content" in r.detail for r in results)
    assert main(["download", "fashion-mnist", "--verify", str(d)]) == 0
    assert "all 4 files" in capsys.readouterr().out
    assert main(["datasets", "--data", str(d.parent)]) == 0          # as /usr/share/datasets/
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("fashion-mnist"))
    assert row.split()[1] == "found" and row.split()[6] == "yes", row      # (size is "87.0 kB")


def test_the_published_gz_verifies_by_its_md5_and_raw_files_by_content(fashion, tmp_path):
    raw, published, _ = fashion
    assert {r.status for r in verify_dir("fashion-mnist", write_dir(tmp_path / "pub", published))} == {"ok"}
    d = tmp_path / "raw"
    d.mkdir()
    for n, b in raw.items():
        (d / n).write_bytes(b)
    assert {r.status for r in verify_dir("fashion-mnist", d)} == {"ok"}


def test_damaged_content_is_a_mismatch_whatever_the_wrapper(fashion, tmp_path):
    raw, _, _ = fashion
    bad = dict(raw)
    bad["t10k-labels-idx1-ubyte"] = raw["t10k-labels-idx1-ubyte"][:-1] + b"\x09"
    d = write_dir(tmp_path / "bad", {n: gzip.compress(b, mtime=5) for n, b in bad.items()})
    statuses = [r.status for r in verify_dir("fashion-mnist", d)]
    assert statuses == ["ok", "ok", "ok", "mismatch"]


@pytest.fixture
def two_sets(tmp_path, monkeypatch):
    """Generated stand-ins for MNIST and Fashion-MNIST, each registered, each in a directory."""
    dirs = {}
    for seed, name in ((0, "mnist"), (1, "fashion-mnist")):
        raw = raw_idx(seed, tmp_path)
        gz = {n: gzip.compress(b, mtime=0) for n, b in raw.items()}
        register(monkeypatch, name, raw, gz)
        dirs[name] = write_dir(tmp_path / f"{name}-files", gz)
    return dirs


def test_a_directory_is_identified_by_its_label_files(two_sets, tmp_path):
    assert identify_dir(two_sets["mnist"]) == "mnist"
    assert identify_dir(two_sets["fashion-mnist"]) == "fashion-mnist"
    unknown = write_dir(tmp_path / "other", {n: gzip.compress(b) for n, b in raw_idx(7, tmp_path).items()})
    assert identify_dir(unknown) is None
    assert locate_dataset("fashion-mnist", unknown)[-1].found   # unknown content: taken as named


def test_mnist_is_not_found_as_fashion_mnist(two_sets, capsys):
    mnist_dir = two_sets["mnist"]
    first = locate_dataset("fashion-mnist", mnist_dir)[0]
    assert not first.found and first.detail.startswith("holds MNIST, not Fashion-MNIST")
    with pytest.raises(DatasetNotFoundError, match=r"holds MNIST, not Fashion-MNIST.*use --dataset mnist"):
        load_dataset("fashion-mnist", data_dir=mnist_dir)
    assert load_dataset("mnist", data_dir=mnist_dir).n_classes == 10
    assert load_dataset("idx", data_dir=mnist_dir).name == "idx"   # idx reads any set

    code = main(["train", "--dataset", "fashion-mnist", "--data", str(mnist_dir), "--epochs", "1"])
    out, err = capsys.readouterr()
    assert code == 1 and out == "" and "holds MNIST, not Fashion-MNIST" in err

    assert main(["datasets", "--data", str(mnist_dir)]) == 0
    table = capsys.readouterr().out
    rows = {line.split()[0]: line.split()[1] for line in table.splitlines()[1:7] if line.strip()}
    assert rows["mnist"] == "found" and rows["fashion-mnist"] == "missing" and rows["kmnist"] == "missing"


def test_identification_reads_only_the_label_files(two_sets, monkeypatch):
    import engine.datasets as ds

    hashed: list[str] = []
    real = ds.content_sha256

    def spy(path):
        hashed.append(Path(path).name)
        return real(path)

    monkeypatch.setattr(ds, "content_sha256", spy)
    identify_dir(two_sets["fashion-mnist"])
    assert hashed and all("labels" in n for n in hashed)
