"""``run_sweep(spec, on_event)``: the sweep loop. It owns the Optuna study (ask/tell), hands
trials to a backend (local processes, or a Dask cluster), receives each trial's engine events,
records every trial as a run in the run store (tagged with the sweep and the trial number),
reports val acc to Optuna at every epoch end and decides pruning itself (``trial.report`` /
``should_prune`` here, then a verdict to the worker), so pruning works the same everywhere.

    spec = SweepSpec(name="lr-bs", space=parse_space(["lr=0.001:0.5:log", "batch_size=32,64"]),
                     base=TrainConfig(...), epochs=3, trials=16)
    done = run_sweep(spec, on_event=print, stop=threading.Event())   # blocking; call from a thread

Outcomes told to Optuna: completed -> COMPLETE with the last epoch's val acc; pruned ->
PRUNED; diverged (NaN/exploding loss) -> PRUNED with reason "diverged" (TPE then treats its
region as bad, which a FAIL would not tell it) and run-store status "diverged"; an error, or
a worker killed mid-trial -> FAIL (not retried; the sweep goes on with a new worker);
Ctrl+C / ``stop`` -> the running trials stop after their current batch and are FAIL with
reason "interrupted"; their parameters are enqueued, so ``--resume`` runs them again first.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from engine.sweep.events import (SweepDone, SweepEvent, SweepStarted, TrialEpoch, TrialFinished, TrialJob,
                                 TrialStarted, WorkerEnd, WorkerEvent, WorkerHello, WorkerLost)
from engine.sweep.space import ParamSpec, config_value
from engine.sweep.study import (SweepError, counts, create_study, importances, load_study, make_pruner,
                                make_sampler, open_storage)

DEFAULT_TRIALS = 16
STOP_GRACE_SECONDS = 30.0      # after Ctrl+C, how long running trials get to stop before being abandoned


@dataclass(frozen=True)
class SweepSpec:
    """Everything a sweep needs. ``base``: a TrainConfig, the settings of all that is not searched
    (its ``epochs`` is replaced by ``epochs``). ``trials``/``time_budget``: stop asking for new
    trials after this many finished trials in the study (interrupted ones do not count) / this
    many seconds of this session (running trials finish); neither: 16 trials (resume: the stored budget).
    ``storage``: None for the default journal file. ``cluster``: "tcp://HOST:PORT" of a Dask
    scheduler, else local worker processes. ``resume``: continue the study ``name`` (its stored
    settings win over ``space``/``base``/``epochs``/``sampler``/``pruner``/``seed``)."""

    name: str
    space: tuple[ParamSpec, ...]
    base: Any                                  # engine.config.TrainConfig
    epochs: int = 3
    trials: int | None = None                  # None with no time budget: DEFAULT_TRIALS (resume: the stored)
    time_budget: float | None = None
    sampler: str = "tpe"
    pruner: str = "median"
    workers: int | None = None                 # trials at once: local default 1; cluster default all its slots
    seed: int = 0
    data_dir: str | None = None
    storage: str | None = None
    checkpoints: str | None = None             # a directory: keep each trial's model there (local workers only)
    cluster: str | None = None
    resume: bool = False
    record: bool = True                        # record each trial in the run store
    enqueue: tuple[dict[str, Any], ...] = ()   # parameter sets to try first (e.g. the form's settings)

    def to_json(self) -> dict[str, Any]:
        """The settings kept in the study (what --resume restores)."""
        return {"space": [p.to_json() for p in self.space], "base": self.base.to_dict(), "epochs": self.epochs,
                "sampler": self.sampler, "pruner": self.pruner, "seed": self.seed, "trials": self.trials,
                "time_budget": self.time_budget, "data_dir": self.data_dir}

    def restored(self, stored: dict[str, Any]) -> SweepSpec:
        """This spec with the stored settings of the study it resumes. The budget (trials,
        time budget), workers, data, cluster given now win when given."""
        from engine.config import TrainConfig

        return replace(self, space=tuple(ParamSpec.from_json(p) for p in stored["space"]),
                       base=TrainConfig.from_dict(stored["base"]), epochs=int(stored["epochs"]),
                       sampler=stored["sampler"], pruner=stored["pruner"], seed=int(stored["seed"]),
                       trials=self.trials if self.trials is not None or self.time_budget is not None
                       else stored.get("trials"),
                       time_budget=self.time_budget if self.trials is not None or self.time_budget is not None
                       else stored.get("time_budget"),
                       data_dir=self.data_dir if self.data_dir is not None else stored.get("data_dir"))

    def config_for(self, params: dict[str, Any]) -> Any:
        """The TrainConfig of a trial with these (Optuna) parameter values."""
        return self.base.replace(epochs=self.epochs, **{k: config_value(k, v) for k, v in params.items()})


@dataclass
class _Running:
    trial: Any                                  # optuna.Trial
    params: dict[str, Any]
    worker: str
    started: float
    recorder: Any = None
    epochs: int = 0
    val_accs: list[float] = field(default_factory=list)
    outcome: str = ""                           # "", "pruned", "diverged", "failed", "interrupted"
    reason: str = ""
    finished_event: bool = False
    checkpoint: str | None = None               # the trial's model file (SweepSpec.checkpoints)


def resume_spec(name: str, storage: str | None = None, **given: Any) -> SweepSpec:
    """The spec that continues the sweep ``name`` with its stored settings (``given``: workers,
    data_dir, checkpoints, a new budget ...); what ``--resume NAME`` runs. SweepError when unknown."""
    from engine.config import TrainConfig

    obj, where = open_storage(storage)
    _, stored = load_study(name, obj, where)
    try:
        return SweepSpec(name=name, space=(), base=TrainConfig(), storage=storage, resume=True,
                         **given).restored(stored)
    except (KeyError, TypeError, ValueError) as exc:
        raise SweepError(f"sweep {name} in {where}: its stored settings are damaged ({exc})") from None


def run_sweep(spec: SweepSpec, on_event: Callable[[SweepEvent], None] | None = None, *,
              stop: threading.Event | None = None, dataset: Any = None, backend: Any = None,
              on_note: Callable[[str], None] | None = None) -> SweepDone:
    """Run the sweep to its budget; blocking (the app calls it from a thread worker). Every
    event goes to ``on_event`` (from this thread). ``stop.set()`` (another thread, a signal
    handler) ends it early: running trials stop, the study stays resumable, and the returned
    SweepDone has ``interrupted=True``. Raises SweepError before the sweep starts (storage,
    name, cluster unreachable); a failure after that (cluster lost) ends it with
    ``SweepDone.error`` set, the finished trials kept. ``dataset``: the engine Dataset the
    caller loaded (for the run store's sample flag and, on a cluster, to ship to workers that
    cannot find it; the local workers load their own with the same rules). ``on_note``: one-line
    notes (run store unusable, orphaned trials). ``backend``: another backend (tests)."""
    import optuna

    emit = on_event or (lambda e: None)
    note = on_note or (lambda s: None)
    stop = stop or threading.Event()
    storage_obj, where = open_storage(spec.storage)
    if spec.resume:
        study, stored = load_study(spec.name, storage_obj, where)
        spec = spec.restored(stored)
    if spec.trials is None and spec.time_budget is None:
        spec = replace(spec, trials=DEFAULT_TRIALS)
    sampler = make_sampler(spec.sampler, spec.seed, spec.space)
    pruner = make_pruner(spec.pruner, spec.epochs)
    if spec.resume:
        study = optuna.load_study(study_name=spec.name, storage=storage_obj, sampler=sampler, pruner=pruner)
        _fail_orphans(study, note)
    else:
        study = create_study(spec.name, storage_obj, spec.to_json(), sampler, pruner)
    for params in spec.enqueue:
        study.enqueue_trial(params, skip_if_exists=True)
    distributions = {p.name: p.distribution() for p in spec.space}
    target = spec.trials
    if spec.sampler == "grid":
        size = 1
        for p in spec.space:
            size *= len(p.grid_values())
        target = size if target is None else min(target, size)

    if backend is None:
        if spec.cluster:
            from engine.sweep.cluster import DaskBackend

            backend = DaskBackend(spec.cluster, dataset_name=spec.base.dataset, data_dir=spec.data_dir,
                                  dataset=dataset, on_note=note)
            if spec.workers is not None:
                backend.slots = min(backend.slots, spec.workers)
        else:
            from engine.sweep.local import LocalPool

            backend = LocalPool(spec.workers or 1)
    store = _open_store(spec, note)
    before = counts(study)
    done_before = before["complete"] + before["pruned"] + before["failed"]
    emit(SweepStarted(name=spec.name, storage=where, space=tuple(p.to_json() for p in spec.space),
                      base=spec.base.replace(epochs=spec.epochs).to_dict(), epochs=spec.epochs,
                      sampler=spec.sampler, pruner=spec.pruner, workers=backend.slots, trials=target,
                      time_budget=spec.time_budget, resumed=spec.resume, done_before=done_before,
                      cluster=spec.cluster))
    t0 = time.monotonic()
    running: dict[int, _Running] = {}
    finished = done_before
    error: str | None = None
    interrupted = False
    stop_sent_at: float | None = None

    def budget_left() -> bool:
        if target is not None and finished + len(running) >= target:
            return False
        return not (spec.time_budget is not None and time.monotonic() - t0 >= spec.time_budget)

    def finish(number: int) -> None:
        nonlocal finished
        r = running.pop(number)
        emit(_tell(study, r, spec.epochs))
        if r.outcome != "interrupted":
            finished += 1

    try:
        while True:
            if stop.is_set() and not interrupted:
                interrupted = True
                stop_sent_at = time.monotonic()
                for number in running:
                    running[number].outcome = "interrupted"
                    running[number].reason = "interrupted"
                    backend.stop(number)
            while not interrupted and backend.free > 0 and budget_left():
                trial = study.ask(distributions)
                params = dict(trial.params)
                job = TrialJob(sweep=spec.name, number=trial.number, config=spec.config_for(params).to_dict(),
                               dataset=spec.base.dataset, data_dir=spec.data_dir,
                               checkpoint=_checkpoint_path(spec, trial.number))
                running[trial.number] = r = _Running(trial, params, "", time.monotonic(), checkpoint=job.checkpoint)
                r.worker = backend.submit(job)       # SweepError: told FAIL, interrupted, below
                trial.set_user_attr("worker", r.worker)
                emit(TrialStarted(trial.number, params, r.worker))
            if not running:
                break
            if interrupted and stop_sent_at is not None and time.monotonic() - stop_sent_at > STOP_GRACE_SECONDS:
                for number in list(running):
                    running[number].reason = "interrupted (did not stop in time)"
                    _end_record(running[number], "interrupted")
                    finish(number)
                break
            for msg in backend.poll(0.2):
                if msg.number not in running:
                    continue
                r = running[msg.number]
                if isinstance(msg, WorkerHello):
                    r.worker = msg.worker
                    r.trial.set_user_attr("worker", msg.worker)
                elif isinstance(msg, WorkerEvent):
                    _on_event(spec, store, r, msg.event, backend, emit, stop, note, dataset)
                elif isinstance(msg, WorkerEnd):
                    if msg.error and not r.outcome:
                        r.outcome, r.reason = "failed", msg.error
                    if not r.finished_event:
                        _end_record(r, "failed", r.reason or "the trial ended without a result")
                    finish(msg.number)
                elif isinstance(msg, WorkerLost):
                    if r.outcome != "interrupted":
                        r.outcome, r.reason = "failed", msg.reason
                    _end_record(r, "interrupted" if r.outcome == "interrupted" else "failed", msg.reason)
                    finish(msg.number)
    except SweepError as exc:               # the cluster lost mid-sweep, the storage failing ...
        error = str(exc)
        for number in list(running):
            running[number].outcome, running[number].reason = "interrupted", f"interrupted: {exc}"
            _end_record(running[number], "interrupted", str(exc))
            finish(number)
    finally:
        try:
            backend.close()
        except Exception:  # noqa: BLE001 - closing a lost cluster's client can raise anything
            pass
        if store is not None:
            store.close()
    return _done(spec, study, t0, interrupted, error, emit)


def _checkpoint_path(spec: SweepSpec, number: int) -> str | None:
    """Where trial ``number`` keeps its model (``spec.checkpoints``; not on a cluster, whose
    workers' files are on other machines)."""
    if not spec.checkpoints or spec.cluster:
        return None
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in spec.name)
    return os.path.join(spec.checkpoints, f"sweep-{safe}-trial{number}.npz")


