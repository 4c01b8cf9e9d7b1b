"""The LR range test on the bundled MNIST sample."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest

from engine import events as ev
from engine.config import TrainConfig
from engine.datasets import load_dataset
from engine.errors import ConfigError
from engine.lr_find import EXPLODE_FACTOR, LRFinder, lr_find, summarise
from engine.training import TrainingSession

CFG = TrainConfig(hidden=(128, 64), val_size=2000, batch_size=64, optimizer="momentum", dataset="mnist-sample")


@pytest.fixture(scope="module")
def sample():
    return load_dataset("mnist-sample")


@pytest.fixture(scope="module")
def found(sample):
    return lr_find(CFG, sample)


def test_lrs_grow_geometrically_from_start(found):
    lrs = np.asarray(found.lrs)
    assert lrs[0] == pytest.approx(1e-6)
    ratios = lrs[1:] / lrs[:-1]
    np.testing.assert_allclose(ratios, (10 / 1e-6) ** (1 / 99), rtol=1e-9)
    assert len(found.losses) == len(found.raw_losses) == len(lrs)


def test_stops_when_the_loss_explodes(found):
    assert found.stopped == "exploded" and len(found.lrs) < 100
    assert found.losses[-1] > EXPLODE_FACTOR * min(found.losses[:-1])
    assert all(math.isfinite(v) for v in found.losses)


def test_suggestion_is_in_range_and_trains(sample, found):
    assert found.suggestion is not None and found.min_lr is not None
    assert 1e-6 < found.suggestion < found.lrs[-1]
    assert found.suggestion == pytest.approx(found.min_lr / 10)
    assert found.losses[found.lrs.index(found.min_lr)] == min(found.losses)
    # an epoch at the suggested lr takes the loss well below where it started (ln 10 = 2.30)
    session = TrainingSession(CFG.replace(lr=found.suggestion, epochs=1), sample)
    end = [e for e in session.run() if isinstance(e, ev.EpochEnded)][0]
    assert end.val_loss is not None and end.val_loss < 0.5 and end.val_acc > 0.85
    # ... and better than an lr ten times above the minimum (where the loss explodes)
    worse = TrainingSession(CFG.replace(lr=found.min_lr * 10, epochs=1), sample)
    events = list(worse.run())
    ended = [e for e in events if isinstance(e, ev.EpochEnded)]
    assert not ended or ended[0].val_loss > end.val_loss


def test_reaches_the_end_without_explosion_and_can_be_stopped(sample):
    done = lr_find(CFG, sample, start_lr=1e-5, end_lr=1e-3, steps=20)
    assert done.stopped == "end" and len(done.lrs) == 20 and done.lrs[-1] == pytest.approx(1e-3)
    finder = LRFinder(CFG, sample)
    seen = []
    for p in finder.run():
        seen.append(p)
        if p.step == 4:
            threading.Thread(target=finder.stop).start()
            threading.Event().wait(0.05)
    assert finder.result is not None and finder.result.stopped == "stopped" and len(seen) <= 6


def test_too_few_points_give_no_suggestion():
    r = summarise([1e-6, 1e-5, 1e-4], [2.3, 2.2, 99.0], [2.3, 2.2, 99.0], "exploded", "sgd")
    assert r.suggestion is None and "no suggestion" in r.message


@pytest.mark.parametrize("kwargs, field", [
    (dict(start_lr=0.0), "start_lr"), (dict(end_lr=1e-7), "end_lr"), (dict(steps=1), "steps"),
    (dict(start_lr=float("nan")), "start_lr"),
])
def test_bad_ranges_refused(sample, kwargs, field):
    with pytest.raises(ConfigError) as info:
        LRFinder(CFG, sample, **kwargs)
    assert info.value.field == field
