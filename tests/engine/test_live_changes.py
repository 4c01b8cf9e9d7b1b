"""Live changes while a session trains: lr, momentum, weight decay, batch size (issue 13).

A change asked while the run's generator is suspended at a yield takes effect at the next
step boundary, so these tests place changes exactly without threads (except the ones about
threads: a change from another thread, pause + step/epoch once).
"""

from __future__ import annotations

import math
import queue
import threading

import numpy as np
import pytest

from engine import events as ev
from engine.checkpoint import load_checkpoint, save_checkpoint
from engine.errors import ConfigError
from engine.training import TrainConfig, TrainingSession
from tests.factories import make_dataset

SMALL = dict(hidden=(16,), batch_size=32, epochs=3, val_size=100, lr=0.1, dataset="synthetic")


@pytest.fixture(scope="module")
def data():
    return make_dataset()        # 500 training rows after validation: 16 steps of 32 an epoch


def run_with(session: TrainingSession, at: dict[int, dict]) -> list[ev.Event]:
    """Run ``session``; after the BatchProgress of global step g, ask change(**at[g])."""
    out = []
    for e in session.run():
        out.append(e)
        if isinstance(e, ev.BatchProgress) and e.global_step in at:
            session.change(**at[e.global_step])
    return out


def changes(events):
    return [e for e in events if isinstance(e, ev.HyperparamsChanged)]


def same_weights(a: TrainingSession, b: TrainingSession) -> bool:
    wa, wb = a.model.get_weights(), b.model.get_weights()
    return wa.keys() == wb.keys() and all(np.array_equal(wa[k], wb[k]) for k in wa)


def test_a_change_takes_effect_at_the_next_step_boundary(data):
    s = TrainingSession(TrainConfig(**SMALL), data, progress_every=5)
    events = run_with(s, {10: {"lr": 0.2}})
    [c] = changes(events)
    assert (c.epoch, c.step_in_epoch, c.global_step, c.field, c.old, c.new) == (1, 10, 10, "lr", 0.1, 0.2)
    assert c.describe() == "epoch 1 step 10: lr 0.1 -> 0.2"
    i = events.index(c)
    after = [e for e in events[i:] if isinstance(e, ev.BatchProgress)][0]
    before = [e for e in events[:i] if isinstance(e, ev.BatchProgress)][-1]
    assert before.lr == 0.1 and after.lr == 0.2           # step 10 had the old lr, 11 the new
    assert s.config.lr == 0.2 and s.changes == [
        {"epoch": 1, "step_in_epoch": 10, "global_step": 10, "field": "lr", "old": 0.1, "new": 0.2}]


def test_without_changes_nothing_differs(data):
    """The loop driven by rows gives the weights the step-indexed loop gave: same as a run that
    asks a change to the value it already has (no event, no record)."""
    a = TrainingSession(TrainConfig(**SMALL), data)
    list(a.run())
    b = TrainingSession(TrainConfig(**SMALL), data, progress_every=5)
    assert changes(run_with(b, {10: {"lr": 0.1, "batch_size": 32}})) == []
    assert same_weights(a, b) and b.changes == []


@pytest.mark.parametrize("values, field", [
    ({"lr": 0}, "lr"), ({"lr": -1}, "lr"), ({"lr": float("nan")}, "lr"), ({"lr": "abc"}, "lr"),
    ({"lr": float("inf")}, "lr"), ({"momentum": 1.0}, "momentum"), ({"weight_decay": -0.1}, "weight_decay"),
    ({"batch_size": 0}, "batch_size"), ({"batch_size": 2.5}, "batch_size"), ({"hidden": (8,)}, "hidden"),
    ({"activation": "tanh"}, "activation"), ({"dataset": "mnist"}, "dataset"),
])
def test_an_invalid_change_is_refused_and_changes_nothing(data, values, field):
    s = TrainingSession(TrainConfig(**SMALL), data)
    with pytest.raises(ConfigError) as info:
        s.change(**values)
    assert info.value.field == field
    assert s.live_config == s.config == TrainConfig(**SMALL)
    assert changes(list(s.run())) == []


