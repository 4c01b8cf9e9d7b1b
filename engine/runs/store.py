"""``RunStore``: the history of every run, in one SQLite file shared by every termnist process."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from engine.runs.schema import StoreError, UnknownRunError, connect, describe_error, retry, writable

STORE_NAME = "runs.sqlite"
STATUSES = ("running", "completed", "stopped", "diverged", "interrupted", "failed")
STALE_SECONDS = 600.0      # a "running" row of another host with no heartbeat for this long is interrupted
EPOCH_FIELDS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "seconds", "lr",
                "samples_per_s", "global_step")
_LIST_COLUMNS = ("id", "started", "ended", "status", "source", "settings", "dataset", "dataset_title",
                 "data_dir", "sample", "epochs_done", "best_val_acc", "test_loss", "test_acc", "seconds",
                 "checkpoint", "message", "version", "machine", "host", "pid", "heartbeat", "note", "star",
                 "pid_start", "sweep", "trial")
SORT_COLUMNS = tuple(c for c in _LIST_COLUMNS if c not in ("settings", "machine", "pid_start"))
HOST = os.uname().nodename if hasattr(os, "uname") else os.environ.get("COMPUTERNAME", "")


def default_path() -> Path:
    from engine.recovery import state_dir

    return state_dir() / STORE_NAME


def new_run_id() -> str:
    """12 hex digits: the start second (sorts by time) then 16 random bits. The store's primary
    key makes it unique: a clash (same second, same random bits) is retried with a new one."""
    return f"{int(time.time()):08x}{os.urandom(2).hex()}"


@dataclass
class RunSummary:
    id: str
    started: float
    ended: float | None
    status: str
    source: str
    settings: dict[str, Any]
    dataset: str
    dataset_title: str
    data_dir: str | None
    sample: bool
    epochs_done: int
    best_val_acc: float | None
    test_loss: float | None
    test_acc: float | None
    seconds: float | None
    checkpoint: str | None
    message: str | None
    version: str
    machine: dict[str, Any]
    host: str
    pid: int | None
    heartbeat: float | None
    note: str
    star: bool
    pid_start: int | None = None     # start time of the process (clock ticks since boot), where known
    sweep: str | None = None         # the sweep (Optuna study name) this run is a trial of
    trial: int | None = None         # its trial number in that sweep

    def to_json(self) -> dict[str, Any]:
        """The object ``termnist runs --json`` prints for this run."""
        return {"id": self.id, "status": self.status, "dataset": self.dataset, "sample": self.sample,
                "settings": self.settings, "epochs_done": self.epochs_done, "best_val_acc": self.best_val_acc,
                "test_acc": self.test_acc, "seconds": self.seconds, "started": _iso(self.started),
                "checkpoint": self.checkpoint, "sweep": self.sweep, "trial": self.trial}


@dataclass
class Run(RunSummary):
    epochs: list[dict[str, Any]] = field(default_factory=list)
    changes: list[dict[str, Any]] = field(default_factory=list)

    def to_full_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["started"], d["ended"] = _iso(self.started), _iso(self.ended)
        return d


def _iso(t: float | None) -> str | None:
    return None if t is None else time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(t))


def proc_start(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot, /proc/PID/stat field 22); None without /proc."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return int(fh.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def pid_alive(pid: int, started: int | None = None) -> bool:
    """Is ``pid`` a live process on this host (a zombie is not)? With ``started`` (its
    proc_start when it was recorded), a live process that started at another time is a
    reused pid: not it."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        if fields[0] == "Z":
            return False
        return started is None or int(fields[19]) == started
    except FileNotFoundError:
        return False
    except (OSError, IndexError, ValueError):
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunStore:
    """The run history. ``path`` defaults to ``<state dir>/runs.sqlite`` ($TERMNIST_STATE_DIR
    overrides the state dir). Opening creates or migrates it; a store that cannot be used
    raises ``StoreError`` with one line naming the file. ``readonly=True`` (queries only)
    also opens a store this process cannot write. Thread-safe: one connection, one call at a
    time (a lock); other processes are kept apart by SQLite's own locking."""

    def __init__(self, path: str | os.PathLike[str] | None = None, *, readonly: bool = False,
                 retry_seconds: float = 30.0) -> None:
        self.path = Path(path) if path is not None else default_path()
        self.readonly = readonly or (self.path.exists() and not writable(self.path))
        if not readonly and self.readonly:
            raise StoreError(describe_error(self.path, PermissionError("read-only file or directory")))
        self.retry_seconds = retry_seconds
        self._lock = threading.RLock()
        self._conn = connect(self.path, readonly=self.readonly, retry_seconds=retry_seconds)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ------------------------------------------------------------------------
    def _write(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> None:
        """Run ``statements`` in one IMMEDIATE transaction, retried while the store is locked."""
        def attempt() -> None:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                for sql, params in statements:
                    conn.execute(sql, params)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

        try:
            with self._lock:
                retry(attempt, seconds=self.retry_seconds)
        except sqlite3.IntegrityError:
            raise
        except sqlite3.Error as exc:
            raise StoreError(describe_error(self.path, exc)) from None

    def create_run(self, *, settings: dict[str, Any], dataset: str = "", dataset_title: str = "",
                   data_dir: str | None = None, sample: bool = False, source: str = "",
                   version: str = "", machine: dict[str, Any] | None = None,
                   started: float | None = None, pid: int | None = None, sweep: str | None = None,
                   trial: int | None = None) -> str:
        """A new row with status "running"; returns its id."""
        now = time.time() if started is None else started
        pid = os.getpid() if pid is None else pid
        for _ in range(100):
            run_id = new_run_id()
            try:
                self._write([(
                    "INSERT INTO runs (id, started, status, source, settings, dataset, dataset_title, data_dir,"
                    " sample, version, machine, host, pid, pid_start, heartbeat, sweep, trial)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (run_id, now, "running", source, json.dumps(settings), dataset, dataset_title, data_dir,
                     int(bool(sample)), version, json.dumps(machine or {}), HOST, pid, proc_start(pid),
                     time.time(), sweep, trial))])
                return run_id
            except sqlite3.IntegrityError:
                continue           # same second, same 16 random bits: draw again
        raise StoreError(f"run store {self.path}: could not find a free run id")

    def add_epoch(self, run_id: str, epoch: int, *, train_loss: float | None = None,
                  train_acc: float | None = None, val_loss: float | None = None, val_acc: float | None = None,
                  seconds: float | None = None, lr: float | None = None, samples_per_s: float | None = None,
                  global_step: int | None = None) -> None:
        """Record a finished epoch (one transaction: the epoch row, epochs_done, best_val_acc, heartbeat)."""
        self._write([
            ("INSERT OR REPLACE INTO epochs (run_id, epoch, train_loss, train_acc, val_loss, val_acc, seconds, lr,"
             " samples_per_s, global_step) VALUES (?,?,?,?,?,?,?,?,?,?)",
             (run_id, epoch, train_loss, train_acc, val_loss, val_acc, seconds, lr, samples_per_s, global_step)),
            ("UPDATE runs SET epochs_done = max(epochs_done, ?), heartbeat = ?,"
             " best_val_acc = CASE WHEN ? IS NOT NULL AND (best_val_acc IS NULL OR ? > best_val_acc)"
             " THEN ? ELSE best_val_acc END WHERE id = ?",
             (epoch, time.time(), val_acc, val_acc, val_acc, run_id)),
        ])

    def record_change(self, run_id: str, epoch: int, step: int, field: str, old: Any, new: Any) -> None:
        """A live change of a setting (lr, momentum, ...) at ``epoch``/``step`` of the run."""
        self._write([(
            "INSERT INTO changes (run_id, seq, at, epoch, step, field, old, new) VALUES"
            " (?, (SELECT coalesce(max(seq), 0) + 1 FROM changes WHERE run_id = ?), ?, ?, ?, ?, ?, ?)",
            (run_id, run_id, time.time(), epoch, step, field, json.dumps(old), json.dumps(new)))])

    def heartbeat(self, run_id: str) -> None:
        self._write([("UPDATE runs SET heartbeat = ? WHERE id = ?", (time.time(), run_id))])

    def finish_run(self, run_id: str, status: str, *, test_loss: float | None = None,
                   test_acc: float | None = None, seconds: float | None = None,
                   message: str | None = None, ended: float | None = None) -> None:
        if status not in STATUSES:
            raise ValueError(f"status {status!r} is not one of {', '.join(STATUSES)}")
        self._write([(
            "UPDATE runs SET status = ?, ended = ?, test_loss = coalesce(?, test_loss),"
            " test_acc = coalesce(?, test_acc), seconds = coalesce(?, seconds), message = coalesce(?, message),"
            " heartbeat = ? WHERE id = ?",
            (status, time.time() if ended is None else ended, test_loss, test_acc, seconds, message,
             time.time(), run_id))])

    def set_checkpoint(self, run_id: str, path: str | None) -> None:
        self._write([("UPDATE runs SET checkpoint = ? WHERE id = ?", (path, run_id))])

    def set_note(self, run_id: str, note: str) -> None:
        self._write([("UPDATE runs SET note = ? WHERE id = ?", (note, self.resolve(run_id)))])

    def set_star(self, run_id: str, star: bool = True) -> None:
        self._write([("UPDATE runs SET star = ? WHERE id = ?", (int(bool(star)), self.resolve(run_id)))])

    def delete(self, run_ids: Iterable[str], *, delete_checkpoints: bool = False) -> list[str]:
        """Delete runs (ids or unique prefixes; all resolved before anything is deleted).
        Returns the full ids. With ``delete_checkpoints`` their checkpoint files go too."""
        ids = [self.resolve(r) for r in run_ids]
        files = [r.checkpoint for r in (self.get(i, with_details=False) for i in ids) if r.checkpoint]
        statements: list[tuple[str, Sequence[Any]]] = []
        for table, column in (("epochs", "run_id"), ("changes", "run_id"), ("runs", "id")):
            statements += [(f"DELETE FROM {table} WHERE {column} = ?", (i,)) for i in ids]
        self._write(statements)
        if delete_checkpoints:
            for f in files:
                try:
                    os.unlink(f)
                except FileNotFoundError:
                    pass
        return ids

    def mark_interrupted(self) -> int:
        """Rows still "running" whose process is gone become "interrupted" (ended = last
        heartbeat). Returns how many. Nothing happens on a read-only store."""
        dead = [r for r in self._rows("SELECT * FROM runs WHERE status = 'running'", ()) if _is_dead(r)]
        if dead and not self.readonly:
            self._write([("UPDATE runs SET status = 'interrupted', ended = coalesce(heartbeat, started)"
                          " WHERE id = ? AND status = 'running'", (r["id"],)) for r in dead])
        return len(dead)

    # -- reading ------------------------------------------------------------------------
    def _rows(self, sql: str, params: Sequence[Any], *, named: bool = True) -> list[Any]:
        def attempt() -> list[Any]:
            cur = self._conn.cursor()
            if named:
                cur.row_factory = sqlite3.Row
            return cur.execute(sql, params).fetchall()

        try:
            with self._lock:
                return retry(attempt, seconds=self.retry_seconds)
        except sqlite3.Error as exc:
            raise StoreError(describe_error(self.path, exc)) from None

    def list(self, *, sort: str = "started", descending: bool = True, text: str | None = None,
             status: str | None = None, limit: int | None = None) -> list[RunSummary]:
        """Runs, newest first by default. ``sort``: any of SORT_COLUMNS. ``text``: a
        case-insensitive substring of the id, status, dataset, settings, note or sweep. Their
        ``machine`` is left empty (``get`` fills it): the listing stays fast."""
        if sort not in SORT_COLUMNS:
            raise ValueError(f"cannot sort by {sort!r}; choose from {', '.join(SORT_COLUMNS)}")
        self._reap()
        where: list[str] = []
        params: list[Any] = []
        if text:
            like = f"%{text.replace(chr(92), chr(92) * 2).replace('%', chr(92) + '%').replace('_', chr(92) + '_')}%"
            where.append("(" + " OR ".join(f"{c} LIKE ? ESCAPE '\\'" for c in
                                           ("id", "status", "dataset", "dataset_title", "settings", "note",
                                            "sweep")) + ")")
            params += [like] * 7
        if status:
            where.append("status = ?")
            params.append(status)
        columns = ", ".join("'{}' AS machine" if c == "machine" else c for c in _LIST_COLUMNS)
        sql = (f"SELECT {columns} FROM runs" + (" WHERE " + " AND ".join(where) if where else "")
               + f" ORDER BY {sort} {'DESC' if descending else 'ASC'}, id {'DESC' if descending else 'ASC'}"
               + (" LIMIT ?" if limit is not None else ""))
        if limit is not None:
            params.append(limit)
        return [_summary(r, machine=False) for r in self._rows(sql, params, named=False)]

    def resolve(self, prefix: str) -> str:
        """The full id of the run whose id starts with ``prefix``; UnknownRunError when none
        or several do."""
        p = prefix.strip().lower()
        if not p or any(c not in "0123456789abcdef" for c in p):
            raise UnknownRunError(f"no run {prefix!r}: run ids are hex digits (see `termnist runs`)")
        rows = self._rows("SELECT id FROM runs WHERE id >= ? AND id < ? ORDER BY id LIMIT 6",
                          (p, p + "g"))
        if not rows:
            raise UnknownRunError(f"no run {prefix!r} in {self.path} (see `termnist runs`)")
        if len(rows) > 1:
            shown = ", ".join(r["id"] for r in rows[:5]) + (", ..." if len(rows) > 5 else "")
            raise UnknownRunError(f"run id {prefix!r} is ambiguous: it starts {shown}; give more digits")
        return str(rows[0]["id"])

    def get(self, run_id: str, *, with_details: bool = True) -> Run:
        """One run (id or unique prefix) with its epochs and live changes."""
        full = self.resolve(run_id)
        self._reap(full)
        rows = self._rows(f"SELECT {', '.join(_LIST_COLUMNS)} FROM runs WHERE id = ?", (full,), named=False)
        if not rows:
            raise UnknownRunError(f"no run {run_id!r} in {self.path}")
        run = Run(**asdict(_summary(rows[0])))
        if with_details:
            run.epochs = [dict(r) for r in self._rows(
                f"SELECT {', '.join(EPOCH_FIELDS)} FROM epochs WHERE run_id = ? ORDER BY epoch", (full,))]
            run.changes = [{**dict(r), "old": _loads(r["old"]), "new": _loads(r["new"])} for r in self._rows(
                "SELECT seq, at, epoch, step, field, old, new FROM changes WHERE run_id = ? ORDER BY seq", (full,))]
        return run

    def compare(self, run_ids: Sequence[str]) -> dict[str, Any]:
        """``{"ids": [...], "settings": {field: [value per run]} (only fields that differ),
        "epochs": [{"epoch": n, "runs": [{figures} or None per run]}]}``."""
        runs = [self.get(r) for r in run_ids]
        keys = sorted({k for r in runs for k in r.settings})
        differing = {k: [r.settings.get(k) for r in runs] for k in keys
                     if len({json.dumps(r.settings.get(k), sort_keys=True) for r in runs}) > 1}
        for name in ("dataset", "sample"):
            values = [getattr(r, name) for r in runs]
            if len(set(values)) > 1:
                differing[name] = values
        n = max((len(r.epochs) and r.epochs[-1]["epoch"]) or 0 for r in runs) if runs else 0
        by_epoch = [{e["epoch"]: e for e in r.epochs} for r in runs]
        epochs = [{"epoch": i, "runs": [m.get(i) for m in by_epoch]} for i in range(1, n + 1)]
        return {"ids": [r.id for r in runs], "runs": runs, "settings": differing, "epochs": epochs}

    def export(self, run_id: str, fmt: str = "csv") -> str:
        """The run's per-epoch figures as CSV (a header line, one line per epoch) or JSON."""
        run = self.get(run_id)
        if fmt == "json":
            return json.dumps({"id": run.id, "epochs": run.epochs}, indent=2) + "\n"
        if fmt != "csv":
            raise ValueError(f"format {fmt!r}: choose csv or json")
        import csv
        import io

        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(EPOCH_FIELDS), lineterminator="\n")
        writer.writeheader()
        writer.writerows(run.epochs)
        return buf.getvalue()

    def count(self) -> int:
        return int(self._rows("SELECT count(*) AS n FROM runs", ())[0]["n"])

    def _reap(self, run_id: str | None = None) -> None:
        """Show runs whose process died as interrupted (persisted when the store is writable)."""
        try:
            self.mark_interrupted()
        except StoreError:
            pass