def _open_store(spec: SweepSpec, note: Callable[[str], None]) -> Any:
    if not spec.record:
        return None
    from engine.runs import RunStore, StoreError

    try:
        return RunStore()
    except StoreError as exc:
        note(f"{exc}; not recording the trials in the run history")
        return None


def _fail_orphans(study: Any, note: Callable[[str], None]) -> None:
    """Trials left RUNNING by a sweep that died (killed, power cut): FAIL, interrupted, and their
    parameters enqueued again (so they are run first)."""
    from optuna.trial import TrialState

    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        try:   # a FrozenTrial has no public setter: the storage's own (stable since Optuna 2)
            study._storage.set_trial_user_attr(t._trial_id, "reason", "interrupted")
            study.tell(t.number, state=TrialState.FAIL, skip_if_finished=True)
            study.enqueue_trial(t.params)
            note(f"trial {t.number} was left running by an earlier session: marked interrupted, queued again")
        except Exception:  # noqa: BLE001 - another live session may own it; leave it alone
            pass


def _on_event(spec: SweepSpec, store: Any, r: _Running, event: Any, backend: Any,
              emit: Callable[[SweepEvent], None], stop: threading.Event, note: Callable[[str], None],
              dataset: Any) -> None:
    kind = type(event).__name__
    number = r.trial.number
    if kind == "RunStarted":
        if store is not None:
            from engine.runs import RunRecorder

            r.recorder = RunRecorder(store, source="sweep", dataset_name=spec.base.dataset,
                                     dataset_title=getattr(dataset, "title", "") or event.dataset,
                                     data_dir=None if dataset is None or dataset.is_sample else str(dataset.source),
                                     sample=bool(getattr(dataset, "is_sample", False)), threads=1,
                                     on_error=note, sweep=spec.name, trial=number)
            r.recorder.feed(event)
            if r.recorder.run_id:
                r.trial.set_user_attr("run_id", r.recorder.run_id)
        return
    if r.recorder is not None:
        r.recorder.feed(event)
    if kind == "EpochEnded":
        r.epochs = event.epoch
        acc = float(event.val_acc) if event.val_acc is not None else float("nan")
        r.val_accs.append(acc)
        run_id = r.recorder.last_run_id if r.recorder is not None else None
        emit(TrialEpoch(number, event.epoch, acc, run_id))
        if event.epoch >= event.epochs:
            return
        go = not stop.is_set() and not r.outcome      # (on_event may just have set it)
        if go:
            r.trial.report(acc, event.epoch)
            if r.trial.should_prune():
                go = False
                r.outcome, r.reason = "pruned", f"pruned at epoch {event.epoch}"
        backend.verdict(number, go)
    elif kind == "Diverged":
        if r.outcome != "interrupted":
            r.outcome, r.reason = "diverged", "diverged"
    elif kind == "Failed":
        r.outcome, r.reason = "failed", event.message
        r.finished_event = True
    elif kind == "Finished":
        r.finished_event = True
        if r.recorder is not None and r.checkpoint and os.path.exists(r.checkpoint):
            r.recorder.set_checkpoint(r.checkpoint)      # the worker wrote it before sending Finished
        if event.reason == "diverged" and r.outcome != "interrupted":
            r.outcome, r.reason = "diverged", "diverged"


