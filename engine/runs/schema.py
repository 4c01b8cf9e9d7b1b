"""The run store's file: opening it (WAL, busy timeout), its schema and table-driven migrations.

``PRAGMA user_version`` is the schema version. ``MIGRATIONS[v]`` takes a store at version
``v`` to ``v + 1`` (version 0 is an empty file), each in one transaction, so a store written
by an older termnist is brought up to date the first time this one opens it, and a store
from a newer termnist is refused (``StoreError``) rather than misread.
"""

from __future__ import annotations

import os
import random
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from engine.errors import TermnistError

BUSY_TIMEOUT_MS = 5000         # SQLite waits this long for a lock itself ...
RETRY_SECONDS = 30.0           # ... and we retry "database is locked" with backoff this long

_V1 = (
    """CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        started REAL NOT NULL,
        ended REAL,
        status TEXT NOT NULL,
        source TEXT NOT NULL DEFAULT '',
        settings TEXT NOT NULL DEFAULT '{}',
        dataset TEXT NOT NULL DEFAULT '',
        dataset_title TEXT NOT NULL DEFAULT '',
        data_dir TEXT,
        sample INTEGER NOT NULL DEFAULT 0,
        epochs_done INTEGER NOT NULL DEFAULT 0,
        best_val_acc REAL,
        test_loss REAL,
        test_acc REAL,
        seconds REAL,
        checkpoint TEXT,
        message TEXT,
        version TEXT NOT NULL DEFAULT '',
        machine TEXT NOT NULL DEFAULT '{}',
        host TEXT NOT NULL DEFAULT '',
        pid INTEGER,
        heartbeat REAL
    )""",
    """CREATE TABLE epochs (
        run_id TEXT NOT NULL,
        epoch INTEGER NOT NULL,
        train_loss REAL, train_acc REAL, val_loss REAL, val_acc REAL,
        seconds REAL, lr REAL, samples_per_s REAL, global_step INTEGER,
        PRIMARY KEY (run_id, epoch)
    ) WITHOUT ROWID""",
)
# v2: live changes, the Runs panel's note and star, the pid's start time, an index for "newest first"
_V2 = (
    """CREATE TABLE changes (
        run_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        at REAL NOT NULL,
        epoch INTEGER NOT NULL,
        step INTEGER NOT NULL,
        field TEXT NOT NULL,
        old TEXT,
        new TEXT,
        PRIMARY KEY (run_id, seq)
    ) WITHOUT ROWID""",
    "ALTER TABLE runs ADD COLUMN note TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE runs ADD COLUMN star INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE runs ADD COLUMN pid_start INTEGER",      # the process's start time: a reused pid is not it
    "CREATE INDEX runs_started ON runs (started)",
)
# v3 (sweeps, engine.sweep): which sweep a run is a trial of, and its Optuna trial number
_V3_SWEEP = (
    "ALTER TABLE runs ADD COLUMN sweep TEXT",
    "ALTER TABLE runs ADD COLUMN trial INTEGER",
)
MIGRATIONS: tuple[tuple[str, ...], ...] = (_V1, _V2, _V3_SWEEP)
SCHEMA_VERSION = len(MIGRATIONS)


class StoreError(TermnistError):
    """The run store cannot be used (locked, read-only, corrupt, newer). Names the file."""


class UnknownRunError(TermnistError):
    """No run has this id (or id prefix), or the prefix matches several runs."""


T = TypeVar("T")


def is_locked(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


def retry(fn: Callable[[], T], *, seconds: float = RETRY_SECONDS) -> T:
    """``fn()``, again with exponential backoff (and jitter) while SQLite says the database is
    locked or busy, for up to ``seconds``; then the last error propagates."""
    deadline = time.monotonic() + seconds
    delay = 0.005
    while True:
        try:
            return fn()
        except sqlite3.OperationalError as exc:
            if not is_locked(exc) or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2, 0.5)


def describe_error(path: Path, exc: BaseException) -> str:
    """One line naming the file and what is wrong with it."""
    text = str(exc)
    low = text.lower()
    if is_locked(exc):
        why = "locked by another process for too long"
    elif "readonly" in low or "read-only" in low or "unable to open" in low or isinstance(exc, PermissionError):
        why = f"cannot be written ({text}); check its permissions and those of {path.parent}"
    elif "not a database" in low or "malformed" in low or "corrupt" in low:
        why = f"is corrupt ({text}); move it away or delete it to start a new history"
    else:
        why = f"cannot be used ({type(exc).__name__}: {text})"
    return f"run store {path}: {why}"


def connect(path: Path, *, readonly: bool = False, retry_seconds: float = RETRY_SECONDS) -> sqlite3.Connection:
    """Open (creating and migrating when writable) the store at ``path``. Raises StoreError."""
    busy_ms = int(min(BUSY_TIMEOUT_MS, retry_seconds * 1000))
    try:
        if readonly:
            conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True,
                                   timeout=busy_ms / 1000, isolation_level=None,
                                   check_same_thread=False)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(path), timeout=busy_ms / 1000, isolation_level=None,
                                   check_same_thread=False)
    except (sqlite3.Error, OSError) as exc:
        raise StoreError(describe_error(path, exc)) from None
    try:
        conn.execute(f"PRAGMA busy_timeout = {busy_ms}")
        version = retry(lambda: conn.execute("PRAGMA user_version").fetchone()[0], seconds=retry_seconds)
        if version > SCHEMA_VERSION:
            raise StoreError(f"run store {path}: written by a newer termnist (schema {version}; this one reads"
                             f" up to {SCHEMA_VERSION}): upgrade termnist, or set TERMNIST_STATE_DIR to use"
                             " another store")
        if not readonly:
            if retry(lambda: conn.execute("PRAGMA journal_mode").fetchone()[0], seconds=retry_seconds) != "wal":
                retry(lambda: conn.execute("PRAGMA journal_mode = WAL"), seconds=retry_seconds)
            conn.execute("PRAGMA synchronous = NORMAL")   # WAL: durable against crashes of the process
            if version < SCHEMA_VERSION:
                retry(lambda: _migrate(conn), seconds=retry_seconds)
        elif version < SCHEMA_VERSION:
            raise StoreError(f"run store {path}: schema {version} needs upgrading, but the file is read-only")
    except StoreError:
        conn.close()
        raise
    except sqlite3.Error as exc:
        conn.close()
        raise StoreError(describe_error(path, exc)) from None
    return conn


def _migrate(conn: sqlite3.Connection) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]   # another process may have done it
        if version > SCHEMA_VERSION:
            raise sqlite3.DatabaseError(f"schema {version} is newer than {SCHEMA_VERSION}")
        for step in MIGRATIONS[version:]:
            for statement in step:
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def writable(path: Path) -> bool:
    """Can this process write the store (the file, or the directory it would be created in)?"""
    if path.exists():
        return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    return os.access(parent, os.W_OK)
