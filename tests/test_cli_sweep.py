"""`termnist sweep` end to end (subprocesses): --json objects, usage errors (exit 2), a corrupt
journal (exit 1, one line), Ctrl+C (exit 130) then --resume, and the sweep tag in `termnist runs`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.factories import make_dataset, write_idx_set

REPO = Path(__file__).resolve().parents[1]
BASE = ("--dataset", "idx", "--layers", "8", "--val-size", "100", "--batch-size", "32", "--epochs", "2")


@pytest.fixture(scope="module")
def idx_dir(tmp_path_factory):
    return write_idx_set(tmp_path_factory.mktemp("idx"), make_dataset(n_train=600, n_test=200, side=8))


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "TERMNIST_STATE_DIR": str(tmp_path / "state"),
            "TERMNIST_CONFIG_DIR": str(tmp_path / "config")}


def termnist(env: dict[str, str], *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tui.cli", *args], capture_output=True, text=True, cwd=REPO,
                          stdin=subprocess.DEVNULL, timeout=timeout, check=False, env=env)


def json_lines(text: str) -> list[dict]:
    return [json.loads(ln) for ln in text.splitlines() if ln.startswith("{")]


def test_json_prints_start_trial_and_done_objects(idx_dir, env):
    proc = termnist(env, "sweep", *BASE, "--data", str(idx_dir), "--param", "lr=0.01:0.5:log",
                    "--param", "hidden=8,16-8", "--trials", "3", "--name", "j", "--pruner", "none", "--json")
    assert proc.returncode == 0, proc.stderr
    lines = json_lines(proc.stdout)
    assert [ln["event"] for ln in lines] == ["start", "trial", "trial", "trial", "done"]
    start, trials, done = lines[0], lines[1:4], lines[4]
    assert start["study"] == "j" and start["storage"].endswith("sweeps.journal")
    assert start["space"] == [{"name": "lr", "kind": "float", "low": 0.01, "high": 0.5, "log": True},
                              {"name": "hidden", "kind": "categorical", "choices": ["8", "16-8"]}]
    for t in trials:
        assert {"number", "state", "params", "value", "epochs", "run_id", "worker", "seconds"} <= set(t)
        assert t["state"] == "complete" and t["epochs"] == 2 and set(t["params"]) == {"lr", "hidden"}
        assert isinstance(t["value"], float) and t["worker"].startswith("local:") and t["seconds"] > 0
    assert {"best_params", "best_value", "best_run_id", "n_complete", "n_pruned", "n_failed",
            "seconds"} <= set(done)
    assert (done["n_complete"], done["n_pruned"], done["n_failed"]) == (3, 0, 0)
    assert done["best_run_id"] in {t["run_id"] for t in trials}
    # every trial is a run in the history, tagged with its sweep
    runs = json_lines(termnist(env, "runs", "--json").stdout)
    assert sorted((r["sweep"], r["trial"]) for r in runs) == [("j", 0), ("j", 1), ("j", 2)]
    # ... with its model kept, so the Runs panel and `termnist eval` can open any trial
    for r in runs:
        assert r["checkpoint"] and Path(r["checkpoint"]).is_file()
        assert Path(r["checkpoint"]).parent == Path(env["TERMNIST_STATE_DIR"]) / "checkpoints"
    best = next(r for r in runs if r["id"] == done["best_run_id"])
    assert termnist(env, "eval", best["checkpoint"], "--data", str(idx_dir), "--dataset", "idx").returncode == 0


def test_human_output_has_a_line_per_trial_best_and_importances(idx_dir, env):
    proc = termnist(env, "sweep", *BASE, "--data", str(idx_dir), "--param", "lr=0.01:0.5:log",
                    "--param", "batch_size=16,32", "--trials", "3", "--name", "h", "--pruner", "none")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.count("\ntrial ") == 3 and "best: trial" in out and "best run: " in out and "importance: " in out


@pytest.mark.parametrize(("args", "words"), [
    (("--param", "nope=1,2"), "--param nope: unknown parameter"),
    (("--param", "lr="), "--param lr: empty list"),
    (("--param", "lr=0.5:0.1"), "--param lr: range '0.5:0.1': low 0.5 is greater than high 0.1"),
    (("--param", "lr=0:1:log"), "--param lr: log range '0:1:log': low must be > 0"),
    (("--param", "lr=0.01:0.1", "--sampler", "grid"), "--param lr: a float range"),
    (("--param", "activation=relu,nope"), "--param activation: value 'nope'"),
    ((), "--param: give at least one"),
    (("--param", "lr=0.1,0.2", "--trials", "0"), "--trials: 0 is out of range"),
    (("--param", "lr=0.1,0.2", "--sampler", "bayes"), "--sampler: unknown sampler 'bayes'"),
    (("--param", "lr=0.1,0.2", "--cluster", "localhost:8786"), "--cluster: expected a scheduler address"),
    (("--resume", "x", "--name", "y"), "--resume NAME continues a sweep: drop --name"),
])
def test_usage_errors_name_the_flag(env, args, words):
    proc = termnist(env, "sweep", *args, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [f"termnist: error: {proc.stderr.split('error: ', 1)[1].strip()}"]
    assert words in proc.stderr and "Traceback" not in proc.stderr


def test_a_corrupt_journal_is_one_line_naming_it(idx_dir, env, tmp_path):
    bad = tmp_path / "bad.journal"
    bad.write_text('{"op_code": 0, "worker_id": "w", "study_name": "a", "directions": [2]}\nnot json\n')
    proc = termnist(env, "sweep", *BASE, "--data", str(idx_dir), "--param", "lr=0.1,0.2", "--storage", str(bad))
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (f"termnist: error: sweep journal {bad}: line 2 is corrupt (not"
                                                    " an Optuna journal record); move the file away to start a new"
                                                    " one, or pass --storage")


@pytest.mark.timeout(240)
def test_ctrl_c_stops_the_trials_exit_130_and_resume_continues(env, tmp_path):
    data = write_idx_set(tmp_path / "big", make_dataset(n_train=6000, n_test=200, side=28))
    cmd = [sys.executable, "-m", "tui.cli", "sweep", "--dataset", "idx", "--data", str(data), "--layers", "64",
           "--val-size", "500", "--epochs", "4", "--param", "lr=0.01:0.2:log", "--trials", "30", "--workers", "2",
           "--pruner", "none", "--name", "cut", "--json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=env,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()                  # "start"
        assert json.loads(first)["event"] == "start"
        second = json.loads(proc.stdout.readline())     # the first finished trial
        assert second["event"] == "trial"
        os.killpg(proc.pid, signal.SIGINT)              # Ctrl+C in a terminal: the whole process group
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "continue with termnist sweep --resume cut" in err and "Traceback" not in err
    lines = [second, *json_lines(out)]
    done = lines[-1]
    assert done["event"] == "done" and done["interrupted"] is True
    finished = done["n_complete"] + done["n_pruned"] + done["n_failed"]
    assert 1 <= finished < 30
    again = termnist(env, "sweep", "--resume", "cut", "--trials", str(finished + 2), "--json", timeout=200)
    assert again.returncode == 0, again.stderr
    res = json_lines(again.stdout)
    assert res[0]["resumed"] is True and res[0]["done_before"] == finished
    assert res[-1]["n_complete"] + res[-1]["n_pruned"] + res[-1]["n_failed"] == finished + 2
