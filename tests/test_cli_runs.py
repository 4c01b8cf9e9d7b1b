"""`termnist runs` and the run history of `termnist train`, end to end (subprocesses)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from engine.runs import SCHEMA_VERSION, RunStore
from engine.runs import store as store_mod
from tests.factories import make_dataset, write_idx_set

REPO = Path(__file__).resolve().parents[1]
TRAIN = ("--layers", "16", "--epochs", "2", "--val-size", "100", "--batch-size", "100")


@pytest.fixture(scope="module")
def idx_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("idx")
    ds = make_dataset(n_train=400, n_test=100, side=28)
    return write_idx_set(d, ds)


@pytest.fixture
def state(tmp_path, monkeypatch) -> Path:
    d = tmp_path / "state"
    monkeypatch.setenv("TERMNIST_STATE_DIR", str(d))
    return d


def termnist(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tui.cli", *args], capture_output=True, text=True, cwd=REPO,
                          stdin=subprocess.DEVNULL, timeout=timeout, check=False,
                          env={**os.environ, "PYTHONPATH": str(REPO)})


def train(idx_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    return termnist("train", "--data", str(idx_dir), *TRAIN, *extra)


def run_id_of(stdout: str) -> str:
    line = next(ln for ln in stdout.splitlines() if ln.startswith("run id: "))
    return line.split(": ", 1)[1]


def test_train_prints_its_run_id_and_records_the_run(idx_dir, state, tmp_path):
    model = tmp_path / "m.npz"
    r = train(idx_dir, "--save", str(model))
    assert r.returncode == 0, r.stderr
    run_id = run_id_of(r.stdout)
    listed = [json.loads(ln) for ln in termnist("runs", "--json").stdout.splitlines()]
    assert [x["id"] for x in listed] == [run_id]
    x = listed[0]
    assert (x["status"], x["dataset"], x["sample"], x["epochs_done"]) == ("completed", "mnist", False, 2)
    assert x["settings"]["hidden"] == [16] and x["test_acc"] is not None and x["checkpoint"] == str(model.resolve())
    with RunStore(state / "runs.sqlite") as store:
        run = store.get(run_id)
    assert run.source == "cli" and run.data_dir == str(idx_dir) and run.machine["threads"] == 1
    assert len(run.epochs) == 2 and run.epochs[0]["lr"] is not None


def test_train_json_start_and_done_carry_the_run_id(idx_dir, state):
    r = train(idx_dir, "--json")
    assert r.returncode == 0, r.stderr
    objs = [json.loads(ln) for ln in r.stdout.splitlines()]
    start = next(o for o in objs if o["event"] == "start")
    done = next(o for o in objs if o["event"] == "done")
    assert start["run_id"] and start["run_id"] == done["run_id"]
    assert json.loads(termnist("runs", "--json").stdout)["id"] == start["run_id"]


def test_runs_table_show_compare_export_rm(idx_dir, state, tmp_path):
    a = run_id_of(train(idx_dir, "--lr", "0.1").stdout)
    b = run_id_of(train(idx_dir, "--lr", "0.01", "--epochs", "3").stdout)
    table = termnist("runs")
    assert table.returncode == 0
    lines = table.stdout.splitlines()
    assert lines[0].split()[:3] == ["id", "started", "status"]
    assert lines[1].startswith(b) and lines[2].startswith(a)          # newest first
    show = termnist("runs", "show", a[:10])
    assert show.returncode == 0, show.stderr
    assert f"run:        {a}" in show.stdout and "lr=0.1" in show.stdout and "status:     completed" in show.stdout
    assert any(ln.split()[:1] == ["2"] for ln in show.stdout.splitlines())           # the epoch table
    cmp = termnist("runs", "compare", a, b)
    assert cmp.returncode == 0, cmp.stderr
    assert any(ln.split() == ["lr", "0.1", "0.01"] for ln in cmp.stdout.splitlines())
    assert any(ln.split() == ["epochs", "2", "3"] for ln in cmp.stdout.splitlines())
    assert any(ln.split()[0] == "3" and ln.split()[1:4] == ["-", "-", "-"] for ln in cmp.stdout.splitlines()
               if ln.strip()[:1].isdigit())
    cmp_json = json.loads(termnist("runs", "compare", a, b, "--json").stdout)
    assert cmp_json["settings"]["lr"] == [0.1, 0.01]
    csv_lines = termnist("runs", "export", b, "--format", "csv").stdout.splitlines()
    assert csv_lines[0].startswith("epoch,train_loss,train_acc,val_loss,val_acc,seconds,lr") and len(csv_lines) == 4
    out = tmp_path / "b.json"
    assert termnist("runs", "export", b, "--format", "json", "-o", str(out)).returncode == 0
    assert len(json.loads(out.read_text())["epochs"]) == 3
    rm = termnist("runs", "rm", a)
    assert rm.returncode == 0 and rm.stdout.strip() == f"deleted run {a}"
    assert [json.loads(ln)["id"] for ln in termnist("runs", "--json").stdout.splitlines()] == [b]


def test_unknown_ids_exit_1_and_usage_errors_exit_2(idx_dir, state):
    assert termnist("runs").stdout.startswith("no runs recorded yet")
    assert termnist("runs", "--json").stdout == ""
    train(idx_dir)
    for args in (("show", "abcdef"), ("rm", "abcdef"), ("export", "zz"), ("compare", "0", "abcdef")):
        r = termnist("runs", *args)
        assert r.returncode == 1, args
        assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("termnist: error: ")
        assert "Traceback" not in r.stderr
    for args in (("export", "0", "--format", "xml"), ("--sort", "bogus"), ("compare",), ("compare", "0"), ("show",)):
        r = termnist("runs", *args)
        assert r.returncode == 2, (args, r.stderr)


def test_ambiguous_prefix_is_one_line(idx_dir, state):
    train(idx_dir)
    train(idx_dir)
    r = termnist("runs", "show", "")
    assert r.returncode == 1 and "hex digits" in r.stderr
    # two runs started within 2**28 seconds share their first hex digit
    first = json.loads(termnist("runs", "--json").stdout.splitlines()[0])["id"]
    r = termnist("runs", "show", first[:1])
    assert r.returncode == 1 and "ambiguous" in r.stderr and len(r.stderr.splitlines()) == 1


@pytest.mark.parametrize("fault", ["corrupt", "newer"])
def test_train_still_works_with_an_unusable_store_and_says_so(idx_dir, state, fault):
    state.mkdir(parents=True)
    db = state / "runs.sqlite"
    if fault == "corrupt":
        db.write_bytes(b"garbage, not SQLite " * 200)
    else:
        sqlite3.connect(db).execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}").connection.close()
    r = train(idx_dir)
    assert r.returncode == 0, r.stderr
    assert "run id" not in r.stdout and "test accuracy" in r.stdout
    notes = [ln for ln in r.stderr.splitlines() if "run store" in ln]
    assert len(notes) == 1 and str(db) in notes[0] and "not recording" in notes[0]
    assert ("corrupt" if fault == "corrupt" else "newer termnist") in notes[0]
    listing = termnist("runs")
    assert listing.returncode == 1 and str(db) in listing.stderr and len(listing.stderr.splitlines()) == 1
    j = train(idx_dir, "--json")
    assert j.returncode == 0 and json.loads(j.stdout.splitlines()[-1])["run_id"] is None


def test_read_only_store_train_in_process(idx_dir, state, monkeypatch, capsys):
    from tui.cli import main

    assert main(["train", "--data", str(idx_dir), *TRAIN]) == 0
    capsys.readouterr()
    monkeypatch.setattr(store_mod, "writable", lambda path: False)   # a 0444 file as a non-root user sees it
    assert main(["train", "--data", str(idx_dir), *TRAIN]) == 0
    out, err = capsys.readouterr()
    assert "run id" not in out and "test accuracy" in out
    assert "cannot be written" in err and str(state / "runs.sqlite") in err
    assert main(["runs", "--json"]) == 0                             # read-only: still listed
    assert len(capsys.readouterr().out.splitlines()) == 1


def test_train_killed_with_sigkill_is_listed_as_interrupted(idx_dir, state):
    proc = subprocess.Popen([sys.executable, "-m", "tui.cli", "train", "--data", str(idx_dir), *TRAIN,
                             "--epochs", "100000"], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    run_id, printed = None, 0
    for line in proc.stdout:
        if line.startswith("run id: "):
            run_id = line.split(": ", 1)[1].strip()
        if line.startswith("epoch"):
            printed += 1
            if printed == 2:
                break
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    listed = json.loads(termnist("runs", "--json").stdout)
    assert listed["id"] == run_id and listed["status"] == "interrupted"
    assert listed["epochs_done"] >= 2                  # every printed epoch was recorded first
    show = termnist("runs", "show", run_id)
    assert "status:     interrupted" in show.stdout


def test_ctrl_c_ends_the_recorded_run_as_stopped(idx_dir, state):
    # (a second Ctrl+C, KeyboardInterrupt -> "interrupted", is tests/engine/test_runs.py's: here the
    # tiny batches end the run before a second signal could land reliably)
    proc = subprocess.Popen([sys.executable, "-m", "tui.cli", "train", "--data", str(idx_dir), *TRAIN,
                             "--epochs", "100000"], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("epoch"):
            break
    proc.send_signal(signal.SIGINT)
    proc.stdout.read()
    assert proc.wait(timeout=60) == 130
    listed = json.loads(termnist("runs", "--json").stdout)
    assert listed["status"] == "stopped" and listed["epochs_done"] >= 1 and listed["test_acc"] is not None


def test_train_with_a_locked_store_trains_and_says_so(idx_dir, state):
    with RunStore(state / "runs.sqlite") as store:
        assert store.count() == 0
    blocker = sqlite3.connect(state / "runs.sqlite", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")             # another process holding the write lock for good
    try:
        r = train(idx_dir)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert r.returncode == 0, r.stderr
    assert "test accuracy" in r.stdout and "run id" not in r.stdout
    notes = [ln for ln in r.stderr.splitlines() if "run store" in ln]
    assert len(notes) == 1 and str(state / "runs.sqlite") in notes[0] and "locked" in notes[0]
    assert "Traceback" not in r.stderr and "database is locked" not in r.stderr
