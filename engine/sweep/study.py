"""Where a sweep's Optuna study lives, and creating, resuming and summarising it.

Default storage: one Optuna *journal file* in the user data directory
(``<state dir>/sweeps.journal``; ``TERMNIST_STATE_DIR`` moves it), holding every sweep as a
study named by ``--name``. A journal file is safe for several processes on one host (not on
NFS); no server is needed, and ``optuna-dashboard FILE`` / ``optuna trials --storage FILE
--storage-class JournalFileBackend --study-name NAME`` read it. ``--storage URL`` takes any
Optuna storage URL instead (``postgresql://...`` shared by several hosts; ``sqlite:///...``
works for one writer). A plain path (no ``://``) is a journal file.

The sweep's settings (space, base settings, epochs, sampler, pruner, seed, trial target) are
kept in the study's user attributes, so ``--resume NAME`` continues with exactly them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from engine.errors import TermnistError

JOURNAL_NAME = "sweeps.journal"
SPEC_ATTR = "termnist_spec"
SAMPLERS = ("grid", "random", "tpe")
PRUNERS = ("none", "median", "hyperband")


class SweepError(TermnistError):
    """A sweep cannot start or continue (storage unusable, unknown study, cluster unreachable): one line."""


def default_storage() -> str:
    from engine.recovery import state_dir

    return str(state_dir() / JOURNAL_NAME)


def is_url(storage: str) -> bool:
    return "://" in storage


def check_journal(path: Path) -> None:
    """Refuse a journal file that is corrupt or truncated, naming it (Optuna would silently
    skip a cut-off last line, then append after it and corrupt the next record)."""
    if not path.exists():
        return
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SweepError(f"sweep journal {path}: cannot be read ({exc.strerror or exc})") from None
    if not data:
        return
    lines = data.split(b"\n")
    for number, line in enumerate(lines[:-1], start=1):
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not isinstance(record, dict) or "op_code" not in record:
            raise SweepError(f"sweep journal {path}: line {number} is corrupt (not an Optuna journal record);"
                             " move the file away to start a new one, or pass --storage")
    if lines[-1]:
        raise SweepError(f"sweep journal {path}: truncated (its last line, {len(lines)}, was cut off mid-write);"
                         " delete that line to keep the other records, or move the file away")


def open_storage(storage: str | None) -> tuple[Any, str]:
    """(Optuna storage object, its description) for ``storage`` (None: the default journal)."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    text = storage or default_storage()
    if is_url(text) and not text.startswith("file://"):
        try:
            return optuna.storages.get_storage(text), text
        except Exception as exc:  # noqa: BLE001 - any driver/URL problem: one line naming the URL
            raise SweepError(f"--storage {text}: cannot open it ({type(exc).__name__}: {exc})") from None
    path = Path(text.removeprefix("file://")).expanduser()
    check_journal(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path))), str(path)
    except OSError as exc:
        raise SweepError(f"sweep journal {path}: cannot be used ({exc.strerror or exc})") from None
    except ValueError as exc:
        raise SweepError(f"sweep journal {path}: corrupt ({exc})") from None


def make_sampler(name: str, seed: int, space: Any = ()) -> Any:
    """The sampler, with its settings explicit (Optuna's defaults change between versions):
    TPE multivariate with the constant liar (parallel trials do not all pick one point), seeded."""
    import optuna

    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True, n_startup_trials=10)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "grid":
        return _ask_tell_grid({p.name: p.grid_values() for p in space}, seed=seed)
    raise SweepError(f"--sampler: unknown sampler {name!r}; choose from {', '.join(SAMPLERS)}")


def _grid_class() -> Any:
    import optuna

    class AskTellGrid(optuna.samplers.GridSampler):
        """GridSampler whose ``after_trial`` does not call ``study.stop()`` when the grid is done
        (that raises outside ``optimize``; the sweep caps its trials at the grid's size itself)."""

        def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
            return None

    return AskTellGrid


def _ask_tell_grid(search_space: dict[str, list[Any]], seed: int) -> Any:
    return _grid_class()(search_space, seed=seed)


def make_pruner(name: str, epochs: int) -> Any:
    """median: a trial whose val acc after an epoch is below the median of earlier trials at that
    epoch is stopped (after 2 complete trials; from epoch 1). hyperband: min 1, max ``epochs`` epochs."""
    import optuna

    if name == "none":
        return optuna.pruners.NopPruner()
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(1, epochs), reduction_factor=3)
    raise SweepError(f"--pruner: unknown pruner {name!r}; choose from {', '.join(PRUNERS)}")