def test_settings_that_cannot_change_live_say_so(data):
    s = TrainingSession(TrainConfig(**SMALL), data)
    with pytest.raises(ConfigError, match="cannot change while a run trains"):
        s.change(hidden=(8,))
    adam = TrainingSession(TrainConfig(**{**SMALL, "optimizer": "adam"}), data)
    with pytest.raises(ConfigError, match="adam optimizer uses no momentum"):
        adam.change(momentum=0.5)
    nesterov = TrainingSession(TrainConfig(**{**SMALL, "optimizer": "nesterov"}), data)
    with pytest.raises(ConfigError, match="Nesterov"):
        nesterov.change(momentum=0.0)


def test_one_bad_value_refuses_the_whole_change(data):
    s = TrainingSession(TrainConfig(**SMALL), data)
    with pytest.raises(ConfigError):
        s.change(lr=0.3, momentum=2.0)
    assert s.live_config.lr == 0.1


def test_pending_changes_compound(data):
    """x2 twice before the boundary: the second is measured from the first (live_config)."""
    s = TrainingSession(TrainConfig(**SMALL), data)
    s.change(lr=s.live_config.lr * 2)
    s.change(lr=s.live_config.lr * 2)
    events = list(s.run())
    assert [(c.old, c.new) for c in changes(events)] == [(0.1, 0.2), (0.2, 0.4)]
    assert all(c.global_step == 0 for c in changes(events))


@pytest.mark.parametrize("schedule", ["step", "cosine"])
def test_the_schedule_goes_on_from_the_new_base(data, schedule):
    """lr(step) = new base x the schedule's factor at that step."""
    cfg = TrainConfig(**{**SMALL, "schedule": schedule, "step_epochs": 1, "gamma": 0.5})
    plain = TrainingSession(cfg, data, progress_every=1)
    base = [e.lr for e in plain.run() if isinstance(e, ev.BatchProgress)]
    s = TrainingSession(cfg, data, progress_every=1)
    lrs = [e.lr for e in run_with(s, {20: {"lr": 0.4}}) if isinstance(e, ev.BatchProgress)]
    assert lrs[:20] == base[:20]
    assert lrs[20:] == pytest.approx([4 * lr for lr in base[20:]])
    if schedule == "step":
        assert lrs[20] == pytest.approx(0.4 * 0.5) and lrs[-1] == pytest.approx(0.4 * 0.25)


def test_a_batch_size_change_rebatches_the_rest_of_the_epoch(data):
    s = TrainingSession(TrainConfig(**SMALL), data, progress_every=5)
    events = run_with(s, {10: {"batch_size": 64}})
    [c] = changes(events)
    assert (c.field, c.old, c.new, c.step_in_epoch) == ("batch_size", 32, 64, 10)
    ends = [e for e in events if isinstance(e, ev.EpochEnded)]
    # epoch 1: 10 steps of 32 (320 rows), the other 180 rows in 3 batches of 64; then 8 a epoch
    assert [e.global_step for e in ends] == [13, 21, 29]
    progress = [e for e in events if isinstance(e, ev.BatchProgress)]
    assert progress[-1].steps_per_epoch == 8
    assert s.steps_per_epoch == 8
    # deterministic: the same change gives the same weights
    again = TrainingSession(TrainConfig(**SMALL), data, progress_every=5)
    run_with(again, {10: {"batch_size": 64}})
    assert same_weights(s, again)


def test_a_batch_size_change_keeps_the_schedule_clock(data):
    """The step schedule decays per epoch of data whatever the batch size."""
    cfg = TrainConfig(**{**SMALL, "schedule": "step", "step_epochs": 1, "gamma": 0.5})
    s = TrainingSession(cfg, data, progress_every=1)
    ends = [e for e in run_with(s, {5: {"batch_size": 100}}) if isinstance(e, ev.EpochEnded)]
    assert [e.lr for e in ends] == pytest.approx([0.1, 0.05, 0.025])


