"""One trial, on a worker: train with TrainingSession, send its events, obey stop verdicts.

Shared by the local process pool (engine.sweep.local) and Dask tasks (engine.sweep.cluster):
they differ only in how ``send``, ``verdict`` and ``stop_requested`` reach the sweep.
After every epoch but the last the worker *waits* for the sweep's verdict (go on, or stop:
pruned) -- the sweep owns the study and its pruner, and a pruned trial never trains past the
epoch it was pruned at, on one machine or on a cluster.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from engine.sweep.events import TrialJob

#: Engine events a worker forwards (BatchProgress stays on the worker).
FORWARDED = ("RunStarted", "EpochEnded", "Diverged", "Stopped", "Finished", "Failed")


@functools.lru_cache(maxsize=2)
def load_cached(name: str, data_dir: str | None) -> Any:
    """The dataset, loaded once per worker process (the same search rules as everywhere)."""
    from engine.datasets import load_dataset

    return load_dataset(name, data_dir=data_dir)


def train_trial(job: TrialJob, dataset: Any, send: Callable[[Any], None], verdict: Callable[[], bool],
                stop_requested: Callable[[], bool]) -> None:
    """Train ``job`` on ``dataset`` with one BLAS thread, calling ``send(event)`` for every
    forwarded engine event. ``verdict()`` is asked after every epoch but the last (False:
    stop, the trial is pruned); ``stop_requested()`` is polled at every progress event
    (True: stop after this batch: Ctrl+C, the sweep ending)."""
    from threadpoolctl import threadpool_limits

    from engine import events as ev
    from engine.errors import TermnistError
    from engine.training import TrainConfig, TrainingSession

    try:
        config = TrainConfig.from_dict(job.config)
        session = TrainingSession(config, dataset, progress_every=job.progress_every)
    except (TermnistError, MemoryError) as exc:
        send(ev.Failed(message=str(exc) or type(exc).__name__))
        return
    with threadpool_limits(limits=1, user_api="blas"):
        for event in session.run():
            if isinstance(event, ev.BatchProgress):
                if not session.stop_requested and stop_requested():
                    session.stop()
                continue
            if isinstance(event, ev.Finished) and job.checkpoint:
                keep_checkpoint(session, job.checkpoint)      # before the sweep hears of the end
            if type(event).__name__ in FORWARDED:
                send(event)
            if isinstance(event, ev.EpochEnded) and event.epoch < event.epochs and not session.stop_requested \
                    and not verdict():
                session.stop()


def keep_checkpoint(session: Any, path: str) -> None:
    """The trial's last completed epoch in ``path`` (atomic; the app's Sweep panel loads the best
    trial's model from it through the run store). Nothing when no epoch completed; a failure
    (a full disk) costs the file, never the trial."""
    if int(getattr(session, "epochs_done", 0) or 0) < 1:
        return
    try:
        from pathlib import Path

        from engine.checkpoint import save_checkpoint

        Path(path).parent.mkdir(parents=True, exist_ok=True)
        save_checkpoint(path, session.checkpoint(last_completed_epoch=True))
    except Exception:  # noqa: BLE001 - the model file is a bonus; the trial's result stands
        pass
