"""tui.runner: engine events -> throttled, immutable UI updates (a list stands in for the app)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from engine import events as ev
from engine.errors import ConfigError
from tests.tui.fakes import FakeClock, FakeSession
from tui import runner as r


def run_fake(session: FakeSession, **kwargs) -> list:
    posted: list = []
    runner = r.TrainingRunner(posted.append, **kwargs)
    x = np.zeros((20, 4, 4), np.uint8)
    y = (np.arange(20) % 10).astype(np.uint8)
    y[3] = 5  # image 3 is predicted 3 by FakeSession: one mistake
    runner.run(lambda: (session, x, y))
    return posted


def kinds(posted: list) -> list[str]:
    return [type(u).__name__ for u in posted]


def done_of(posted: list):
    return [u for u in posted if isinstance(u, ev.Finished)][-1]


def test_full_run_posts_each_kind_in_order():
    posted = run_fake(FakeSession(epochs=2, steps=10, every=5), throttle_s=0.0)
    k = [kind for kind in kinds(posted) if kind != "Predictions"]   # the preview thread's own pace
    assert k[0] == "RunStarted"
    assert k[-1] == "Finished"
    assert k.count("EpochEnded") == 2
    labels = [u.label for u in posted if isinstance(u, r.Predictions)]
    assert labels[-1] == "epoch 2" and labels in (["epoch 1", "epoch 2"], ["epoch 2"])  # newest last
    assert done_of(posted).test_acc == 0.8 and done_of(posted).reason == "completed"
    # every step's loss arrives exactly once, in order
    steps = [s for u in posted if isinstance(u, r.Points) for s, _ in u.points]
    assert steps == list(range(1, 21))


def test_throttle_batches_points_but_loses_none():
    clock = FakeClock()
    posted: list = []
    runner = r.TrainingRunner(posted.append, throttle_s=1.0, clock=clock)
    runner.handle(ev.RunStarted(config={"epochs": 1}, n_train=1, n_val=0, n_test=0,
                                steps_per_epoch=100, dataset="d"))
    for i in range(1, 11):
        clock.t = i * 0.05       # 10 progress events within half a second
        runner.handle(ev.BatchProgress(epoch=1, step=i, steps_per_epoch=100, global_step=i,
                                       loss=1.0, lr=0.1, points=((i, 1.0),)))
    assert [type(u) for u in posted] == [ev.RunStarted]     # nothing yet: throttled
    clock.t = 1.2
    runner.handle(ev.BatchProgress(epoch=1, step=11, steps_per_epoch=100, global_step=11,
                                   loss=1.0, lr=0.1, points=((11, 1.0),)))
    pts = [u for u in posted if isinstance(u, r.Points)]
    assert len(pts) == 1 and [s for s, _ in pts[0].points] == list(range(1, 12))
    progress = [u for u in posted if isinstance(u, r.Progress)]
    assert len(progress) == 1 and progress[0].event.step == 11 and progress[0].epochs == 1
    assert progress[0].eta_s == pytest.approx((100 - 11) * 1.2 / 11)


def test_epoch_end_flushes_pending_points_first():
    clock = FakeClock()
    posted: list = []
    runner = r.TrainingRunner(posted.append, throttle_s=10.0, clock=clock)
    runner.handle(ev.BatchProgress(epoch=1, step=1, steps_per_epoch=1, global_step=1, loss=0.5,
                                   lr=0.1, points=((1, 0.5),)))
    runner.handle(ev.EpochEnded(epoch=1, epochs=1, train_loss=0.5, train_acc=0.9, val_loss=None,
                                val_acc=None, seconds=1.0, samples_per_s=10.0, lr=0.1, global_step=1))
    assert kinds(posted) == ["Points", "Progress", "EpochEnded"]


def test_predictions_are_read_only_copies_and_count_mistakes():
    posted = run_fake(FakeSession(epochs=1), throttle_s=0.0)
    preds = [u for u in posted if isinstance(u, r.Predictions)][0]
    assert preds.label == "epoch 1"
    assert preds.predicted.tolist() == [i % 10 for i in range(20)]
    assert preds.accuracy == pytest.approx(19 / 20)
    assert np.allclose(preds.confidence, 0.9)
    for arr in (preds.predicted, preds.confidence, preds.probabilities):
        assert not arr.flags.writeable


def test_preview_limit_bounds_prediction_work():
    posted = run_fake(FakeSession(epochs=1), throttle_s=0.0, preview_limit=5)
    preds = [u for u in posted if isinstance(u, r.Predictions)][0]
    assert len(preds.predicted) == 5


def test_stop_before_and_during_run():
    session = FakeSession(epochs=5)
    posted: list = []
    runner = r.TrainingRunner(posted.append, throttle_s=0.0)
    runner.stop()                                    # before the session even exists
    runner.run(lambda: (session, np.zeros((2, 2, 2), np.uint8), np.zeros(2, np.uint8)))
    assert session.stopped.is_set()
    assert done_of(posted).reason == "stopped"
    assert any(isinstance(u, ev.Stopped) for u in posted)
    assert sum(isinstance(u, r.Predictions) for u in posted) == 1   # final weights shown


def test_engine_events_pass_through_as_they_are():
    posted: list = []
    runner = r.TrainingRunner(posted.append)
    events = [ev.Paused(epoch=1, step=3), ev.Resumed(epoch=1, step=3)]
    for e in events:
        runner.handle(e)
    assert posted == events and all(a is b for a, b in zip(posted, events))


def test_diverged_and_failed_events():
    posted: list = []
    runner = r.TrainingRunner(posted.append)
    runner.handle(ev.Diverged(epoch=1, step=2, loss=float("nan"), message="diverged at epoch 1",
                              restored_epoch=0))
    runner.handle(ev.Failed(message="bad things"))
    assert isinstance(posted[0], ev.Diverged) and posted[0].message == "diverged at epoch 1"
    assert posted[1] == ev.Failed(message="bad things")


@pytest.mark.expect_internal_error          # the RuntimeError below is logged as one
def test_errors_opening_or_running_become_failures():
    posted: list = []

    def bad_config():
        raise ConfigError("val_size", "too big")

    r.TrainingRunner(posted.append).run(bad_config)
    assert posted == [r.Failure("val_size: too big", field="val_size")]

    class Exploding(FakeSession):
        def run(self):
            yield from super().run()
            raise RuntimeError("boom")

    posted.clear()
    exploding = Exploding(epochs=1)
    r.TrainingRunner(posted.append).run(
        lambda: (exploding, np.zeros((1, 2, 2), np.uint8), np.zeros(1, np.uint8)))
    failure = [u for u in posted if isinstance(u, r.Failure)][-1]
    assert "boom" in failure.message and "RuntimeError" in failure.details
    assert exploding.stopped.is_set()          # nothing runs on unwatched (e.g. in a child)


def test_make_predictions_rejects_bad_shapes():
    with pytest.raises(ValueError):
        r.make_predictions(np.zeros(3), None, "x")
    empty = r.make_predictions(np.zeros((0, 10)), None, "x")
    assert len(empty.predicted) == 0 and empty.accuracy is None


def test_evaluate_checkpoint_on_a_real_model():
    from engine.errors import CheckpointError
    from engine.training import TrainConfig, TrainingSession
    from tests.factories import make_dataset

    ds = make_dataset(n_train=300, n_test=50, side=8)
    session = TrainingSession(TrainConfig(dataset="synthetic", hidden=(8,), epochs=1, val_size=0), ds)
    finished = [e for e in session.run() if isinstance(e, ev.Finished)][0]
    preds, acc = r.evaluate_checkpoint(session.checkpoint(), ds, preview_limit=20)
    assert acc == pytest.approx(finished.test_acc)
    assert len(preds.predicted) == 20 and preds.label == "loaded model"
    other = make_dataset(n_train=10, n_test=10, side=6)
    with pytest.raises(CheckpointError, match="expects 64 inputs"):
        r.evaluate_checkpoint(session.checkpoint(), other, preview_limit=5)


def test_the_run_goes_on_while_the_preview_is_predicted_and_waits_for_it_at_the_end():
    """Predictions run beside the event loop: "Finished" does not wait for them, but the last
    ones land before run() returns (a next run must never get them late)."""
    import threading

    release = threading.Event()
    predicting = threading.Event()

    class SlowPreview(FakeSession):
        def predict_proba(self, x):
            predicting.set()
            release.wait(10)
            return super().predict_proba(x)

    posted: list = []
    runner = r.TrainingRunner(posted.append, throttle_s=0.0)
    x = np.zeros((20, 4, 4), np.uint8)
    worker = threading.Thread(target=runner.run, args=(lambda: (SlowPreview(epochs=1), x, None),))
    worker.start()
    assert predicting.wait(5)
    deadline = time.monotonic() + 5
    while not any(isinstance(u, ev.Finished) for u in posted):
        assert time.monotonic() < deadline, kinds(posted)
        time.sleep(0.005)
    assert worker.is_alive() and not any(isinstance(u, r.Predictions) for u in posted)
    release.set()
    worker.join(5)
    assert not worker.is_alive() and kinds(posted)[-1] == "Predictions"


def test_an_abandoned_run_makes_no_more_predictions():
    import threading

    gate = threading.Event()
    session = FakeSession(epochs=50, steps=2, every=1, gate=gate)
    posted: list = []
    runner = r.TrainingRunner(posted.append, throttle_s=0.0)
    worker = threading.Thread(target=runner.run,
                              args=(lambda: (session, np.zeros((5, 2, 2), np.uint8), None),))
    worker.start()
    runner.abandon()
    gate.set()
    worker.join(5)
    assert not worker.is_alive() and session.predict_calls == 0