def test_momentum_and_weight_decay_change(data):
    s = TrainingSession(TrainConfig(**SMALL), data, progress_every=5)
    events = run_with(s, {5: {"momentum": 0.5, "weight_decay": 0.001}})
    assert [(c.field, c.new) for c in changes(events)] == [("momentum", 0.5), ("weight_decay", 0.001)]
    assert s.optimizer.momentum == 0.5 and s.optimizer.weight_decay == 0.001
    assert all(np.isfinite(w).all() for w in s.model.get_weights().values())
    assert events[-1].test_acc > 0.8


def test_momentum_from_zero_gets_a_velocity(data):
    s = TrainingSession(TrainConfig(**{**SMALL, "momentum": 0.0}), data, progress_every=5)
    run_with(s, {5: {"momentum": 0.9}})
    assert "velocity" in s.optimizer.state and s.optimizer.momentum == 0.9


def test_replay_applies_each_change_at_the_same_step_bit_identically(data):
    at = {5: {"lr": 0.3}, 20: {"batch_size": 50, "momentum": 0.8}, 35: {"weight_decay": 0.01, "lr": 0.05}}
    s = TrainingSession(TrainConfig(**SMALL), data, progress_every=1)
    recorded = changes(run_with(s, at))
    assert len(recorded) == 5
    as_stored = [{"epoch": c.epoch, "step": c.step_in_epoch, "field": c.field, "new": c.new} for c in recorded]
    r = TrainingSession(TrainConfig(**SMALL), data, replay=as_stored)
    replayed = changes(list(r.run()))
    assert replayed == recorded and r.unapplied_replay == []
    assert same_weights(s, r)


def test_a_change_from_another_thread_lands_between_steps(data):
    """Whenever the other thread asks, the change is at a boundary: a replay of where it
    landed gives the very same weights."""
    # Epochs enough that the run is still going whenever this thread gets to ask (under load
    # that took longer than four epochs); each run stops where its change lands (stop() from
    # the consumer takes effect before the next step), so both end at the same step.
    cfg = TrainConfig(**{**SMALL, "epochs": 10_000})
    s = TrainingSession(cfg, data, progress_every=1)
    seen = threading.Event()
    result: list[ev.Event] = []

    def train():
        for e in s.run():
            result.append(e)
            if isinstance(e, ev.BatchProgress) and e.global_step == 3:
                seen.set()
            if isinstance(e, ev.HyperparamsChanged):
                s.stop()

    t = threading.Thread(target=train)
    t.start()
    assert seen.wait(30)
    s.change(lr=0.25)
    t.join(60)
    assert not t.is_alive()
    [c] = changes(result)
    r = TrainingSession(cfg, data, replay=[{"epoch": c.epoch, "step": c.step_in_epoch,
                                            "field": "lr", "new": 0.25}])
    for e in r.run():
        if isinstance(e, ev.HyperparamsChanged):
            r.stop()
    assert r.global_step == s.global_step == c.global_step
    assert same_weights(s, r)


def test_checkpoint_round_trip_and_resume_continue_with_the_changed_values(data, tmp_path):
    cfg = TrainConfig(**{**SMALL, "schedule": "step", "step_epochs": 1, "gamma": 0.5, "momentum": 0.9})
    s = TrainingSession(cfg, data, progress_every=1)
    saved = None
    for e in s.run():
        if isinstance(e, ev.BatchProgress) and e.global_step == 20:      # epoch 2, step 4
            s.change(lr=0.2, batch_size=40, weight_decay=0.001)
        if isinstance(e, ev.EpochEnded) and e.epoch == 2:
            saved = save_checkpoint(tmp_path / "e2.npz", s.checkpoint(last_completed_epoch=True))
    ckpt = load_checkpoint(saved)
    assert (ckpt.config.lr, ckpt.config.batch_size, ckpt.config.weight_decay) == (0.2, 40, 0.001)
    assert [c["field"] for c in ckpt.metadata["changes"]] == ["lr", "batch_size", "weight_decay"]
    assert ckpt.metadata["schedule_batch_size"] == 32
    resumed = TrainingSession(ckpt.config, data, resume=ckpt)
    assert resumed.changes == ckpt.metadata["changes"] and resumed.schedule_batch == 32
    events = list(resumed.run())
    assert same_weights(s, resumed)
    [end3] = [e for e in events if isinstance(e, ev.EpochEnded)]
    assert end3.lr == pytest.approx(0.2 * 0.25)