def quiet_optuna() -> None:
    """Optuna logs every trial at INFO on stderr: the sweep prints its own lines."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


def study_names(storage: str | None = None) -> list[str]:
    """The sweeps kept in ``storage`` (default: the journal file)."""
    import optuna

    quiet_optuna()
    obj, _ = open_storage(storage)
    return [s.study_name for s in optuna.study.get_all_study_summaries(obj, include_best_trial=False)]


def create_study(name: str, storage_obj: Any, spec_json: dict[str, Any], sampler: Any, pruner: Any) -> Any:
    """A new study (maximising val acc) holding the spec; SweepError when the name is taken."""
    import optuna

    quiet_optuna()
    try:
        study = optuna.create_study(study_name=name, storage=storage_obj, sampler=sampler, pruner=pruner,
                                    direction="maximize")
    except optuna.exceptions.DuplicatedStudyError:
        raise SweepError(f"--name {name}: a sweep of that name exists; continue it with --resume {name},"
                         " or choose another --name") from None
    study.set_user_attr(SPEC_ATTR, spec_json)
    return study


def load_study(name: str, storage_obj: Any, where: str) -> tuple[Any, dict[str, Any]]:
    """(study, its spec json) of an existing sweep; SweepError naming the storage when none."""
    import optuna

    quiet_optuna()
    try:
        study = optuna.load_study(study_name=name, storage=storage_obj)
    except KeyError:
        known = [s.study_name for s in optuna.study.get_all_study_summaries(storage_obj, include_best_trial=False)]
        hint = f"; sweeps there: {', '.join(known[-8:])}" if known else " (it holds no sweeps)"
        raise SweepError(f"--resume {name}: no sweep of that name in {where}{hint}") from None
    spec = study.user_attrs.get(SPEC_ATTR)
    if not isinstance(spec, dict):
        raise SweepError(f"--resume {name}: the study in {where} was not made by termnist sweep"
                         " (it has no termnist settings)")
    return study, spec


def counts(study: Any) -> dict[str, int]:
    """Trials by state over the whole study: complete, pruned, failed (interrupted ones apart), running."""
    from optuna.trial import TrialState

    out = {"complete": 0, "pruned": 0, "failed": 0, "interrupted": 0, "running": 0, "waiting": 0}
    for t in study.get_trials(deepcopy=False):
        if t.state == TrialState.COMPLETE:
            out["complete"] += 1
        elif t.state == TrialState.PRUNED:
            out["pruned"] += 1
        elif t.state == TrialState.FAIL:
            out["interrupted" if str(t.user_attrs.get("reason", "")).startswith("interrupted") else "failed"] += 1
        elif t.state == TrialState.RUNNING:
            out["running"] += 1
        elif t.state == TrialState.WAITING:
            out["waiting"] += 1
    return out


def importances(study: Any) -> dict[str, float]:
    """Optuna's parameter importances (its default evaluator) when >= 2 trials completed; {} otherwise
    or when it cannot tell (a single value searched, equal results)."""
    import optuna

    if counts(study)["complete"] < 2:
        return {}
    import warnings

    try:
        with warnings.catch_warnings():     # "importances will be equal" when the trials tie: that is the answer
            warnings.simplefilter("ignore")
            return {k: float(v) for k, v in optuna.importance.get_param_importances(study).items()}
    except Exception:  # noqa: BLE001 - importances are a bonus; never fail a finished sweep for them
        return {}


def env_storage_note() -> str:
    """Where the default journal is and how to read it with Optuna's own tools."""
    path = default_storage()
    return (f"optuna-dashboard {path}  |  optuna trials --storage {path} --storage-class JournalFileBackend"
            f" --study-name NAME{'  (TERMNIST_STATE_DIR set)' if os.environ.get('TERMNIST_STATE_DIR') else ''}")


def past_trials(name: str, storage: str | None = None) -> list[Any]:
    """The finished trials of the sweep ``name`` as TrialFinished events (for a table of an earlier
    or resumed sweep; val_accs: the reported epochs, then the final value). SweepError when unknown."""
    obj, where = open_storage(storage)
    study, _ = load_study(name, obj, where)
    return _finished(study)


@dataclass(frozen=True)
class SweepSummary:
    """One sweep kept in a storage, as a list of sweeps shows it."""

    name: str
    started: datetime | None          # when its first trial started (None: no trial yet)
    trials: int                       # trials of every state, running and waiting ones too


def sweep_summaries(storage: str | None = None) -> list[SweepSummary]:
    """The sweeps kept in ``storage`` (default: the journal file), the newest first."""
    import optuna

    quiet_optuna()
    obj, _ = open_storage(storage)
    out = [SweepSummary(s.study_name, s.datetime_start, s.n_trials)
           for s in optuna.study.get_all_study_summaries(obj, include_best_trial=False)]
    # the storage's order is creation order: newest first, by first trial where known
    out.reverse()
    return sorted(out, key=lambda s: s.started is None)


def earlier_sweep(name: str, storage: str | None = None) -> tuple[Any, list[Any]]:
    """An earlier sweep as its events: a SweepStarted from the stored settings (``done_before``: its
    finished trials; ``workers`` 0: nothing runs) and its finished trials as TrialFinished, oldest
    first. SweepError when unknown or not a termnist sweep."""
    from engine.sweep.events import SweepStarted

    obj, where = open_storage(storage)
    study, stored = load_study(name, obj, where)
    try:
        finished = _finished(study)
        epochs = int(stored["epochs"])
        started = SweepStarted(name=name, storage=where, space=tuple(stored["space"]),
                               base={**stored["base"], "epochs": epochs}, epochs=epochs,
                               sampler=str(stored["sampler"]), pruner=str(stored["pruner"]), workers=0,
                               trials=stored.get("trials"), time_budget=stored.get("time_budget"),
                               done_before=len(finished))
    except (KeyError, TypeError, ValueError) as exc:
        raise SweepError(f"sweep {name} in {where}: its stored settings are damaged ({exc})") from None
    return started, finished


def _finished(study: Any) -> list[Any]:
    from optuna.trial import TrialState

    from engine.sweep.events import TrialFinished

    out = []
    states = {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned", TrialState.FAIL: "failed"}
    for t in study.get_trials(deepcopy=False):
        if t.state not in states:
            continue
        accs = [float(t.intermediate_values[k]) for k in sorted(t.intermediate_values)]
        if t.state == TrialState.COMPLETE and t.value is not None:
            accs.append(float(t.value))
        out.append(TrialFinished(
            number=t.number, state=states[t.state], params=dict(t.params),
            value=t.value if t.value is not None else (accs[-1] if accs else None), epochs=len(accs),
            run_id=t.user_attrs.get("run_id"), worker=str(t.user_attrs.get("worker", "")),
            seconds=float(t.user_attrs.get("seconds", 0.0)), reason=str(t.user_attrs.get("reason", "")),
            val_accs=tuple(accs)))
    return out
