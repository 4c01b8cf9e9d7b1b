"""Shared test helpers. Keep this small: fixtures only."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run from a checkout without installing the package
    sys.path.insert(0, str(REPO))

_MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def _has_mnist(d: Path) -> bool:
    return all((d / f).exists() or (d / f"{f}.gz").exists() for f in _MNIST_FILES)


def find_full_mnist() -> Path | None:
    """The full MNIST set: $TERMNIST_DATA (or its mnist/ subdir), else <repo>/../shared/data/mnist."""
    env = os.environ.get("TERMNIST_DATA")
    candidates = [Path(env), Path(env) / "mnist"] if env else []
    candidates.append(REPO.parent / "shared" / "data" / "mnist")
    return next((d for d in candidates if d.is_dir() and _has_mnist(d)), None)


@pytest.fixture(scope="session", autouse=True)
def _isolated_log_dir(tmp_path_factory):
    """The log file (tui.logfile) and the state directory (run history, recovery slot) of
    every termnist started by a test, in-process or as a subprocess, are temporary
    directories, never the user's."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TERMNIST_LOG_DIR", str(tmp_path_factory.mktemp("log")))
        # nor the user's run history or recovery slot (tests that look at them set their own)
        mp.setenv("TERMNIST_STATE_DIR", str(tmp_path_factory.mktemp("state")))
        yield


@pytest.fixture
def isolated_cli(tmp_path, monkeypatch):
    """A command-line test's own settings, state and cache directories, and no $TERMNIST_DATA:
    what it finds is what it made (use with ``pytestmark = pytest.mark.usefixtures(...)``)."""
    monkeypatch.setenv("TERMNIST_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("TERMNIST_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("TERMNIST_DATA", raising=False)


@pytest.fixture(scope="session")
def full_mnist_dir() -> Path:
    """Directory holding the full MNIST set; skips the test when there is none."""
    d = find_full_mnist()
    if d is None:
        pytest.skip("full MNIST not found: set $TERMNIST_DATA or provide ../shared/data/mnist")
    return d
