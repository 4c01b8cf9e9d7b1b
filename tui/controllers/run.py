"""The run in progress and the process it trains in (no Textual).

``RunController`` owns the training process (engine.trainer_process.TrainerProcess: the app
trains in a child process so the UI thread never holds the training thread's GIL -- see the
README's Performance section), the runner of the run in progress (tui.runner), and the run's
state (paused, finished). The app calls ``begin`` on the UI thread, ``run`` in its training
worker thread and ``ended`` when that worker is over.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from tui.runner import LogLine, TrainingRunner

log = logging.getLogger(__name__)

#: One BLAS thread beside the UI on 2 cores beats two (README, "BLAS threads").
TRAINER_BLAS_THREADS = 1


class RunController:
    """Starts, steers and ends runs. ``mode``: "process" (a child process, the default) or
    "thread" (a thread of this process: the fallback, and tests that patch the engine)."""

    def __init__(self, *, mode: str = "process", progress_every: int = 20,
                 preview_limit: int = 10_000, blas_threads: int = TRAINER_BLAS_THREADS,
                 record: bool = True) -> None:
        if mode not in ("process", "thread"):
            raise ValueError(f"trainer must be 'process' or 'thread', not {mode!r}")
        self.mode = mode
        self.progress_every = progress_every
        self.preview_limit = preview_limit
        self.blas_threads = blas_threads
        self.record = record                   # every run goes into the run history (engine.runs)
        self.trainer_process: Any = None       # engine.trainer_process.TrainerProcess
        self.runner: TrainingRunner | None = None
        self.config: Any = None                # the TrainConfig of the run in progress (as asked)
        self._fitted: tuple[Any, Any] | None = None   # (dataset, config fitted to it) of this run
        self.paused = False
        self.finished = False                  # the run in progress reported its end
        self.run_count = 0

    # -- state ----------------------------------------------------------------------------
    @property
    def training(self) -> bool:
        """A run is in progress: from ``begin`` until ``ended``."""
        return self.runner is not None

    @property
    def session(self) -> Any:
        """The running session (None before it opened, and when not training)."""
        return self.runner.session if self.runner is not None else None

    @property
    def in_progress(self) -> bool:
        """Training, and the run has not reported its end yet (its worker may still be
        finishing up: a run that completed must not be kept as interrupted)."""
        return self.training and not self.finished

    # -- the training process ------------------------------------------------------------
    def process(self) -> Any:
        if self.trainer_process is None:
            from engine.trainer_process import TrainerProcess

            self.trainer_process = TrainerProcess(blas_threads=self.blas_threads)
        return self.trainer_process

    def prepare(self, dataset: Any) -> None:
        """Worker: start the training process and hand it ``dataset`` ahead of F5 (~0.3 s for
        MNIST). A failure is only logged: the run tries again and says why if it falls back."""
        if self.mode != "process" or self.training:
            return
        try:
            self.process().prepare(dataset)
        except Exception as exc:  # noqa: BLE001
            log.warning("training process not prepared: %s", exc)

    def close(self) -> None:
        proc, self.trainer_process = self.trainer_process, None
        if proc is not None:
            try:
                proc.close(timeout=1.0)
            except Exception as exc:  # noqa: BLE001 - closing must go on
                log.warning("closing the training process: %s", exc)

    # -- a run -----------------------------------------------------------------------------
    def begin(self, post: Callable[[Any], None], config: Any, dataset: Any | None) -> tuple[TrainingRunner, Any]:
        """UI thread: a new run. When the training process is idle and holds ``dataset``, it
        is told to start now (one small message, no waiting), so training runs while the
        screen switches panels; that early session is returned to hand to ``run``."""
        self.paused = False
        self.finished = False
        self.config = config
        self.run_count += 1
        self.runner = runner = TrainingRunner(post=post, preview_limit=self.preview_limit)
        self._fitted = None
        early = None
        if self.mode == "process" and self.trainer_process is not None and dataset is not None:
            early = self.trainer_process.try_open_session(self.fit(runner, config, dataset), dataset,
                                                          progress_every=self.progress_every)
        return runner, early

    def fit(self, runner: TrainingRunner, config: Any, dataset: Any) -> Any:
        """``config`` with a validation size that fits ``dataset`` (engine's rule). The form
        keeps the user's own value: the fitted one is for this run only, and said once."""
        if self._fitted is not None and self._fitted[0] is dataset:
            return self._fitted[1]
        from engine.datasets import fit_val_size         # the engine's one rule

        fitted = fit_val_size(config.val_size, len(dataset.y_train))
        if fitted != config.val_size:
            runner.post(LogLine(f"validation size {config.val_size:,} leaves no training data in "
                                f"{dataset.title} ({len(dataset.y_train):,} images): this run validates "
                                f"on {fitted:,}", "warning"))
            config = config.replace(val_size=fitted)
        self._fitted = (dataset, config)
        return config

    def run(self, runner: TrainingRunner, config: Any, resume: Any, early: Any,
            get_dataset: Callable[[str], Any], on_dataset: Callable[[Any], object],
            cancelled: Callable[[], bool]) -> None:
        """Worker thread: open the session (loading the data if needed) and run it to its end."""
        from threadpoolctl import threadpool_limits

        def open_session() -> tuple[Any, Any, Any]:
            ds = get_dataset(config.dataset)
            on_dataset(ds)                               # the preview shows what is trained on
            run_config = config if resume is not None else self.fit(runner, config, ds)
            session = self._open(runner, run_config, resume, early, ds)
            if self.record:
                from engine.runs import RunRecorder

                runner.recorder = RunRecorder.open(
                    dataset=ds, source="app", threads=self.blas_threads,
                    on_error=lambda text: runner.post(LogLine(text, "warning")))
                runner.keep_checkpoint = keep_checkpoint
            return session, ds.x_test, ds.y_test

        runner.cancelled = cancelled
        with threadpool_limits(limits=self.blas_threads):   # a fallback run; predictions
            runner.run(open_session)

    def _open(self, runner: TrainingRunner, config: Any, resume: Any, early: Any, ds: Any) -> Any:
        from engine.trainer_process import TrainerProcessError
        from engine.training import TrainingSession

        if early is not None and early.dataset is not ds:     # the data changed meanwhile
            early.stop()
            try:
                for _ in early.run():     # to its end, so the child is free for this run
                    pass
            except TrainerProcessError:
                pass
            early = None
        if self.mode == "process":
            try:
                if early is not None:
                    early.wait_opened()
                    return early
                return self.process().open_session(config, ds, progress_every=self.progress_every,
                                                   resume=resume)
            except TrainerProcessError as exc:
                runner.post(LogLine(f"training in the app's own process instead of a separate one "
                                    f"(slower): {exc}", "warning"))
        return TrainingSession(config, ds, progress_every=self.progress_every, resume=resume)

    def ended(self) -> Any:
        """UI thread, the training worker is over: the run's session (what Save writes until
        the next run or load), or None when it never opened."""
        runner, self.runner = self.runner, None
        self.paused = False
        self._fitted = None
        if runner is None:
            return None
        session = runner.session
        # Textual's executor thread keeps its last worker (and so this runner) in its context:
        # without this, finished runs' sessions (weights, optimizer state) would stay in memory.
        runner.session = None
        return session

    def pause(self) -> bool:
        """False when there is nothing to pause (no session yet, paused, or the run has ended:
        a late key must not log "pausing..." after "stopped")."""
        if self.session is None or self.paused or self.finished:
            return False
        self.runner.pause()  # type: ignore[union-attr]
        self.paused = True
        return True

    def resume(self) -> bool:
        if self.runner is None or not self.paused:
            return False
        self.runner.resume()
        self.paused = False
        return True

    def stop(self) -> bool:
        if self.runner is None or self.finished:
            return False
        self.runner.stop()
        return True

    # -- live changes (the session validates: ConfigError, and nothing changes) -------------
    @property
    def live_session(self) -> Any:
        """The session a live change or a single step goes to (None: no run to change)."""
        session = self.session
        return session if session is not None and not self.finished and hasattr(session, "change") else None

    def live_config(self) -> Any:
        """The run's settings once the changes asked so far take effect (None: no run)."""
        session = self.live_session
        return session.live_config if session is not None else None

    def change(self, **values: Any) -> Any:
        """Ask the run to change ``values`` at its next step boundary; returns the settings it
        will have. ConfigError when refused (the run goes on unchanged); None: no run."""
        session = self.live_session
        return session.change(**values) if session is not None else None

    def step_once(self) -> bool:
        session = self.live_session
        return bool(self.paused and session is not None and session.step_once())

    def epoch_once(self) -> bool:
        session = self.live_session
        return bool(self.paused and session is not None and session.epoch_once())

    def abandon(self) -> None:
        """The app is closing: end the run without the final preview."""
        if self.runner is not None:
            self.runner.abandon()


def keep_checkpoint(session: Any, recorder: Any) -> None:
    """Worker, at a recorded run's end: its last completed epoch (what training on continues
    from exactly) in ``<state dir>/checkpoints/<run id>.npz``, recorded with the run: the Runs
    panel loads it and trains on from it, and deleting the run deletes it. Nothing when no
    epoch completed; a failure is a log line, never the run's."""
    run_id = recorder.last_run_id
    if run_id is None or not recorder.recording or int(getattr(session, "epochs_done", 0) or 0) < 1:
        return
    try:
        from engine.checkpoint import save_checkpoint
        from engine.recovery import state_dir

        directory = state_dir() / "checkpoints"
        directory.mkdir(parents=True, exist_ok=True)
        path = save_checkpoint(directory / f"{run_id}.npz", session.checkpoint(last_completed_epoch=True))
    except Exception as exc:  # noqa: BLE001 - a full disk must not fail the run
        log.warning("run %s: checkpoint not kept: %s", run_id, exc)
        return
    recorder.set_checkpoint(path, run_id=run_id)
