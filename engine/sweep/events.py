"""What a sweep tells its caller (the CLI, the app's Sweep panel): frozen dataclasses, in order

    SweepStarted, then per trial TrialStarted, TrialEpoch* and TrialFinished (trials overlap
    when several workers run), then exactly one SweepDone.

They are safe to hand to another thread (``app.call_from_thread``). Trial states are Optuna's
names in lower case: "running", "complete", "pruned", "failed"; ``reason`` says more
("diverged", "worker lost: ...", "interrupted", "pruned at epoch 2", an error line).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SweepEvent:
    """Base class of sweep events."""


@dataclass(frozen=True)
class SweepStarted(SweepEvent):
    name: str                        # the study name (--name, or generated)
    storage: str                     # where the study is kept (a journal file path or a storage URL)
    space: tuple[dict[str, Any], ...]   # ParamSpec.to_json() of each searched parameter
    base: dict[str, Any]             # the settings of everything not searched (TrainConfig.to_dict())
    epochs: int
    sampler: str
    pruner: str
    workers: int                     # parallel trials (local processes, or the cluster's slots)
    trials: int | None               # how many trials this sweep aims for in all (None: until the time budget)
    time_budget: float | None
    resumed: bool = False
    done_before: int = 0             # trials finished by earlier sessions of this study (--resume)
    cluster: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"event": "start", "study": self.name, "storage": self.storage, "space": list(self.space),
                "base": self.base, "epochs": self.epochs, "sampler": self.sampler, "pruner": self.pruner,
                "workers": self.workers, "trials": self.trials, "time_budget": self.time_budget,
                "resumed": self.resumed, "done_before": self.done_before, "cluster": self.cluster}


@dataclass(frozen=True)
class TrialStarted(SweepEvent):
    number: int                      # Optuna's trial number (unique in the study)
    params: dict[str, Any]           # as Optuna stores them (hidden as "128-64")
    worker: str                      # "local:PID" or the Dask worker's address


@dataclass(frozen=True)
class TrialEpoch(SweepEvent):
    number: int
    epoch: int                       # 1-based
    val_acc: float
    run_id: str | None = None        # the trial's run in the run store (None when not recorded)


@dataclass(frozen=True)
class TrialFinished(SweepEvent):
    number: int
    state: str                       # "complete" | "pruned" | "failed"
    params: dict[str, Any]
    value: float | None              # val acc told to Optuna (complete), or the last reported one
    epochs: int                      # epochs completed
    run_id: str | None
    worker: str
    seconds: float
    reason: str = ""                 # "", "diverged", "pruned at epoch N", "interrupted", "worker lost: ..."
    val_accs: tuple[float, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"event": "trial", "number": self.number, "state": self.state, "params": self.params,
                "value": self.value, "epochs": self.epochs, "run_id": self.run_id, "worker": self.worker,
                "seconds": round(self.seconds, 3), "reason": self.reason}


@dataclass(frozen=True)
class SweepDone(SweepEvent):
    name: str
    best_params: dict[str, Any] | None
    best_value: float | None
    best_run_id: str | None
    best_number: int | None
    n_complete: int                  # counts over the whole study (earlier sessions included)
    n_pruned: int
    n_failed: int
    seconds: float                   # this session's wall time
    importances: dict[str, float] = field(default_factory=dict)   # Optuna's (>= 2 complete trials)
    interrupted: bool = False        # Ctrl+C / stop(): resumable with --resume NAME
    error: str | None = None         # one line when the sweep ended early (cluster lost, storage failed)

    def to_json(self) -> dict[str, Any]:
        return {"event": "done", "study": self.name, "best_params": self.best_params, "best_value": self.best_value,
                "best_run_id": self.best_run_id, "best_number": self.best_number, "n_complete": self.n_complete,
                "n_pruned": self.n_pruned, "n_failed": self.n_failed, "seconds": round(self.seconds, 3),
                "importances": self.importances, "interrupted": self.interrupted, "error": self.error}


# -- between the sweep and its workers (local processes or Dask tasks) -------------------------------
@dataclass(frozen=True)
class TrialJob:
    """Everything a worker needs to train one trial (small; the dataset is found by the worker)."""

    sweep: str
    number: int
    config: dict[str, Any]           # TrainConfig.to_dict() with the trial's values
    dataset: str                     # dataset name
    data_dir: str | None             # --data (the worker applies the same search rules)
    progress_every: int = 20
    checkpoint: str | None = None    # where to keep the trial's last completed epoch (.npz), or None


@dataclass(frozen=True)
class WorkerEvent:
    """An engine event of a trial (RunStarted, EpochEnded, Diverged, Stopped, Finished, Failed)."""

    number: int
    event: Any


@dataclass(frozen=True)
class WorkerEnd:
    """The trial's task returned; ``error``: one line when it raised."""

    number: int
    error: str | None = None


@dataclass(frozen=True)
class WorkerHello:
    """Which worker picked the trial up (a Dask worker's address; known only once it starts)."""

    number: int
    worker: str


@dataclass(frozen=True)
class WorkerLost:
    """The trial's worker died (killed, crashed, cluster lost); ``reason``: one line."""

    number: int
    reason: str


__all__ = ["SweepDone", "SweepEvent", "SweepStarted", "TrialEpoch", "TrialFinished", "TrialJob", "TrialStarted",
           "WorkerEnd", "WorkerEvent", "WorkerHello", "WorkerLost"]
