"""The run store (engine.runs): schema and migrations, faults (newer, corrupt, read-only,
locked), many processes writing at once, SIGKILL, ids, queries and the recorder."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from engine import events as ev
from engine.runs import SCHEMA_VERSION, RunRecorder, RunStore, StoreError, UnknownRunError
from engine.runs import store as store_mod

REPO = Path(__file__).resolve().parents[2]

# The schema of version 1, as an older termnist wrote it (kept here verbatim, not imported:
# the test must not change when the current schema does).
V1_SQL = """
CREATE TABLE runs (
    id TEXT PRIMARY KEY, started REAL NOT NULL, ended REAL, status TEXT NOT NULL,
    source TEXT NOT NULL DEFAULT '', settings TEXT NOT NULL DEFAULT '{}', dataset TEXT NOT NULL DEFAULT '',
    dataset_title TEXT NOT NULL DEFAULT '', data_dir TEXT, sample INTEGER NOT NULL DEFAULT 0,
    epochs_done INTEGER NOT NULL DEFAULT 0, best_val_acc REAL, test_loss REAL, test_acc REAL, seconds REAL,
    checkpoint TEXT, message TEXT, version TEXT NOT NULL DEFAULT '', machine TEXT NOT NULL DEFAULT '{}',
    host TEXT NOT NULL DEFAULT '', pid INTEGER, heartbeat REAL);
CREATE TABLE epochs (
    run_id TEXT NOT NULL, epoch INTEGER NOT NULL, train_loss REAL, train_acc REAL, val_loss REAL,
    val_acc REAL, seconds REAL, lr REAL, samples_per_s REAL, global_step INTEGER,
    PRIMARY KEY (run_id, epoch)) WITHOUT ROWID;
INSERT INTO runs (id, started, ended, status, settings, dataset, epochs_done, best_val_acc, test_acc)
    VALUES ('6a000000abcd', 1700000000, 1700000060, 'completed', '{"lr": 0.1}', 'mnist', 1, 0.9, 0.91);