def _end_record(r: _Running, status: str, message: str | None = None) -> None:
    """End the trial's run row when the worker could not (lost, failed before Finished)."""
    rec = r.recorder
    if rec is None or rec.run_id is None:
        return
    rec._end(status, message=message)


def _tell(study: Any, r: _Running, epochs: int) -> TrialFinished:
    from optuna.trial import TrialState

    trial = r.trial
    run_id = r.recorder.last_run_id if r.recorder is not None else None
    last = next((a for a in reversed(r.val_accs) if not math.isnan(a)), None)
    value: float | None = last
    trial.set_user_attr("seconds", round(time.monotonic() - r.started, 3))
    if r.outcome in ("", "interrupted") and r.epochs >= epochs and last is not None:
        r.reason = ""                  # it finished every epoch before the stop reached it
        study.tell(trial, last)
        state = "complete"
        r.outcome = ""
    elif r.outcome in ("pruned", "diverged"):
        trial.set_user_attr("reason", r.reason)
        study.tell(trial, state=TrialState.PRUNED)
        state = "pruned"
    else:
        if r.outcome == "":
            r.reason = r.reason or f"stopped after {r.epochs} of {epochs} epochs"
        trial.set_user_attr("reason", r.reason)
        study.tell(trial, state=TrialState.FAIL)
        if r.outcome == "interrupted":
            study.enqueue_trial(r.params)     # --resume runs it again first (the failed one has them: no skip)
        state = "failed"
    return TrialFinished(number=trial.number, state=state, params=r.params, value=value, epochs=r.epochs,
                         run_id=run_id, worker=r.worker, seconds=time.monotonic() - r.started, reason=r.reason,
                         val_accs=tuple(r.val_accs))


def _done(spec: SweepSpec, study: Any, t0: float, interrupted: bool, error: str | None,
          emit: Callable[[SweepEvent], None]) -> SweepDone:
    c = counts(study)
    best_params = best_value = best_run = best_number = None
    if c["complete"]:
        best = study.best_trial
        best_params, best_value, best_number = dict(best.params), best.value, best.number
        best_run = best.user_attrs.get("run_id")
    done = SweepDone(name=spec.name, best_params=best_params, best_value=best_value, best_run_id=best_run,
                     best_number=best_number, n_complete=c["complete"], n_pruned=c["pruned"],
                     n_failed=c["failed"], seconds=time.monotonic() - t0, importances=importances(study),
                     interrupted=interrupted, error=error)
    emit(done)
    return done
