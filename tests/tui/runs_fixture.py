"""A deterministic run store for the Runs panel's tests: fixed ids, dates, settings, epochs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine.config import TrainConfig
from engine.runs import RunStore

T0 = 1_780_000_000.0          # 2026-05-28 20:26:40 UTC: every run starts an hour after the last


def settings(**changes: Any) -> dict[str, Any]:
    base = TrainConfig(hidden=(64,), lr=0.1, epochs=3, batch_size=64, val_size=1000).to_dict()
    base.update(changes)
    return json.loads(json.dumps(base))


RUNS: tuple[dict[str, Any], ...] = (
    {"id": "6a1b7c000001", "settings": settings(), "status": "completed", "test_acc": 0.912, "best": 0.925,
     "seconds": 13.4, "curve": (0.62, 0.41, 0.33)},
    {"id": "6a1b7c000002", "settings": settings(lr=0.05), "status": "completed", "test_acc": 0.897, "best": 0.905,
     "seconds": 14.1, "curve": (0.71, 0.52, 0.44), "note": "half the lr"},
    {"id": "6a1b7c000003", "settings": settings(lr=0.05, batch_size=32), "status": "stopped", "test_acc": 0.884,
     "best": 0.890, "seconds": 9.0, "curve": (0.66, 0.48), "star": True},
    {"id": "6a1b7c000004", "settings": settings(optimizer="adam", lr=0.001, hidden=[128, 64]),
     "status": "diverged", "test_acc": None, "best": 0.61, "seconds": 3.2, "curve": (1.9,)},
    {"id": "6a1b7c000005", "settings": settings(epochs=5), "status": "completed", "test_acc": 0.931,
     "best": 0.940, "seconds": 25.0, "curve": (0.6, 0.4, 0.3, 0.26, 0.24), "dataset": "fashion-mnist",
     "sample": False},
)


def fill(path: Path, runs: tuple[dict[str, Any], ...] = RUNS, checkpoints: dict[str, str] | None = None) -> None:
    with RunStore(path) as store:
        statements: list[tuple[str, Any]] = []
        for i, r in enumerate(runs):
            started = T0 + i * 3600
            ckpt = (checkpoints or {}).get(r["id"])
            dataset = r.get("dataset", "mnist")
            statements.append((
                "INSERT INTO runs (id, started, ended, status, source, settings, dataset, dataset_title, sample,"
                " epochs_done, best_val_acc, test_acc, seconds, checkpoint, version, machine, host, pid,"
                " heartbeat, note, star) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (r["id"], started, started + r["seconds"], r["status"], "app", json.dumps(r["settings"]), dataset,
                 dataset.upper(), int(r.get("sample", True)), len(r["curve"]), r["best"], r["test_acc"],
                 r["seconds"], ckpt, "test", "{}", "testhost", None, started, r.get("note", ""),
                 int(r.get("star", False)))))
            for e, loss in enumerate(r["curve"], start=1):
                acc = r["best"] - 0.02 * (len(r["curve"]) - e)
                statements.append((
                    "INSERT INTO epochs (run_id, epoch, train_loss, train_acc, val_loss, val_acc, seconds, lr,"
                    " samples_per_s, global_step) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (r["id"], e, loss + 0.05, acc - 0.01, loss, acc, 4.0, r["settings"]["lr"], 2000.0, e * 141)))
        store._write(statements)  # noqa: SLF001 - fixed ids and dates