INSERT INTO epochs (run_id, epoch, train_loss, val_acc) VALUES ('6a000000abcd', 1, 0.5, 0.9);
PRAGMA user_version = 1;
"""


def started(**config) -> ev.RunStarted:
    return ev.RunStarted(config={"lr": 0.1, "epochs": 3, "hidden": [16], **config}, n_train=100, n_val=10,
                         n_test=10, steps_per_epoch=2, dataset="Synthetic")


def epoch(i: int, val_acc: float = 0.5) -> ev.EpochEnded:
    return ev.EpochEnded(epoch=i, epochs=3, train_loss=1.0 / i, train_acc=0.5, val_loss=0.9 / i, val_acc=val_acc,
                         seconds=0.01, samples_per_s=1000.0, lr=0.1, global_step=2 * i)


def record(path: Path, n_epochs: int = 2, **config) -> str:
    rec = RunRecorder.open(path, source="test", dataset_name="synthetic")
    with rec:
        rec.feed(started(**config))
        for i in range(1, n_epochs + 1):
            rec.feed(epoch(i, 0.5 + i / 100))
        rec.feed(ev.Finished(epochs_done=n_epochs, test_loss=0.3, test_acc=0.8, seconds=1.0))
    assert rec.last_run_id is not None
    return rec.last_run_id


@pytest.fixture
def db(tmp_path) -> Path:
    return tmp_path / "runs.sqlite"


def test_new_store_is_wal_with_the_current_schema(db):
    RunStore(db).close()
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_default_path_is_in_the_state_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TERMNIST_STATE_DIR", str(tmp_path / "state"))
    with RunStore() as store:
        assert store.path == tmp_path / "state" / "runs.sqlite"
    assert store.path.exists()


def test_v1_store_is_migrated_keeping_its_runs(db):
    conn = sqlite3.connect(db)
    conn.executescript(V1_SQL)
    conn.close()
    with RunStore(db) as store:
        run = store.get("6a00")
        assert (run.status, run.settings, run.epochs_done, run.test_acc) == ("completed", {"lr": 0.1}, 1, 0.91)
        assert run.epochs[0]["train_loss"] == 0.5
        assert (run.note, run.star, run.changes) == ("", False, [])
        store.set_note(run.id, "kept")             # v2 columns and table are there
        store.record_change(run.id, 1, 0, "lr", 0.1, 0.05)
        assert store.get(run.id).changes[0]["new"] == 0.05
    assert sqlite3.connect(db).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_newer_store_is_refused_with_a_clear_line(db):
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError) as info:
        RunStore(db)
    msg = str(info.value)
    assert str(db) in msg and "newer termnist" in msg and "\n" not in msg
    assert sqlite3.connect(db).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1  # untouched


def test_corrupt_file_is_a_clear_error_and_the_recorder_trains_on(db):
    db.write_bytes(os.urandom(4096))
    with pytest.raises(StoreError) as info:
        RunStore(db)
    assert str(db) in str(info.value) and "corrupt" in str(info.value)
    notes: list[str] = []
    rec = RunRecorder.open(db, on_error=notes.append)
    rec.feed(started())
    rec.feed(epoch(1))
    rec.close()
    assert not rec.recording and rec.last_run_id is None
    assert len(notes) == 1 and str(db) in notes[0] and "not recording" in notes[0]


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes read-only files")
def test_read_only_file(db):
    record(db)
    db.chmod(0o444)
    try:
        with pytest.raises(StoreError, match="cannot be written"):
            RunStore(db)
        with RunStore(db, readonly=True) as store:
            assert len(store.list()) == 1
    finally:
        db.chmod(0o644)


def test_read_only_store_refuses_writes_naming_the_file(db, monkeypatch):
    run_id = record(db)
    with RunStore(db, readonly=True) as store:
        assert store.list()[0].id == run_id
        with pytest.raises(StoreError, match=r"runs\.sqlite"):
            store.set_note(run_id, "x")
    monkeypatch.setattr(store_mod, "writable", lambda path: False)   # as a non-root user sees a 0444 file
    with pytest.raises(StoreError) as info:
        RunStore(db)
    assert str(db) in str(info.value) and "cannot be written" in str(info.value)
    notes: list[str] = []
    rec = RunRecorder.open(db, on_error=notes.append)
    assert not rec.recording and "not recording" in notes[0]


def test_locked_store_is_reported_once_and_training_goes_on(db):
    with RunStore(db) as store:
        assert store.count() == 0
    notes: list[str] = []
    rec = RunRecorder.open(db, on_error=notes.append, retry_seconds=0.3)
    rec.feed(started())
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        t0 = time.monotonic()
        rec.feed(epoch(1))
        rec.feed(epoch(2))
        rec.close()
        assert time.monotonic() - t0 < 5
    finally:
        blocker.execute("ROLLBACK")
    assert len(notes) == 1 and str(db) in notes[0] and "locked" in notes[0]


def test_recorder_records_a_whole_run(db):
    rec = RunRecorder.open(db, source="cli", dataset_name="mnist", dataset_title="MNIST", sample=True, threads=2)
    with rec:
        rec.feed(started())
        rec.feed(epoch(1, 0.7))
        rec.feed(ev.HyperparamsChanged(epoch=1, step_in_epoch=1, global_step=1, field="lr", old=0.1, new=0.01))
        rec.record_change(2, 1, "momentum", 0.9, 0.95)
        rec.feed(epoch(2, 0.6))
        rec.feed(ev.Stopped(epoch=2, step=0))
        rec.feed(ev.Finished(epochs_done=2, test_loss=0.4, test_acc=0.75, seconds=2.5, reason="stopped"))
    rec.set_checkpoint("model.npz")
    with RunStore(db) as store:
        run = store.get(rec.last_run_id)
    assert (run.status, run.source, run.dataset, run.sample, run.epochs_done) == ("stopped", "cli", "mnist", True, 2)
    assert (run.best_val_acc, run.test_acc, run.test_loss, run.seconds) == (0.7, 0.75, 0.4, 2.5)
    assert [e["epoch"] for e in run.epochs] == [1, 2] and run.epochs[1]["lr"] == 0.1
    assert [(c["epoch"], c["step"], c["field"], c["old"], c["new"]) for c in run.changes] == [
        (1, 1, "lr", 0.1, 0.01), (2, 1, "momentum", 0.9, 0.95)]
    assert run.checkpoint == str(Path("model.npz").resolve())
    assert run.machine["threads"] == 2 and run.version and run.pid == os.getpid() and run.ended


@pytest.mark.parametrize(("events", "exc", "status"), [
    ([ev.Diverged(epoch=1, step=2, loss=float("nan"), message="diverged at epoch 1", restored_epoch=0),
      ev.Finished(epochs_done=0, test_loss=2.3, test_acc=0.1, seconds=1.0, reason="diverged")], None, "diverged"),
    ([ev.Failed(message="out of memory")], None, "failed"),
    ([], KeyboardInterrupt(), "interrupted"),
    ([], RuntimeError("boom"), "failed"),
    ([], None, "stopped"),
])
def test_recorder_status_of_every_ending(db, events, exc, status):
    rec = RunRecorder.open(db)
    rec.feed(started())
    rec.feed(epoch(1))
    for e in events:
        rec.feed(e)
    rec.close(exc)
    with RunStore(db) as store:
        run = store.get(rec.last_run_id)
    assert run.status == status and run.epochs_done == 1 and run.ended is not None


WRITER = textwrap.dedent("""
    import sys
    from engine import events as ev
    from engine.runs import RunRecorder
    path, n, tag = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    for i in range(n):
        rec = RunRecorder.open(path, source=tag, on_error=lambda m: sys.exit("store error: " + m))
        rec.feed(ev.RunStarted(config={"i": i, "tag": tag}, n_train=1, n_val=1, n_test=1, steps_per_epoch=1,
                               dataset="x"))
        for e in (1, 2):
            rec.feed(ev.EpochEnded(epoch=e, epochs=2, train_loss=1.0, train_acc=0.5, val_loss=1.0, val_acc=0.5,
                                   seconds=0.0, samples_per_s=1.0, lr=0.1, global_step=e))
        rec.feed(ev.Finished(epochs_done=2, test_loss=1.0, test_acc=0.5, seconds=0.0))
        rec.store.close()
