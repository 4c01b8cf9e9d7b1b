"""engine.sweep: the --param parser, the local process pool, pruning, divergence, resume, a
worker killed mid-trial, a corrupt journal, and a real local Dask cluster (skipped without
``distributed``). Tiny nets on a tiny IDX set: every sweep here takes seconds."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest

from engine.config import TrainConfig
from engine.runs import RunStore
from engine.sweep import SpaceError, SweepError, SweepSpec, parse_param, parse_space, run_sweep
from engine.sweep import events as sev
from engine.sweep.space import ParamSpec, check_against, config_value
from tests.factories import make_dataset, write_idx_set


# -- the space parser ------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "expected"), [
    ("lr=0.001:0.5:log", ParamSpec("lr", "float", low=0.001, high=0.5, log=True)),
    ("momentum=0.8:0.99", ParamSpec("momentum", "float", low=0.8, high=0.99)),
    ("batch_size=16:128:int", ParamSpec("batch_size", "int", low=16, high=128)),
    ("batch_size=16:128", ParamSpec("batch_size", "int", low=16, high=128)),        # an int field: int range
    ("batch_size=16:256:int:log", ParamSpec("batch_size", "int", low=16, high=256, log=True)),
    ("step_epochs=1:5:int", ParamSpec("step_epochs", "int", low=1, high=5)),
    ("batch_size=32,64,128", ParamSpec("batch_size", "categorical", choices=(32, 64, 128))),
    ("lr=0.1, 0.01", ParamSpec("lr", "categorical", choices=(0.1, 0.01))),
    ("hidden=64,128-64,256-128", ParamSpec("hidden", "categorical", choices=("64", "128-64", "256-128"))),
    ("hidden=none,32", ParamSpec("hidden", "categorical", choices=("none", "32"))),
    ("optimizer=sgd,adam", ParamSpec("optimizer", "categorical", choices=("sgd", "adam"))),
])
def test_param_forms(text, expected):
    spec = parse_param(text)
    assert spec == expected
    assert ParamSpec.from_json(spec.to_json()) == spec
    assert parse_param(spec.text()) == spec                       # back to --param form


def test_hidden_choices_become_layer_tuples():
    assert config_value("hidden", "128-64") == (128, 64)
    assert config_value("hidden", "none") == ()
    assert config_value("lr", 0.1) == 0.1


@pytest.mark.parametrize(("text", "names"), [
    ("foo=1,2", ("foo", "unknown parameter")),
    ("lr=", ("lr", "empty list")),
    ("batch_size=32,,64", ("batch_size", "empty value")),
    ("lr=0.5:0.001", ("lr", "greater than high")),
    ("lr=0:1:log", ("lr", "low must be > 0")),
    ("lr=-1:1:log", ("lr", "low must be > 0")),
    ("lr=a:b", ("lr", "expected a number")),
    ("lr=1:2:cubic", ("lr", "bad range")),
    ("lr=0.1:1:int", ("lr", "drop ':int'")),
    ("hidden=64:128", ("hidden", "takes a list")),
    ("hidden=12x", ("hidden", "not a layer stack")),
    ("batch_size=32,32", ("batch_size", "repeated")),
    ("batch_size=3.5,4", ("batch_size", "whole number")),
    ("lr", ("lr", "NAME=VALUES")),
    ("=1", ("=1", "no parameter name")),
])
def test_param_errors_name_the_parameter(text, names):
    with pytest.raises(SpaceError) as info:
        parse_param(text)
    name, words = names
    assert info.value.name == name and words in str(info.value)
    assert str(info.value).startswith(f"--param {name}:")


def test_space_refuses_a_parameter_twice_and_values_the_engine_refuses():
    with pytest.raises(SpaceError, match="given twice"):
        parse_space(["lr=0.1,0.2", "lr=0.01:0.1"])
    with pytest.raises(SpaceError, match="activation"):
        check_against(parse_space(["activation=relu,swishy"]), TrainConfig())
    with pytest.raises(SpaceError, match="lr"):
        check_against(parse_space(["lr=0:1"]), TrainConfig())
    with pytest.raises(SpaceError, match="grid"):
        parse_param("lr=0.01:0.1").grid_values()
    assert parse_param("batch_size=1:3:int").grid_values() == [1, 2, 3]


# -- sweeps ------------------------------------------------------------------------------------
@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """A tiny IDX set on disk (dataset "idx"), its state dir, and a spec factory."""
    monkeypatch.setenv("TERMNIST_STATE_DIR", str(tmp_path / "state"))
    data = write_idx_set(tmp_path / "data", make_dataset(n_train=600, n_test=200, side=8))
    base = TrainConfig(dataset="idx", hidden=(8,), val_size=100, batch_size=32, lr=0.1, optimizer="momentum",
                       schedule="constant")

    def spec(name: str = "s", **kw) -> SweepSpec:
        kw.setdefault("space", parse_space(["lr=0.01:0.5:log", "batch_size=16,32"]))
        kw.setdefault("epochs", 2)
        kw.setdefault("trials", 3)
        return SweepSpec(name=name, base=base, data_dir=str(data), **kw)

    return spec


def collect(spec: SweepSpec, **kw) -> tuple[sev.SweepDone, list]:
    seen: list = []
    done = run_sweep(spec, seen.append, **kw)
    return done, seen


def finished(events: list) -> list[sev.TrialFinished]:
    return [e for e in events if isinstance(e, sev.TrialFinished)]


def test_local_pool_of_two_workers_records_every_trial(tiny):
    done, events = collect(tiny("two", workers=2, trials=4, pruner="none"))
    assert isinstance(events[0], sev.SweepStarted) and events[0].workers == 2 and events[-1] is done
    trials = finished(events)
    assert sorted(t.number for t in trials) == [0, 1, 2, 3]
    assert all(t.state == "complete" and t.epochs == 2 and len(t.val_accs) == 2 for t in trials)
    assert len({t.worker for t in trials}) == 2 and all(t.worker.startswith("local:") for t in trials)
    starts = [e for e in events if isinstance(e, sev.TrialStarted)]
    assert len(starts) == 4 and {e.number for e in events if isinstance(e, sev.TrialEpoch)} == {0, 1, 2, 3}
    assert done.n_complete == 4 and done.best_value == max(t.value for t in trials)
    assert done.best_run_id == next(t.run_id for t in trials if t.number == done.best_number)
    assert set(done.importances) == {"lr", "batch_size"}
    with RunStore() as store:
        runs = [r for r in store.list() if r.sweep == "two"]
        assert sorted(r.trial for r in runs) == [0, 1, 2, 3]
        assert {r.id for r in runs} == {t.run_id for t in trials}
        assert all(r.status == "completed" and r.source == "sweep" and r.epochs_done == 2 for r in runs)
        assert runs[0].to_json()["sweep"] == "two"
    assert (Path(os.environ["TERMNIST_STATE_DIR"]) / "sweeps.journal").exists()


def test_a_hopeless_learning_rate_is_pruned(tiny):
    # two good trials first (the median pruner's start-up), then lr 1e-7: chance-level after epoch 1
    spec = tiny("prune", space=parse_space(["lr=1e-7:0.5:log"]), epochs=3, trials=3, pruner="median",
                enqueue=({"lr": 0.2}, {"lr": 0.1}, {"lr": 1e-7}))
    done, events = collect(spec)
    by = {t.number: t for t in finished(events)}
    assert by[0].state == by[1].state == "complete"
    assert by[2].state == "pruned" and by[2].reason == "pruned at epoch 1" and by[2].epochs == 1
    assert (done.n_complete, done.n_pruned) == (2, 1)
    with RunStore() as store:
        assert store.get(by[2].run_id).status == "stopped" and store.get(by[2].run_id).epochs_done == 1
    # the same table, read back from the journal (what a panel shows for an earlier sweep)
    from engine.sweep import past_trials, study_names

    assert "prune" in study_names()
    back = {t.number: t for t in past_trials("prune")}
    assert [(t.state, t.epochs, t.run_id, t.val_accs) for t in back.values()] == \
        [(by[n].state, by[n].epochs, by[n].run_id, by[n].val_accs) for n in back]


def test_a_diverging_trial_is_recorded_and_the_sweep_goes_on(tiny):
    spec = tiny("div", space=parse_space(["lr=0.01:1000:log"]), trials=2, pruner="none",
                enqueue=({"lr": 1000.0}, {"lr": 0.1}))
    done, events = collect(spec)
    by = {t.number: t for t in finished(events)}
    assert by[0].state == "pruned" and by[0].reason == "diverged"      # told to Optuna as pruned
    assert by[1].state == "complete"
    assert done.n_complete == 1 and done.n_pruned == 1 and done.best_params == {"lr": 0.1}
    with RunStore() as store:
        assert store.get(by[0].run_id).status == "diverged"


def test_stop_leaves_the_study_resumable(tiny):
    stop = threading.Event()

    def on_event(e):
        seen.append(e)
        if isinstance(e, sev.TrialEpoch) and e.number == 2 and e.epoch == 1:
            stop.set()                       # mid-trial: trial 2 is interrupted

    seen: list = []
    done = run_sweep(tiny("res", trials=5, pruner="none"), on_event, stop=stop)
    assert done.interrupted and done.n_complete == 2
    cut = finished(seen)[-1]
    assert cut.number == 2 and cut.state == "failed" and cut.reason == "interrupted"
    with RunStore() as store:
        assert store.get(cut.run_id).status in ("stopped", "interrupted")
    # what the Sweep panel shows of it before resuming: its settings and its finished trials
    from engine.sweep import earlier_sweep, resume_spec, sweep_summaries

    head, rows = earlier_sweep("res")
    first = next(e for e in seen if isinstance(e, sev.SweepStarted))
    assert (head.name, head.space, head.epochs, head.trials, head.sampler) == \
        (first.name, first.space, first.epochs, first.trials, first.sampler)
    assert head.base == first.base and head.done_before == len(rows) == 3 and head.workers == 0
    assert [(r.number, r.state, r.params) for r in rows] == [(t.number, t.state, t.params) for t in finished(seen)]
    run_sweep(tiny("later", trials=1))
    assert [s.name for s in sweep_summaries()][:2] == ["later", "res"]          # the newest first
    # res: 3 finished, and the interrupted trial's parameters waiting (enqueued to run first)
    assert {s.name: s.trials for s in sweep_summaries()} == {"later": 1, "res": 4}
    resumed = resume_spec("res", workers=1)
    assert resumed.resume and resumed.trials == 5 and resumed.base.hidden == (8,) and resumed.workers == 1
    with pytest.raises(SweepError, match="no sweep of that name"):
        earlier_sweep("nope")
    # --resume: its stored settings, the interrupted trial's parameters first, 5 trials in all
    again, more = collect(SweepSpec(name="res", space=(), base=TrainConfig(), resume=True, trials=None))
    start = more[0]
    assert start.resumed and start.done_before == 2 and start.trials == 5 and start.epochs == 2
    rerun = finished(more)
    assert rerun[0].params == cut.params
    assert len(rerun) == 3 and again.n_complete == 5 and not again.interrupted


def test_resume_of_an_unknown_sweep_names_it(tiny):
    run_sweep(tiny("known", trials=1))
    with pytest.raises(SweepError, match=r"--resume nope: no sweep of that name in .*sweeps\.journal.*known"):
        run_sweep(SweepSpec(name="nope", space=(), base=TrainConfig(), resume=True))
    with pytest.raises(SweepError, match="--name known: a sweep of that name exists"):
        run_sweep(tiny("known"))


def test_a_worker_killed_mid_trial_fails_that_trial_and_the_sweep_completes(tiny):
    killed = []

    def on_event(e):
        seen.append(e)
        if isinstance(e, sev.TrialStarted):
            pids[e.number] = int(e.worker.split(":")[1])
        if isinstance(e, sev.TrialEpoch) and e.number == 1 and not killed:
            os.kill(pids[1], signal.SIGKILL)           # the worker waits for its verdict
            killed.append(pids[1])

    seen: list = []
    pids: dict[int, int] = {}
    done = run_sweep(tiny("kill", trials=3, pruner="none"), on_event)
    by = {t.number: t for t in finished(seen)}
    assert by[1].state == "failed" and "killed by signal 9" in by[1].reason
    assert by[0].state == by[2].state == "complete"
    assert pids[2] != killed[0]                         # a new worker took over
    assert (done.n_complete, done.n_failed) == (2, 1)
    with RunStore() as store:
        row = store.get(by[1].run_id)
        assert row.status == "failed" and "killed by signal 9" in (row.message or "")


@pytest.mark.parametrize(("content", "words"), [
    (b"\x00\x01garbage\n", "line 1 is corrupt"),
    (b'{"op_code": 0, "worker_id": "w", "study_name": "a", "directions": [2]}\n{"op_code": 5, "wor',
     "truncated"),
])
def test_a_corrupt_or_truncated_journal_is_named(tiny, tmp_path, content, words):
    journal = tmp_path / "bad.journal"
    journal.write_bytes(content)
    with pytest.raises(SweepError, match=f"sweep journal {journal}: {words}"):
        run_sweep(tiny("x", storage=str(journal)))
    assert journal.read_bytes() == content               # left as it was


# -- a real local Dask cluster ---------------------------------------------------------------------
# Loopback only, no dashboard, and the scheduler's HTTP server (health, metrics) on a free port:
# with dashboard_address=None alone it still binds 8787, or warns and moves when that is taken.
QUIET_CLUSTER: dict = dict(processes=True, threads_per_worker=1, dashboard_address=None, host="127.0.0.1",
                           scheduler_kwargs={"dashboard_address": "127.0.0.1:0"})


@pytest.fixture(scope="module")
def dask_cluster():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, **QUIET_CLUSTER)
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.mark.timeout(240)
def test_dask_cluster_runs_trials_on_both_workers(tiny, dask_cluster):
    spec = tiny("dask", trials=4, pruner="none", cluster=dask_cluster.scheduler_address)
    done, events = collect(spec)
    assert events[0].workers == 2 and events[0].cluster == dask_cluster.scheduler_address
    trials = finished(events)
    assert sorted(t.number for t in trials) == [0, 1, 2, 3] and all(t.state == "complete" for t in trials)
    assert {t.worker for t in trials} == set(dask_cluster.scheduler_info["workers"])   # both, by address
    assert done.n_complete == 4
    with RunStore() as store:                                  # recorded by the sweep, on this host
        assert sorted(r.trial for r in store.list() if r.sweep == "dask") == [0, 1, 2, 3]


@pytest.mark.timeout(240)
def test_dask_trials_report_every_epoch_and_get_pruned(tiny, dask_cluster):
    # one trial at a time (--workers 1 caps the cluster's slots): the pruner's start-up is 2 complete trials
    spec = tiny("dprune", space=parse_space(["lr=1e-7:0.5:log"]), epochs=3, trials=3, pruner="median", workers=1,
                cluster=dask_cluster.scheduler_address, enqueue=({"lr": 0.2}, {"lr": 0.1}, {"lr": 1e-7}))
    done, events = collect(spec)
    by = {t.number: t for t in finished(events)}
    assert by[0].state == by[1].state == "complete" and by[0].val_accs and len(by[0].val_accs) == 3
    assert by[2].state == "pruned" and by[2].reason == "pruned at epoch 1" and by[2].epochs == 1
    assert (done.n_complete, done.n_pruned) == (2, 1)


@pytest.mark.timeout(240)
def test_dask_workers_that_cannot_find_the_data_get_it_shipped(tiny, tmp_path, dask_cluster):
    import shutil

    from engine.datasets import load_dataset

    spec = tiny("ship", trials=2, cluster=dask_cluster.scheduler_address)
    ds = load_dataset("idx", data_dir=spec.data_dir)
    shutil.rmtree(spec.data_dir)                               # only the sweep has it now
    notes: list[str] = []
    done, _ = collect(spec, dataset=ds, on_note=notes.append)
    assert any("cannot find idx" in n and "shipping it to every worker once" in n for n in notes), notes
    assert done.n_complete == 2


def test_an_unreachable_cluster_is_one_line(tiny, monkeypatch):
    pytest.importorskip("distributed")
    from engine.sweep import cluster

    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT", 2.0)
    with pytest.raises(SweepError, match=r"--cluster tcp://127\.0\.0\.1:9: cannot reach the Dask scheduler"):
        run_sweep(tiny("far", cluster="tcp://127.0.0.1:9"))


@pytest.mark.timeout(300)
def test_a_cluster_lost_mid_sweep_keeps_the_finished_trials_and_resume_continues(tiny, monkeypatch):
    distributed = pytest.importorskip("distributed")
    from engine.sweep import cluster as cluster_mod

    monkeypatch.setattr(cluster_mod, "LOST_SECONDS", 2.0)
    kw = dict(n_workers=1, **QUIET_CLUSTER)
    first = distributed.LocalCluster(**kw)
    seen: list = []

    def on_event(e):
        seen.append(e)
        if isinstance(e, sev.TrialFinished) and e.number == 0:
            first.close()                               # the scheduler and its worker go away

    try:
        done = run_sweep(tiny("lost", trials=4, epochs=3, pruner="none", cluster=first.scheduler_address), on_event)
    finally:
        first.close()
    assert done.error and "lost the connection to the scheduler" in done.error
    assert done.n_complete == 1 and not done.interrupted
    second = distributed.LocalCluster(**kw)
    try:
        again, more = collect(SweepSpec(name="lost", space=(), base=TrainConfig(), resume=True,
                                        cluster=second.scheduler_address))
    finally:
        second.close()
    assert more[0].done_before == 1 and again.error is None
    assert again.n_complete == 4


def test_grid_tries_every_combination_once_and_stops(tiny):
    spec = tiny("grid", space=parse_space(["batch_size=16,32", "lr=0.05,0.1"]), sampler="grid", trials=None,
                pruner="none")
    done, events = collect(spec)
    assert events[0].trials == 4                                   # the grid's size
    assert sorted((t.params["batch_size"], t.params["lr"]) for t in finished(events)) == \
        [(16, 0.05), (16, 0.1), (32, 0.05), (32, 0.1)]
    assert done.n_complete == 4


def test_hyperband_and_random_samplers_run(tiny):
    done, events = collect(tiny("hb", sampler="random", pruner="hyperband", trials=4, epochs=3))
    assert done.n_complete + done.n_pruned == 4 and done.n_complete >= 1
    assert all(t.state in ("complete", "pruned") for t in finished(events))


@pytest.mark.timeout(300)
def test_a_dask_worker_killed_mid_trial_fails_that_trial_and_the_sweep_completes(tiny):
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=1, **QUIET_CLUSTER)
    client = distributed.Client(cluster)
    killed: list[int] = []

    def on_event(e):
        seen.append(e)
        if isinstance(e, sev.TrialEpoch) and e.number == 1 and not killed:
            pid = next(iter(client.run(os.getpid).values()))
            os.kill(pid, signal.SIGKILL)            # the nanny starts a new worker; Dask would re-run the task
            killed.append(pid)

    seen: list = []
    try:
        done = run_sweep(tiny("dkill", trials=3, pruner="none", cluster=cluster.scheduler_address), on_event)
    finally:
        client.close()
        cluster.close()
    by = {t.number: t for t in finished(seen)}
    assert by[1].state == "failed" and "lost" in by[1].reason, by[1]
    assert by[0].state == by[2].state == "complete"
    assert (done.n_complete, done.n_failed) == (2, 1)
