"""Live changes across the training process's wire: the Change message and the STEP/EPOCH
actions reach the child's session; the HyperparamsChanged comes back in the run's stream."""

from __future__ import annotations

import pickle
import threading
import time

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from engine import events as ev
from engine import wire
from engine.errors import ConfigError
from engine.trainer_process import TrainerProcess
from engine.training import TrainConfig, TrainingSession
from tests.factories import make_dataset

# Enough epochs that the pause (asked as the run opens) lands well before the last one: an
# epoch here takes ~10 ms, and epoch_once must end one that is not the run's last.
CONFIG = TrainConfig(dataset="synthetic", hidden=(16,), epochs=12, batch_size=32, val_size=100, seed=3, lr=0.05)


@pytest.fixture(scope="module")
def data():
    return make_dataset(n_train=800, n_test=200, side=8)


@pytest.fixture
def proc():
    p = TrainerProcess()
    yield p
    p.close()


def wait_for(got: list, kind: type, after: int = 0, timeout: float = 20.0) -> int:
    """Index of the first ``kind`` event in ``got`` at or after ``after``."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for i in range(after, len(got)):
            if isinstance(got[i], kind):
                return i
        time.sleep(0.01)
    raise AssertionError(f"no {kind.__name__} after {after}: {got[after:]}")


def test_the_change_message_pickles():
    msg = wire.Change(4, {"lr": 0.1, "batch_size": 16})
    assert pickle.loads(pickle.dumps(msg)) == msg
    assert wire.Action("step") is wire.Action.STEP and wire.Action("epoch") is wire.Action.EPOCH


def test_a_change_step_and_epoch_through_the_child_replay_identically(proc, data):
    session = proc.open_session(CONFIG, data, progress_every=1)
    session.pause()          # right behind the open on the same pipe: the child pauses at once
    got: list = []
    reader = threading.Thread(target=lambda: got.extend(session.run()))
    reader.start()
    p0 = wait_for(got, ev.Paused)
    assert got[p0].epoch < CONFIG.epochs, f"paused too late to test epoch_once: {got[p0]}"
    with pytest.raises(ConfigError) as info:           # refused here, nothing sent
        session.change(lr=0)
    assert info.value.field == "lr" and session.live_config.lr == 0.05
    assert session.change(lr=0.1, batch_size=20).lr == 0.1
    c = wait_for(got, ev.HyperparamsChanged, p0)
    assert isinstance(got[c + 1], ev.HyperparamsChanged)
    assert session.step_once()
    p1 = wait_for(got, ev.Paused, c + 2)
    assert got[p1].step == got[p0].step + 1 or got[p1].epoch == got[p0].epoch + 1
    assert session.epoch_once()
    e = wait_for(got, ev.EpochEnded, p1)
    p2 = wait_for(got, ev.Paused, e)
    assert got[p2].step == 0 and session.paused
    session.resume()
    reader.join(60)
    assert isinstance(got[-1], ev.Finished) and got[-1].reason == "completed"
    changed = [x for x in got if isinstance(x, ev.HyperparamsChanged)]
    assert [(x.field, x.new) for x in changed] == [("lr", 0.1), ("batch_size", 20)]
    with threadpool_limits(limits=1):                  # the child's setting: same arithmetic
        replay = TrainingSession(CONFIG, data, replay=[
            {"epoch": x.epoch, "step": x.step_in_epoch, "field": x.field, "new": x.new} for x in changed])
        assert [x for x in replay.run() if isinstance(x, ev.HyperparamsChanged)] == changed
    child = session.checkpoint().model.get_weights()
    here = replay.model.get_weights()
    assert all(np.array_equal(child[k], here[k]) for k in here)
    assert session.checkpoint().config.lr == 0.1
