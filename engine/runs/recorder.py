"""``RunRecorder``: turns a session's events into the run store's rows, the same for every
caller (``termnist train``, the app's worker, a sweep worker).

    recorder = RunRecorder.open(dataset=ds, source="cli", on_error=note)   # never raises
    with recorder:                       # an exception ends the run as failed/interrupted
        for event in session.run():
            recorder.feed(event)         # RunStarted creates the row: recorder.run_id
    recorder.set_checkpoint(path)

Recording never stops training: an error of the store is reported once through
``on_error`` and recording stops.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.runs.schema import StoreError
from engine.runs.store import RunStore

HEARTBEAT_SECONDS = 30.0


@functools.lru_cache(maxsize=1)
def termnist_version() -> str:
    try:
        from importlib.metadata import version

        return version("termnist")
    except Exception:  # noqa: BLE001 - a source tree without metadata
        return "0+unknown"


def machine_summary(threads: int | None = None) -> dict[str, Any]:
    """CPU model, cores, BLAS library and its threads (threadpoolctl, when installed)."""
    import platform

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), cpu)
    except OSError:
        pass
    info: dict[str, Any] = {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform(),
                            "python": platform.python_version(), "blas": None, "threads": threads}
    try:
        from threadpoolctl import threadpool_info

        blas = [d for d in threadpool_info() if d.get("user_api") == "blas"]
        if blas:
            info["blas"] = f"{blas[0].get('internal_api')} {blas[0].get('version') or ''}".strip()
            if threads is None:
                info["threads"] = blas[0].get("num_threads")
    except Exception:  # noqa: BLE001 - optional detail, never worth failing a run
        pass
    return info


class RunRecorder:
    """Records one run (at a time) from its events. ``store=None``: records nothing."""

    def __init__(self, store: RunStore | None, *, source: str = "", dataset_name: str = "",
                 dataset_title: str = "", data_dir: str | None = None, sample: bool = False,
                 threads: int | None = None, on_error: Callable[[str], None] | None = None,
                 sweep: str | None = None, trial: int | None = None) -> None:
        self.store = store
        self.source = source
        self.dataset_name = dataset_name
        self.dataset_title = dataset_title
        self.data_dir = data_dir
        self.sample = sample
        self.threads = threads
        self.on_error = on_error
        self.sweep = sweep                     # a sweep's trial: the study name and trial number
        self.trial = trial
        self.run_id: str | None = None
        self.error: str | None = None
        self._status: str | None = None        # set by Stopped / Diverged / Failed before Finished
        self._message: str | None = None
        self._last_beat = 0.0
        # the slow parts of a run's row (importlib.metadata, threadpoolctl: tens of ms the
        # first time) are read now, before training, not inside the first epoch
        self._version = termnist_version() if store is not None else ""
        self._machine = machine_summary(threads) if store is not None else {}

    @classmethod
    def open(cls, path: str | os.PathLike[str] | None = None, *, dataset: Any = None,
             on_error: Callable[[str], None] | None = None, retry_seconds: float = 10.0,
             **kwargs: Any) -> RunRecorder:
        """A recorder on the store at ``path`` (default: the user's). If the store cannot be
        opened, ``on_error`` gets one line naming the file and why, and the recorder records
        nothing. ``dataset``: an engine Dataset, for its name, source and is_sample."""
        if dataset is not None:
            kwargs.setdefault("dataset_name", dataset.name)
            kwargs.setdefault("dataset_title", dataset.title)
            kwargs.setdefault("sample", bool(dataset.is_sample))
            if not dataset.is_sample:
                kwargs.setdefault("data_dir", str(dataset.source))
        try:
            store: RunStore | None = RunStore(path, retry_seconds=retry_seconds)
            error = None
        except StoreError as exc:
            store, error = None, f"{exc}; not recording this run"
        rec = cls(store, on_error=on_error, **kwargs)
        if error:
            rec._fail(error)
        return rec

    @property
    def recording(self) -> bool:
        return self.store is not None

    def _fail(self, message: str) -> None:
        self.error = message
        if self.store is not None:
            self.store.close()
            self.store = None
        if self.on_error is not None:
            self.on_error(message)

    def _do(self, fn: Callable[[RunStore], Any]) -> Any:
        if self.store is None:
            return None
        try:
            return fn(self.store)
        except StoreError as exc:
            self._fail(f"{exc}; run history stops recording this run")
        except Exception as exc:  # noqa: BLE001 - recording must never stop training
            self._fail(f"run store {self.store.path}: {type(exc).__name__}: {exc}; not recording this run")
        return None

    def feed(self, event: Any) -> None:
        """Record one engine event (RunStarted, EpochEnded, Stopped, Diverged, Finished,
        Failed, HyperparamsChanged (or a like event with field/old/new); others just heartbeat)."""
        kind = type(event).__name__
        if kind == "RunStarted":
            self._start(event)
        elif self.run_id is None:
            return
        elif kind == "EpochEnded":
            run_id = self.run_id
            self._do(lambda s: s.add_epoch(
                run_id, event.epoch, train_loss=event.train_loss, train_acc=event.train_acc,
                val_loss=event.val_loss, val_acc=event.val_acc, seconds=event.seconds, lr=event.lr,
                samples_per_s=event.samples_per_s, global_step=event.global_step))
            self._last_beat = time.monotonic()
        elif kind == "Stopped":
            self._status = "stopped"
        elif kind == "Diverged":
            self._status, self._message = "diverged", event.message
        elif kind == "Finished":
            self._end(event.reason if event.reason in ("completed", "stopped", "diverged") else "completed",
                      test_loss=event.test_loss, test_acc=event.test_acc, seconds=event.seconds)
        elif kind == "Failed":
            self._end("failed", message=event.message)
        elif kind == "HyperparamsChanged" and hasattr(event, "step_in_epoch"):
            # the position as the epoch log says it ("epoch 3 step 120"): where a replay applies it
            self.record_change(event.epoch, event.step_in_epoch, event.field, event.old, event.new)
        elif hasattr(event, "field") and hasattr(event, "new"):
            self.record_change(getattr(event, "epoch", 0), getattr(event, "step", 0), event.field,
                               getattr(event, "old", None), event.new)
        elif time.monotonic() - self._last_beat > HEARTBEAT_SECONDS:
            self._last_beat = time.monotonic()
            run_id = self.run_id
            self._do(lambda s: s.heartbeat(run_id))

    def _start(self, e: Any) -> None:
        if self.run_id is not None:     # a previous run of this recorder never ended
            self._end("interrupted")
        self._status = self._message = None
        self._started = time.time()
        self.run_id = self._do(lambda s: s.create_run(
            settings=dict(e.config), dataset=self.dataset_name or str(e.config.get("dataset", "")),
            dataset_title=self.dataset_title or e.dataset, data_dir=self.data_dir, sample=self.sample,
            source=self.source, version=self._version, machine=self._machine, sweep=self.sweep, trial=self.trial))
        self._last_beat = time.monotonic()

    def record_change(self, epoch: int, step: int, field: str, old: Any, new: Any) -> None:
        """A live change of a setting during the current run."""
        if self.run_id is not None:
            run_id = self.run_id
            self._do(lambda s: s.record_change(run_id, epoch, step, field, old, new))

    def set_checkpoint(self, path: str | os.PathLike[str] | None, run_id: str | None = None) -> None:
        """The checkpoint file of the run (the current one, or the last one recorded)."""
        rid = run_id or self.run_id or self._last_id
        if rid is not None:
            self._do(lambda s: s.set_checkpoint(rid, None if path is None else str(Path(path).resolve())))

    _last_id: str | None = None
    _started = 0.0

    def _end(self, status: str, **figures: Any) -> None:
        run_id, self.run_id = self.run_id, None
        self._last_id = run_id
        if run_id is None:
            return
        if status == "completed" and self._status:
            status = self._status
        figures.setdefault("message", self._message)
        if figures.get("seconds") is None:
            figures["seconds"] = time.time() - self._started
        self._do(lambda s: s.finish_run(run_id, status, **figures))

    def close(self, exc: BaseException | None = None) -> None:
        """End a run still open: "interrupted" after KeyboardInterrupt/SystemExit, "failed"
        (with the exception as message) after another exception, else "stopped"."""
        if self.run_id is not None:
            if exc is None:
                self._end("stopped")
            elif isinstance(exc, (KeyboardInterrupt, SystemExit)):
                self._end("interrupted", message=type(exc).__name__)
            else:
                self._end("failed", message=f"{type(exc).__name__}: {exc}")

    def __enter__(self) -> RunRecorder:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self.close(exc)

    @property
    def last_run_id(self) -> str | None:
        """The run being recorded, else the last one recorded."""
        return self.run_id or self._last_id
