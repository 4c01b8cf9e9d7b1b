"""Hyperparameter sweeps with Optuna: search, pruning, parallel trials, a Dask cluster.

The public API (no Textual; Optuna is imported only when a sweep runs):

    from engine.sweep import SweepSpec, parse_space, run_sweep
    spec = SweepSpec(name="s1", space=parse_space(["lr=0.001:0.5:log"]), base=TrainConfig(), epochs=3, trials=8)
    done = run_sweep(spec, on_event, stop=threading.Event())       # blocking: call from a thread

Modules: space (``--param`` parser: ParamSpec, SpaceError), events (SweepStarted, TrialStarted,
TrialEpoch, TrialFinished, SweepDone), study (storage, samplers, pruners, SweepError),
runner (SweepSpec, run_sweep), local (LocalPool: worker processes), cluster (DaskBackend),
worker (one trial on a worker).
"""

from __future__ import annotations

from engine.sweep.events import SweepDone, SweepEvent, SweepStarted, TrialEpoch, TrialFinished, TrialStarted
from engine.sweep.runner import SweepSpec, resume_spec, run_sweep
from engine.sweep.space import SWEEPABLE, ParamSpec, SpaceError, parse_param, parse_space
from engine.sweep.study import (PRUNERS, SAMPLERS, SweepError, SweepSummary, default_storage, earlier_sweep,
                                past_trials, study_names, sweep_summaries)

__all__ = ["PRUNERS", "SAMPLERS", "SWEEPABLE", "ParamSpec", "SpaceError", "SweepDone", "SweepError", "SweepEvent",
           "SweepSpec", "SweepStarted", "SweepSummary", "TrialEpoch", "TrialFinished", "TrialStarted",
           "default_storage", "earlier_sweep", "parse_param", "parse_space", "past_trials", "resume_spec",
           "run_sweep", "study_names", "sweep_summaries"]
