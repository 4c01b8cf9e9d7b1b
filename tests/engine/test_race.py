"""The optimizer race: identical start, identical batch order, racers independent."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from engine import events as ev
from engine.config import TrainConfig
from engine.errors import ConfigError
from engine.race import (
    DEFAULT_OPTIMIZERS,
    Race,
    RaceDiverged,
    RaceEpoch,
    RaceFinished,
    RaceStarted,
    RaceSteps,
    default_lr,
    parse_lrs,
    parse_optimizers,
)
from engine.training import TrainingSession
from tests.factories import make_dataset

CFG = TrainConfig(hidden=(16,), batch_size=32, epochs=2, val_size=100, dataset="synthetic", seed=3)


@pytest.fixture(scope="module")
def data():
    return make_dataset()


def test_every_racer_starts_from_the_same_weights(data):
    race = Race(CFG, data)
    assert [r.name for r in race.racers] == list(DEFAULT_OPTIMIZERS)
    first = race.racers[0].model.params
    for r in race.racers:
        for k, w in race.initial_weights.items():
            np.testing.assert_array_equal(r.model.params[k], w)
            assert r.model.params[k] is not first[k] or r is race.racers[0]   # own arrays
    # and that start is what a plain run of this config starts from
    session = TrainingSession(CFG, data)
    for k, w in session.model.params.items():
        np.testing.assert_array_equal(race.initial_weights[k], w)


@pytest.mark.parametrize("augment", ["none", "shift"])
def test_every_racer_sees_the_same_batch_index_sequence(data, augment):
    race = Race(CFG.replace(augment=augment), data, keep_order=True)
    events = list(race.run())
    assert isinstance(events[-1], RaceFinished) and events[-1].reason == "completed"
    ref = race.racers[0].kept_order
    assert ref is not None and len(ref) == 2 * race.steps_per_epoch
    for r in race.racers[1:]:
        assert r.kept_order is not None and len(r.kept_order) == len(ref)
        assert all(np.array_equal(a, b) for a, b in zip(ref, r.kept_order))
        assert r.order_digest == race.racers[0].order_digest == events[-1].batch_order
    # each epoch is a permutation of the training rows, and the two epochs differ
    spe = race.steps_per_epoch
    e1, e2 = np.concatenate(ref[:spe]), np.concatenate(ref[spe:])
    n = len(race.y_train)
    assert sorted(e1) == list(range(n)) and sorted(e2) == list(range(n))
    assert not np.array_equal(e1, e2)


@pytest.mark.parametrize("name", ["momentum", "rmsprop"])
def test_a_racer_is_bit_identical_to_a_plain_run(data, name):
    """Same seed, same generator use: the race's racer == TrainingSession with that optimizer."""
    cfg = CFG.replace(augment="shift")
    race = Race(cfg, data, optimizers=("sgd", name))
    list(race.run())
    lr = default_lr(name)
    session = TrainingSession(cfg.replace(optimizer=name, lr=lr), data)
    plain = [e for e in session.run() if isinstance(e, ev.EpochEnded)]
    racer = race.racers[1]
    for k, w in session.model.params.items():
        np.testing.assert_array_equal(racer.model.params[k], w)
    assert [h["val_acc"] for h in racer.history] == [e.val_acc for e in plain]


def test_events_per_racer_and_ranking(data):
    events = list(Race(CFG, data, optimizers=("sgd", "adam"), lrs={"adam": 0.01}, progress_every=5).run())
    start = events[0]
    assert isinstance(start, RaceStarted)
    assert start.optimizers == ("sgd", "adam") and start.lrs == (0.1, 0.01) and start.seed == 3
    steps = [e for e in events if isinstance(e, RaceSteps)]
    assert {e.optimizer for e in steps} == {"sgd", "adam"}
    for name in ("sgd", "adam"):
        pts = [p for e in steps if e.optimizer == name for p in e.points]
        assert [s for s, _ in pts] == list(range(1, 2 * start.steps_per_epoch + 1))
    ends = [(e.optimizer, e.epoch) for e in events if isinstance(e, RaceEpoch)]
    assert ends == [("sgd", 1), ("adam", 1), ("sgd", 2), ("adam", 2)]   # interleaved
    done = events[-1]
    assert isinstance(done, RaceFinished)
    assert [r.rank for r in done.results] == [1, 2]
    accs = [r.val_acc for r in done.results]
    assert accs == sorted(accs, reverse=True)
    assert all(r.test_acc is not None and r.epochs_done == 2 for r in done.results)


def test_a_diverging_racer_drops_out_and_the_others_finish(data):
    events = list(Race(CFG, data, optimizers=("sgd", "momentum"), lrs={"sgd": 1e5}).run())
    div = [e for e in events if isinstance(e, RaceDiverged)]
    assert [e.optimizer for e in div] == ["sgd"] and "smaller learning rate" in div[0].message
    done = events[-1]
    assert isinstance(done, RaceFinished) and done.reason == "completed"
    assert [(r.optimizer, r.diverged) for r in done.results] == [("momentum", False), ("sgd", True)]
    assert [e.epoch for e in events if isinstance(e, RaceEpoch) and e.optimizer == "momentum"] == [1, 2]


def test_stop_from_another_thread_ends_the_race(data):
    race = Race(CFG.replace(epochs=50), data, optimizers=("sgd", "adam"))
    events = []
    for e in race.run():
        events.append(e)
        if isinstance(e, RaceEpoch) and e.epoch == 1 and e.optimizer == "adam":
            threading.Thread(target=race.stop).start()
    done = events[-1]
    assert isinstance(done, RaceFinished) and done.reason == "stopped"
    assert max(e.epoch for e in events if isinstance(e, RaceEpoch)) < 50


def test_parsers():
    assert parse_optimizers("SGD, adam") == ("sgd", "adam")
    assert parse_lrs("adam=0.001,sgd=0.1", ("sgd", "adam")) == {"adam": 0.001, "sgd": 0.1}
    assert parse_lrs("0.01", ("sgd", "adam")) == {"sgd": 0.01, "adam": 0.01}
    for bad in ("", "sgd,,adam", "sgd,bogus", "sgd,sgd"):
        with pytest.raises(ConfigError) as info:
            parse_optimizers(bad)
        assert info.value.field == "optimizers"
    for bad in ("adam=x", "adam=0", "nesterov=0.1", "adam=0.1,adam=0.2", "0.1,0.2", "adam=-1", "adam=nan"):
        with pytest.raises(ConfigError) as info:
            parse_lrs(bad, ("sgd", "adam"))
        assert info.value.field == "lr"


def test_bad_race_setup_refused(data):
    with pytest.raises(ConfigError):
        Race(CFG, data, optimizers=())
    with pytest.raises(ConfigError):
        Race(CFG, data, optimizers=("sgd",), lrs={"adam": 0.1})
    with pytest.raises(ConfigError):
        Race(CFG.replace(val_size=5000), data)


def test_without_a_validation_set_the_ranking_uses_training_accuracy(data):
    events = list(Race(CFG.replace(val_size=0, epochs=1), data, optimizers=("sgd", "adam")).run())
    ends = [e for e in events if isinstance(e, RaceEpoch)]
    assert all(e.val_acc is None and e.val_loss is None for e in ends)
    done = events[-1]
    assert isinstance(done, RaceFinished)
    accs = [r.train_acc for r in done.results]
    assert accs == sorted(accs, reverse=True)
