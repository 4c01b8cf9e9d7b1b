"""The `termnist` command's errors: one line on stderr, the documented exit status, no
traceback -- for bad data paths, an unreadable file, disagreeing files, a network too large
for memory, and `--resume` with nothing to resume.

Most run `tui.cli.main` in-process (fast, and the only way to fake an unreadable file when
the tests run as root); two run the real command for its real exit status.
"""

from __future__ import annotations

import builtins
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.idx import write_idx
from tests.factories import make_dataset
from tui.cli import main

REPO = Path(__file__).resolve().parents[1]
TRAIN = ("train", "--layers", "8", "--epochs", "1", "--val-size", "50")


pytestmark = pytest.mark.usefixtures("isolated_cli")   # tests/conftest.py


def idx_dir(d: Path, n_train_labels: int | None = None) -> Path:
    ds = make_dataset(n_train=300, n_test=60, side=28)
    d.mkdir(parents=True, exist_ok=True)
    write_idx(d / "train-images-idx3-ubyte.gz", ds.x_train)
    write_idx(d / "train-labels-idx1-ubyte.gz", ds.y_train[:n_train_labels])
    write_idx(d / "t10k-images-idx3-ubyte.gz", ds.x_test)
    write_idx(d / "t10k-labels-idx1-ubyte.gz", ds.y_test)
    return d


def deny_reading(monkeypatch, name_prefix: str) -> None:
    """Opening files whose name starts with ``name_prefix`` fails with EACCES, as it would
    for a user without read permission (root reads anything, so chmod cannot show it)."""
    real_open = builtins.open

    def guarded_open(file, *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and Path(file).name.startswith(name_prefix):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded_open)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and lines[0].startswith("termnist: ")
    return lines[0]


def test_a_data_directory_that_does_not_exist(capsys, tmp_path):
    code, _, err = run(capsys, *TRAIN, "--data", str(tmp_path / "nowhere"))
    assert code == 1
    line = one_line(err)
    assert str(tmp_path / "nowhere") in line and "no such directory" in line


def test_a_file_without_read_permission(capsys, tmp_path, monkeypatch):
    d = idx_dir(tmp_path / "idx")
    deny_reading(monkeypatch, "t10k-labels")
    code, _, err = run(capsys, *TRAIN, "--data", str(d))
    assert code == 1
    line = one_line(err)
    assert "t10k-labels-idx1-ubyte.gz" in line and "permission denied" in line


def test_a_model_without_read_permission(capsys, tmp_path, monkeypatch):
    model = tmp_path / "m.npz"
    model.write_bytes(b"whatever")
    deny_reading(monkeypatch, "m.npz")
    code, _, err = run(capsys, "eval", str(model), "--data", str(idx_dir(tmp_path / "idx")))
    assert code == 1
    assert "permission denied" in one_line(err)


def test_image_and_label_counts_that_disagree(tmp_path):
    d = idx_dir(tmp_path / "idx", n_train_labels=299)
    r = subprocess.run([sys.executable, "-m", "tui.cli", *TRAIN, "--data", str(d)], capture_output=True,
                       text=True, cwd=REPO, stdin=subprocess.DEVNULL, timeout=120, check=False)
    assert r.returncode == 1
    line = one_line(r.stderr)
    assert "has 300 images but" in line and "299 labels" in line


def test_a_network_too_large_for_memory_is_refused_before_training(tmp_path):
    d = idx_dir(tmp_path / "idx")
    r = subprocess.run([sys.executable, "-m", "tui.cli", *TRAIN, "--data", str(d), "--layers", "100000,100000"],
                       capture_output=True, text=True, cwd=REPO, stdin=subprocess.DEVNULL, timeout=120, check=False)
    assert r.returncode == 2
    line = one_line(r.stderr)
    assert line.startswith("termnist: error: --layers: this network needs about") and "GiB" in line
    assert r.stdout == ""                       # refused before training: no epoch was printed


def test_resume_with_nothing_to_resume(capsys, tmp_path):
    code, _, err = run(capsys, "--resume")
    assert code == 1
    line = one_line(err)
    assert "nothing to resume" in line and str(tmp_path / "state") in line


def test_resume_with_a_saved_run_but_no_terminal(capsys, tmp_path):
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "interrupted.json").write_text("{}")
    code, _, err = run(capsys, "--resume")
    assert code == 2                            # it gets as far as needing the terminal
    assert "no terminal" in one_line(err)
