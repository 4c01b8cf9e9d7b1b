"""The run store: every run (app, ``termnist train``, sweeps) recorded in one SQLite file.

``RunStore`` reads and writes it (engine/runs/store.py), ``RunRecorder`` feeds it from a
session's events (engine/runs/recorder.py), engine/runs/schema.py opens and migrates it.
Pure Python + sqlite3: no NumPy, no Textual.
"""

from engine.runs.recorder import RunRecorder, machine_summary
from engine.runs.schema import SCHEMA_VERSION, StoreError, UnknownRunError
from engine.runs.store import SORT_COLUMNS, STATUSES, Run, RunStore, RunSummary, default_path

__all__ = ["SCHEMA_VERSION", "SORT_COLUMNS", "STATUSES", "Run", "RunRecorder", "RunStore", "RunSummary", "StoreError",
           "UnknownRunError", "default_path", "machine_summary"]
