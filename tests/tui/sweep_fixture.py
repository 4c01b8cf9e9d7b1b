"""Fixed sweep events for the Sweep panel's tests (no Optuna run): four trials over lr (log) and
batch size, one pruned, one failed, then the sweep's end with importances."""

from __future__ import annotations

from engine.config import TrainConfig
from engine.sweep.events import SweepDone, SweepStarted, TrialEpoch, TrialFinished, TrialStarted

BASE = TrainConfig(hidden=(32,), lr=0.1, epochs=3, batch_size=64, val_size=1000, seed=7)
SPACE = ({"name": "lr", "kind": "float", "low": 0.001, "high": 0.5, "log": True},
         {"name": "batch_size", "kind": "categorical", "choices": [32, 64, 128]})
TRIALS = (   # number, params, per-epoch val acc, final state, run id
    (0, {"lr": 0.0123, "batch_size": 64}, (0.801, 0.853, 0.874), "complete", "a1b2c3d40000"),
    (1, {"lr": 0.2, "batch_size": 32}, (0.862, 0.901, 0.915), "complete", "a1b2c3d40001"),
    (2, {"lr": 0.0015, "batch_size": 128}, (0.412,), "pruned", "a1b2c3d40002"),
    (3, {"lr": 0.05, "batch_size": 128}, (0.842, 0.888, 0.896), "complete", "a1b2c3d40003"),
    (4, {"lr": 0.45, "batch_size": 64}, (), "failed", None),
)


def started() -> SweepStarted:
    return SweepStarted(name="sweep-test", storage="/tmp/sweeps.journal", space=SPACE, base=BASE.to_dict(),
                        epochs=3, sampler="tpe", pruner="median", workers=1, trials=5, time_budget=None)


def trial_events(number: int, finish: bool = True) -> list[object]:
    n, params, accs, state, run_id = TRIALS[number]
    out: list[object] = [TrialStarted(n, params, "local:1")]
    out += [TrialEpoch(n, e, a, run_id) for e, a in enumerate(accs, start=1)]
    if finish:
        out.append(TrialFinished(number=n, state=state, params=params, value=accs[-1] if accs else None,
                                 epochs=len(accs), run_id=run_id, worker="local:1", seconds=3.0 + n,
                                 reason={"pruned": "pruned at epoch 1", "failed": "diverged"}.get(state, ""),
                                 val_accs=accs))
    return out


def done() -> SweepDone:
    return SweepDone(name="sweep-test", best_params=TRIALS[1][1], best_value=0.915, best_run_id="a1b2c3d40001",
                     best_number=1, n_complete=3, n_pruned=1, n_failed=1, seconds=42.0,
                     importances={"lr": 0.83, "batch_size": 0.17})


def all_events() -> list[object]:
    events: list[object] = [started()]
    for n in range(len(TRIALS)):
        events += trial_events(n)
    events.append(done())
    return events