def test_the_last_epoch_checkpoint_has_the_settings_of_that_epoch_end(data):
    s = TrainingSession(TrainConfig(**SMALL), data, progress_every=1)
    for e in s.run():
        if isinstance(e, ev.HyperparamsChanged):
            good = s.checkpoint(last_completed_epoch=True)
            assert good.config.lr == 0.1 and "changes" not in good.metadata
            now = s.checkpoint()
            assert now.config.lr == 0.5 and len(now.metadata["changes"]) == 1
            s.stop()
        if isinstance(e, ev.BatchProgress) and e.global_step == 20:
            s.change(lr=0.5)


def test_a_divergence_after_a_change_goes_back_to_the_settings_of_the_last_epoch(data):
    s = TrainingSession(TrainConfig(**SMALL), data, progress_every=1)
    events = run_with(s, {20: {"lr": 5000.0}})
    assert any(isinstance(e, ev.Diverged) for e in events)
    assert "lr=5000" in next(e for e in events if isinstance(e, ev.Diverged)).message
    assert s.config.lr == 0.1 and s.changes == []
    assert s.checkpoint().config.lr == 0.1


def _threaded(session: TrainingSession):
    q: queue.Queue = queue.Queue()

    def train():
        for e in session.run():
            q.put(e)
        q.put(None)

    t = threading.Thread(target=train, daemon=True)
    t.start()
    return q, t


def _until(q: queue.Queue, kind: type, timeout: float = 20) -> list[ev.Event]:
    out = []
    while True:
        e = q.get(timeout=timeout)
        assert e is not None, f"the run ended before a {kind.__name__}: {out}"
        out.append(e)
        if isinstance(e, kind):
            return out


def test_paused_step_once_and_epoch_once(data):
    s = TrainingSession(TrainConfig(**SMALL), data, progress_every=5)
    s.pause()
    q, t = _threaded(s)
    first = _until(q, ev.Paused)
    assert (first[-1].epoch, first[-1].step) == (1, 0)
    assert s.step_once()
    one = _until(q, ev.Paused)
    assert [type(e) for e in one] == [ev.BatchProgress, ev.Paused]
    assert one[0].points == ((1, one[0].loss),) and (one[-1].epoch, one[-1].step) == (1, 1)
    s.change(lr=0.3)                            # while paused: applied at once, still paused
    changed = q.get(timeout=10)
    assert isinstance(changed, ev.HyperparamsChanged) and changed.global_step == 1
    assert s.epoch_once()
    rest = _until(q, ev.Paused)
    assert [type(e) for e in rest][-2:] == [ev.EpochEnded, ev.Paused]
    assert (rest[-1].epoch, rest[-1].step) == (2, 0) and rest[-2].global_step == 16
    assert s.epoch_once()                       # at an epoch's start: one whole epoch
    whole = _until(q, ev.Paused)
    assert whole[-2].epoch == 2 and whole[-2].global_step == 32 and whole[-1].epoch == 3
    assert not any(isinstance(e, ev.Resumed) for e in one + rest + whole)
    assert s.paused
    s.stop()
    t.join(10)
    assert not s.step_once() or True         # no run waits any more: harmless


def test_step_once_needs_a_pause(data):
    s = TrainingSession(TrainConfig(**SMALL), data)
    assert not s.step_once() and not s.epoch_once()


def test_resume_after_step_once_runs_on(data):
    s = TrainingSession(TrainConfig(**{**SMALL, "epochs": 1}), data, progress_every=5)
    s.pause()
    q, t = _until_paused = _threaded(s)
    _until(q, ev.Paused)
    s.step_once()
    _until(q, ev.Paused)
    s.resume()
    rest = _until(q, ev.Finished)
    assert isinstance(rest[0], ev.Resumed) and math.isfinite(rest[-1].test_loss)
    t.join(10)