""")


def test_eight_processes_writing_100_runs_each_lose_nothing(db):
    # no store yet: the eight also race to create and migrate it
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(db), "100", f"w{k}"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for k in range(8)]
    results = [p.communicate(timeout=240) for p in procs]
    for p, (_out, err) in zip(procs, results):
        assert p.returncode == 0, err
        assert "locked" not in err
    with RunStore(db) as store:
        runs = store.list()
        assert len(runs) == 800 and len({r.id for r in runs}) == 800
        assert {r.status for r in runs} == {"completed"} and {r.epochs_done for r in runs} == {2}
        for k in range(8):
            assert sorted(r.settings["i"] for r in runs if r.source == f"w{k}") == list(range(100))
    assert sqlite3.connect(db).execute("SELECT count(*) FROM epochs").fetchone()[0] == 1600


KILLED = textwrap.dedent("""
    import sys, time
    from engine import events as ev
    from engine.runs import RunRecorder
    rec = RunRecorder.open(sys.argv[1])
    rec.feed(ev.RunStarted(config={"epochs": 10}, n_train=1, n_val=1, n_test=1, steps_per_epoch=1, dataset="x"))
    for e in (1, 2, 3):
        rec.feed(ev.EpochEnded(epoch=e, epochs=10, train_loss=1.0, train_acc=0.5, val_loss=1.0, val_acc=0.5 + e / 10,
                               seconds=0.0, samples_per_s=1.0, lr=0.1, global_step=e))
    print(rec.run_id, flush=True)
    time.sleep(120)
