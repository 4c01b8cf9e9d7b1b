"""Smoke test: `python -m benchmarks all --quick` runs end to end on the bundled sample and
prints its tables (and writes its JSON). No timing assertions: the figures of --quick mean
nothing; the full benchmark is `python -m benchmarks`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(sys.platform == "win32", reason="the app measurements need a POSIX pty")
@pytest.mark.timeout(600)   # a hang guard, not a speed test: --quick runs every section
def test_quick_benchmark_prints_tables_and_writes_json(tmp_path):
    out = tmp_path / "bench.json"
    env = dict(os.environ, TERMNIST_CONFIG_DIR=str(tmp_path / "config"),
               TERMNIST_STATE_DIR=str(tmp_path / "state"))
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "all", "--quick", "--quiet", "--json", str(out)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=590, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    text = proc.stdout
    for title in ("== Machine ==", "== Epoch speed", "== Time to accuracy", "== The app costs little",
                  "== Responsive and light over SSH", "== Memory and start-up", "== Run history: recording",
                  "== Run history: listing", "== Live changes", "== Targets =="):
        assert title in text, f"missing {title!r} in:\n{text[-3000:]}"
    assert "bundled MNIST sample" in text
    data = json.loads(out.read_text())
    assert set(data["sections"]) == {"epoch", "accuracy", "app", "startup", "insight", "runs", "live"}
    assert data["failures"] == []
    assert data["quick"] is True
    epoch_rows = data["sections"]["epoch"]["data"]["rows"]
    assert epoch_rows and all(r["engine_s"] > 0 for r in epoch_rows)
    sessions = data["sections"]["app"]["data"]["pty_sessions"]
    assert sessions and "error" not in sessions[0], sessions
    assert sessions[0]["bytes"] > 0 and len(sessions[0]["latencies_s"]) >= 1
    # --quick gives no verdicts
    assert all(t["met"] is None for s in data["sections"].values() for t in s["targets"])


def test_unknown_section_is_a_usage_error():
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "nonsense"], cwd=REPO,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2
    assert "unknown section" in proc.stderr
