"""SIGKILL at any moment of a save leaves the old checkpoint or the new one, never a broken file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from engine.checkpoint import load_checkpoint

REPO = Path(__file__).resolve().parents[2]

WRITER = r"""
import sys, numpy as np
from engine.checkpoint import Checkpoint, save_checkpoint
from engine.mlp import MLP
from engine.training import TrainConfig
path = sys.argv[1]
cfg = TrainConfig(hidden=(256, 128), dataset="mnist")
model = MLP(sizes=(784, 256, 128, 10), rng=np.random.default_rng(0))
w = model.get_weights()
i = 0
print("ready", flush=True)
while True:
    i += 1
    # every saved model is self-consistent: all weights equal to the same value i
    model.set_weights({k: np.full_like(v, float(i)) for k, v in w.items()})
    save_checkpoint(path, Checkpoint(model=model, config=cfg, metadata={"i": i}))
"""


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL (POSIX)")
def test_sigkill_mid_save_never_leaves_a_broken_file(tmp_path):
    path = tmp_path / "model.npz"
    rng = np.random.default_rng(0)
    seen = set()
    kills = 25
    for _ in range(kills):
        p = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], cwd=REPO,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(REPO)})
        assert p.stdout.readline().strip() == "ready", p.stderr.read()
        time.sleep(float(rng.uniform(0.01, 0.4)))
        p.send_signal(signal.SIGKILL)
        p.wait()
        if not path.exists():
            continue  # killed before the first save completed: nothing under the final name
        ck = load_checkpoint(path)  # never raises: old or new, whole
        i = ck.metadata["i"]
        for v in ck.model.get_weights().values():
            assert np.all(v == i), "a checkpoint mixing two saves"
        seen.add(i)
    assert len(seen) >= 3, "the kills should land at different moments of different saves"