def _is_dead(row: Any) -> bool:
    if row["host"] == HOST and row["pid"] is not None:
        return row["pid"] != os.getpid() and not pid_alive(int(row["pid"]), row["pid_start"])
    beat = row["heartbeat"] if row["heartbeat"] is not None else row["started"]
    return time.time() - beat > STALE_SECONDS


def _loads(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def _summary(r: Any, machine: bool = True) -> RunSummary:
    """A RunSummary from a row of _LIST_COLUMNS (a tuple: the listing's hot path)."""
    (run_id, started, ended, status, source, settings, dataset, dataset_title, data_dir, sample, epochs_done,
     best_val_acc, test_loss, test_acc, seconds, checkpoint, message, version, machine_json, host, pid,
     heartbeat, note, star, pid_start, sweep, trial) = r
    if status == "running" and _is_dead({"host": host, "pid": pid, "pid_start": pid_start, "heartbeat": heartbeat,
                                         "started": started}):
        status = "interrupted"       # a read-only store: shown, not persisted
    return RunSummary(run_id, started, ended, status, source, _loads(settings) or {}, dataset, dataset_title,
                      data_dir, bool(sample), epochs_done, best_val_acc, test_loss, test_acc, seconds, checkpoint,
                      message, version, (_loads(machine_json) or {}) if machine else {}, host, pid, heartbeat,
                      note, bool(star), pid_start, sweep, trial)


__all__ = ["STATUSES", "Run", "RunStore", "RunSummary", "StoreError", "UnknownRunError", "default_path"]