""")


def test_a_run_killed_with_sigkill_is_interrupted_with_its_epochs(db):
    proc = subprocess.Popen([sys.executable, "-c", KILLED, str(db)], env={**os.environ, "PYTHONPATH": str(REPO)},
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    run_id = proc.stdout.readline().strip()
    with RunStore(db) as store:
        assert store.get(run_id).status == "running"        # its process is alive
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    with RunStore(db) as store:
        listed = store.list()[0]
        run = store.get(run_id)
    assert listed.status == run.status == "interrupted"
    assert run.epochs_done == 3 and [e["epoch"] for e in run.epochs] == [1, 2, 3] and run.best_val_acc == 0.8
    assert run.ended is not None
    assert sqlite3.connect(db).execute("SELECT status FROM runs").fetchone()[0] == "interrupted"   # persisted


def test_one_store_shared_by_threads(db):
    import threading

    with RunStore(db) as store:
        def work() -> None:
            for _ in range(30):
                run_id = store.create_run(settings={})
                store.add_epoch(run_id, 1, val_acc=0.5)
                store.finish_run(run_id, "completed")
                store.list(limit=5)

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert store.count() == 120 and {r.status for r in store.list()} == {"completed"}


def test_a_running_row_whose_pid_was_reused_is_interrupted(db):
    with RunStore(db) as store:
        mine = store.create_run(settings={})
        reused = store.create_run(settings={}, pid=os.getppid())     # a live process that is not the run's
        parent = store.create_run(settings={}, pid=os.getppid())
        store._write([("UPDATE runs SET pid_start = pid_start - 1 WHERE id = ?", (reused,))])
        status = {r.id: r.status for r in store.list()}
    assert status == {mine: "running", reused: "interrupted", parent: "running"} or store_mod.proc_start(1) is None


def test_a_running_row_of_another_host_with_a_stale_heartbeat_is_interrupted(db):
    with RunStore(db) as store:
        fresh = store.create_run(settings={})
        stale = store.create_run(settings={})
        store._write([("UPDATE runs SET host = 'elsewhere', heartbeat = ? WHERE id = ?", (time.time(), fresh)),
                      ("UPDATE runs SET host = 'elsewhere', heartbeat = ? WHERE id = ?", (time.time() - 3600, stale))])
        status = {r.id: r.status for r in store.list()}
    assert status == {fresh: "running", stale: "interrupted"}


def test_ids_are_short_sortable_and_prefixes_resolve(db):
    with RunStore(db) as store:
        a = store.create_run(settings={}, started=1)
        b = store.create_run(settings={}, started=2)
        assert len(a) == 12 and all(c in "0123456789abcdef" for c in a) and a != b
        store._write([("UPDATE runs SET id = '0123aaaa0001' WHERE id = ?", (a,)),
                      ("UPDATE runs SET id = '0123aaab0002' WHERE id = ?", (b,))])
        assert store.resolve("0123aaaa") == "0123aaaa0001"
        assert store.resolve("0123AAAB0002") == "0123aaab0002"
        with pytest.raises(UnknownRunError, match="ambiguous"):
            store.resolve("0123aaa")
        with pytest.raises(UnknownRunError, match="no run"):
            store.resolve("fff")
        with pytest.raises(UnknownRunError, match="hex"):
            store.resolve("x'; DROP TABLE runs")
    from engine.runs.store import new_run_id

    first = new_run_id()
    time.sleep(1.05)
    assert new_run_id()[:8] > first[:8]


def test_list_sorts_filters_and_limits(db):
    ids = [record(db, n_epochs=n, optimizer=opt) for n, opt in ((1, "sgd"), (3, "adam"), (2, "sgd"))]
    with RunStore(db) as store:
        assert [r.id for r in store.list()] == ids[::-1]        # newest first
        assert [r.epochs_done for r in store.list(sort="epochs_done")] == [3, 2, 1]
        assert [r.epochs_done for r in store.list(sort="epochs_done", descending=False)] == [1, 2, 3]
        assert {r.epochs_done for r in store.list(text="ADAM")} == {3}
        assert len(store.list(limit=2)) == 2 and store.list(text="100%_") == []
        assert store.list(status="completed", text="sgd")[0].settings["optimizer"] == "sgd"
        store.set_star(ids[0][:10])
        store.set_note(ids[1], "the good one")
        assert [r.id for r in store.list(sort="star")][0] == ids[0]
        assert store.list(text="good one")[0].id == ids[1]
        with pytest.raises(ValueError, match="cannot sort"):
            store.list(sort="id; DROP TABLE runs")
        assert store.list()[0].to_json().keys() == {"id", "status", "dataset", "sample", "settings", "epochs_done",
                                                    "best_val_acc", "test_acc", "seconds", "started", "checkpoint",
                                                    "sweep", "trial"}


def test_compare_export_and_delete(db, tmp_path):
    a = record(db, n_epochs=2, lr=0.1)
    b = record(db, n_epochs=3, lr=0.01)
    ckpt = tmp_path / "model.npz"
    ckpt.write_bytes(b"x")
    with RunStore(db) as store:
        store.set_checkpoint(a, str(ckpt))
        cmp = store.compare([a, b])
        assert cmp["settings"] == {"lr": [0.1, 0.01]}
        assert [e["epoch"] for e in cmp["epochs"]] == [1, 2, 3] and cmp["epochs"][2]["runs"][0] is None
        csv_text = store.export(b, "csv").splitlines()
        assert csv_text[0].startswith("epoch,train_loss,train_acc,val_loss,val_acc,seconds,lr") and len(csv_text) == 4
        data = json.loads(store.export(b, "json"))
        assert data["id"] == b and [e["epoch"] for e in data["epochs"]] == [1, 2, 3]
        with pytest.raises(ValueError, match="csv or json"):
            store.export(b, "xml")
        with pytest.raises(UnknownRunError):
            store.delete([a, "fff"])                      # nothing deleted when one id is unknown
        assert store.count() == 2
        assert store.delete([a], delete_checkpoints=True) == [a]
        assert not ckpt.exists() and store.count() == 1
        assert sqlite3.connect(db).execute("SELECT count(*) FROM epochs WHERE run_id = ?", (a,)).fetchone()[0] == 0
