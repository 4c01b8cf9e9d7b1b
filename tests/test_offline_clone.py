"""A fresh clone, offline: no ../shared, no $TERMNIST_DATA, an empty cache, no network.
`termnist train --epochs 1` must train on the bundled sample, say so, and exit 0."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _clone(dest: Path) -> Path:
    """The packages as a clone has them (source and bundled data), somewhere with no ../shared."""
    for package in ("engine", "tui"):
        shutil.copytree(REPO / package, dest / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dest


def test_train_on_a_fresh_offline_clone_uses_the_bundled_sample(tmp_path):
    clone = _clone(tmp_path / "clone" / "termnist")
    assert not (clone.parent / "shared").exists()
    home, cache, cwd = tmp_path / "home", tmp_path / "cache", tmp_path / "work"
    for d in (home, cache, cwd):
        d.mkdir()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("TERMNIST_") and k not in ("XDG_DATA_HOME", "XDG_CONFIG_HOME")}
    env.update(HOME=str(home), XDG_CACHE_HOME=str(cache), PYTHONPATH=str(clone),
               # no network: any attempt would go to a closed local port
               http_proxy="http://127.0.0.1:9", https_proxy="http://127.0.0.1:9",
               HTTP_PROXY="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9", no_proxy="")

    where = subprocess.run([sys.executable, "-c", "import engine, tui; print(engine.__file__)"],
                           cwd=cwd, env=env, capture_output=True, text=True, check=True).stdout
    assert where.strip() == str(clone / "engine" / "__init__.py")      # the clone, not the repo

    proc = subprocess.run([sys.executable, "-m", "tui.cli", "train", "--epochs", "1", "--layers", "32"],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False)
    out, err = proc.stdout, proc.stderr
    assert proc.returncode == 0, (out, err)
    assert "Traceback" not in err
    assert "using the bundled MNIST sample (10,000 train / 2,000 test images)" in err
    assert "termnist download" in err                                   # how to get the full set
    # the preset's 10,000 validation images would leave none: capped at 1/5, and said so
    assert "using 2,000 (1/5 of it) instead" in err
    assert "training on MNIST bundled sample" in out and "8,000 train, 2,000 validation" in out
    assert re.search(r"^epoch +1/1 .*train loss", out, re.M)
    acc = float(re.search(r"^test accuracy ([\d.]+)%", out, re.M).group(1))
    assert acc > 80.0, out
    assert not any(cache.iterdir())                                     # nothing downloaded


def test_an_explicit_val_size_that_does_not_fit_is_refused(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TERMNIST_")}
    env.update(HOME=str(tmp_path), XDG_CACHE_HOME=str(tmp_path / "cache"))
    proc = subprocess.run([sys.executable, "-m", "tui.cli", "train", "--epochs", "1", "--layers", "8",
                           "--val-size", "10000"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "--val-size" in proc.stderr and "leaves no training data" in proc.stderr
