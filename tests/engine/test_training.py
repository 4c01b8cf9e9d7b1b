"""The training session: events, reproducibility, divergence, pause/resume/stop, config."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from engine import events as ev
from engine.errors import ConfigError
from engine.training import TrainConfig, TrainingSession, estimate_memory_bytes, parse_layers
from tests.factories import make_dataset

SMALL = dict(hidden=(32,), batch_size=32, epochs=3, val_size=100, lr=0.1, dataset="synthetic")


def run_all(session: TrainingSession) -> list[ev.Event]:
    return list(session.run())


@pytest.fixture(scope="module")
def data():
    return make_dataset()


def test_events_of_a_complete_run(data):
    events = run_all(TrainingSession(TrainConfig(**SMALL), data, progress_every=5))
    kinds = [type(e).__name__ for e in events]
    assert kinds[0] == "RunStarted"
    assert kinds[-1] == "Finished"
    epochs = [e for e in events if isinstance(e, ev.EpochEnded)]
    assert [e.epoch for e in epochs] == [1, 2, 3]
    started = events[0]
    assert started.n_train == 500 and started.n_val == 100 and started.n_test == 200
    assert started.steps_per_epoch == 16  # ceil(500 / 32)
    progress = [e for e in events if isinstance(e, ev.BatchProgress)]
    # every training step appears exactly once in the chart points
    steps = [s for p in progress for s, _ in p.points]
    assert steps == list(range(1, 3 * 16 + 1))
    last = epochs[-1]
    assert last.val_acc is not None and 0.0 <= last.val_acc <= 1.0
    assert last.samples_per_s > 0 and last.seconds > 0
    finished = events[-1]
    assert finished.reason == "completed" and finished.epochs_done == 3
    assert finished.test_acc > 0.9, "the synthetic task is easy; a working MLP learns it"
    assert len(finished.per_class_acc) == 10


def test_loss_falls(data):
    events = run_all(TrainingSession(TrainConfig(**SMALL), data))
    losses = [e.train_loss for e in events if isinstance(e, ev.EpochEnded)]
    assert losses[-1] < losses[0]


def test_same_seed_identical_weights_different_seed_differs(data):
    def weights(seed):
        s = TrainingSession(TrainConfig(**{**SMALL, "seed": seed}), data)
        run_all(s)
        return s.model.get_weights()

    a, b, c = weights(7), weights(7), weights(8)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert any(not np.array_equal(a[k], c[k]) for k in a)


def test_val_size_zero_has_no_validation(data):
    events = run_all(TrainingSession(TrainConfig(**{**SMALL, "val_size": 0, "epochs": 1}), data))
    epoch = next(e for e in events if isinstance(e, ev.EpochEnded))
    assert epoch.val_loss is None and epoch.val_acc is None


def test_val_size_too_large_is_refused(data):
    with pytest.raises(ConfigError) as info:
        TrainingSession(TrainConfig(**{**SMALL, "val_size": 600}), data)
    assert info.value.field == "val_size"


def test_divergence_is_an_event_and_keeps_last_good_weights(data):
    cfg = TrainConfig(**{**SMALL, "lr": 1e4, "activation": "relu", "epochs": 5})
    s = TrainingSession(cfg, data)
    initial = s.model.get_weights()
    events = run_all(s)
    div = [e for e in events if isinstance(e, ev.Diverged)]
    assert len(div) == 1
    d = div[0]
    assert "diverged at epoch" in d.message and "try a smaller learning rate" in d.message
    assert f"epoch {d.epoch} step {d.step}" in d.message
    assert events[-1].reason == "diverged"
    w = s.model.get_weights()
    assert all(np.all(np.isfinite(v)) for v in w.values())
    if d.restored_epoch == 0:
        assert all(np.array_equal(w[k], initial[k]) for k in w)


def test_a_new_session_runs_after_divergence(data):
    run_all(TrainingSession(TrainConfig(**{**SMALL, "lr": 1e4}), data))
    events = run_all(TrainingSession(TrainConfig(**SMALL), data))
    assert events[-1].reason == "completed"


def test_stop_from_another_thread(data):
    cfg = TrainConfig(**{**SMALL, "epochs": 1000, "batch_size": 8})
    s = TrainingSession(cfg, data, progress_every=1)
    seen = []
    for e in s.run():
        seen.append(e)
        if isinstance(e, ev.EpochEnded) and e.epoch == 2:
            threading.Thread(target=s.stop).start()
    assert any(isinstance(e, ev.Stopped) for e in seen)
    fin = seen[-1]
    assert isinstance(fin, ev.Finished) and fin.reason == "stopped"
    assert 2 <= fin.epochs_done < 1000


def test_pause_and_resume_from_another_thread(data):
    cfg = TrainConfig(**{**SMALL, "epochs": 2})
    s = TrainingSession(cfg, data, progress_every=1)
    gen = s.run()
    kinds = []
    paused_at = None
    for e in gen:
        kinds.append(type(e).__name__)
        if isinstance(e, ev.BatchProgress) and e.global_step == 3 and paused_at is None:
            s.pause()
            paused_at = e.global_step
        if isinstance(e, ev.Paused):
            assert s.paused
            before = s.global_step
            # while paused, no steps happen; resume from another thread after a while
            timer = threading.Timer(0.3, s.resume)
            timer.start()
        if isinstance(e, ev.Resumed):
            assert s.global_step == before
    assert "Paused" in kinds and "Resumed" in kinds
    assert kinds[-1] == "Finished"
    assert kinds.index("Paused") < kinds.index("Resumed")


def test_pause_then_stop_ends_the_run(data):
    s = TrainingSession(TrainConfig(**{**SMALL, "epochs": 50}), data, progress_every=1)
    out = []
    for e in s.run():
        out.append(e)
        if isinstance(e, ev.BatchProgress) and e.global_step == 2:
            s.pause()
        if isinstance(e, ev.Paused):
            threading.Timer(0.2, s.stop).start()
    assert out[-1].reason == "stopped"


def test_paused_session_run_resumes_same_weights_as_uninterrupted(data):
    cfg = TrainConfig(**{**SMALL, "epochs": 2})
    a = TrainingSession(cfg, data, progress_every=1)
    for e in a.run():
        if isinstance(e, ev.BatchProgress) and e.global_step == 5:
            a.pause()
            threading.Timer(0.1, a.resume).start()
    b = TrainingSession(cfg, data)
    run_all(b)
    wa, wb = a.model.get_weights(), b.model.get_weights()
    assert all(np.array_equal(wa[k], wb[k]) for k in wa)


def test_predict_proba_from_another_thread_while_training(data):
    s = TrainingSession(TrainConfig(**{**SMALL, "epochs": 3}), data, progress_every=1)
    results = []

    def probe():
        results.append(s.predict_proba(data.x_test[:50]))

    threads = []
    for e in s.run():
        if isinstance(e, ev.BatchProgress) and e.global_step % 10 == 0:
            t = threading.Thread(target=probe)
            t.start()
            threads.append(t)
    for t in threads:
        t.join()
    assert results
    for p in results:
        assert p.shape == (50, 10)
        np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-4)


def test_checkpoint_resume_continues_identically(data):
    """Train 4 epochs straight == train 2, checkpoint, resume in a new session for 2 more."""
    cfg = TrainConfig(**{**SMALL, "epochs": 4})
    full = TrainingSession(cfg, data)
    run_all(full)

    first = TrainingSession(cfg, data)
    for e in first.run():
        if isinstance(e, ev.EpochEnded) and e.epoch == 2:
            first.stop()
    ckpt = first.checkpoint()
    assert ckpt.metadata["epochs_done"] == 2
    second = TrainingSession(cfg, data, resume=ckpt)
    events = run_all(second)
    assert [e.epoch for e in events if isinstance(e, ev.EpochEnded)] == [3, 4]
    assert events[0].start_epoch == 2
    wf, ws = full.model.get_weights(), second.model.get_weights()
    assert all(np.array_equal(wf[k], ws[k]) for k in wf)
    assert len(second.history) == 4


def test_memory_estimate_refuses_huge_network(data):
    cfg = TrainConfig(**{**SMALL, "hidden": (100_000, 100_000)})
    assert estimate_memory_bytes(cfg, 64, 10) > 10 * 1024**3
    with pytest.raises(ConfigError) as info:
        TrainingSession(cfg, data)
    assert "GiB" in str(info.value) and info.value.field == "hidden"


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"lr": 0.0}, "lr"),
        ({"lr": float("nan")}, "lr"),
        ({"lr": -1.0}, "lr"),
        ({"batch_size": 0}, "batch_size"),
        ({"epochs": 0}, "epochs"),
        ({"activation": "softsign"}, "activation"),
        ({"loss": "hinge"}, "loss"),
        ({"optimizer": "adadelta"}, "optimizer"),
        ({"hidden": (0,)}, "hidden"),
        ({"momentum": 1.0}, "momentum"),
        ({"val_size": -1}, "val_size"),
        ({"weight_decay": -0.1}, "weight_decay"),
        ({"batch_size": 2.5}, "batch_size"),
    ],
)
def test_config_rejects_bad_values(changes, field):
    with pytest.raises(ConfigError) as info:
        TrainConfig(**changes)
    assert info.value.field == field
    assert str(info.value).startswith(field)


def test_config_round_trips_through_dict():
    cfg = TrainConfig(hidden=(30,), activation="sigmoid", loss="mse", lr=3.0)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    assert TrainConfig.from_dict({**cfg.to_dict(), "unknown": 1}) == cfg


@pytest.mark.parametrize(
    "text, expected",
    [("128,64", (128, 64)), ("128, 64", (128, 64)), ("30", (30,)), ("512 256 128", (512, 256, 128)), ("", ()),
     ("none", ())],
)
def test_parse_layers(text, expected):
    assert parse_layers(text) == expected


@pytest.mark.parametrize("text", ["128,,64", "12x", "128,-4", "1.5", "a,b"])
def test_parse_layers_rejects(text):
    with pytest.raises(ConfigError) as info:
        parse_layers(text)
    assert info.value.field == "hidden"


def _lock_is_free(session: TrainingSession) -> bool:
    """Whether another thread can take the session's step lock right now."""
    got = []

    def take() -> None:
        ok = session._lock.acquire(timeout=2)
        got.append(ok)
        if ok:
            session._lock.release()

    t = threading.Thread(target=take)
    t.start()
    t.join()
    return got[0]


@pytest.mark.parametrize("lr, kind", [(1e4, ev.Diverged), (5.0, ev.Diverged), (0.1, ev.EpochEnded)])
def test_no_event_is_yielded_while_the_step_lock_is_held(data, lr, kind):
    # A consumer that asks for predictions or a checkpoint on an event (the app does) would
    # wait forever on a generator suspended inside ``with self._lock``.
    s = TrainingSession(TrainConfig(**{**SMALL, "lr": lr, "epochs": 4}), data, progress_every=50)
    seen = []
    for event in s.run():
        seen.append(type(event))
        assert _lock_is_free(s), f"{type(event).__name__} was yielded holding the step lock"
    assert kind in seen


def test_an_epoch_ends_one_way(data):
    from engine.training import EpochEnd

    assert {e.value for e in EpochEnd} == {"completed", "stopped", "diverged"}


def test_a_run_stopped_mid_epoch_says_where_its_weights_are(data, tmp_path):
    # Issue 12: a stopped run was labelled with its last completed epoch while its weights
    # (and checkpoint: epochs_done=1, global_step=954 at 782 steps an epoch) were further on.
    from engine.checkpoint import load_checkpoint, save_checkpoint
    from engine.errors import CheckpointError
    from engine.training import evaluate_model

    s = TrainingSession(TrainConfig(**SMALL), data, progress_every=1)
    events = []
    for e in s.run():
        events.append(e)
        if isinstance(e, ev.BatchProgress) and e.epoch == 2 and e.step == 5:
            s.stop()
    stopped = next(e for e in events if isinstance(e, ev.Stopped))
    fin = events[-1]
    assert (stopped.epoch, stopped.steps_into_epoch, stopped.step) == (1, 5, 16 + 5)
    assert (fin.reason, fin.epochs_done, fin.steps_into_epoch) == ("stopped", 1, 5)
    ckpt = s.checkpoint()
    meta = ckpt.metadata
    assert (meta["epochs_done"], meta["steps_into_epoch"], meta["global_step"], meta["mid_epoch"]) == (1, 5, 21, True)
    # the test accuracy recorded (and printed) is of exactly these weights
    _, acc, _ = evaluate_model(ckpt.model, data.x_test, data.y_test, data.max_value)
    assert meta["test_acc"] == fin.test_acc == acc
    # a mid-epoch checkpoint is refused for resuming, with a reason, also after a round trip
    path = save_checkpoint(tmp_path / "stopped.npz", ckpt)
    with pytest.raises(CheckpointError, match=r"mid-epoch \(at epoch 2 step 5\)"):
        TrainingSession(TrainConfig(**SMALL), data, resume=load_checkpoint(path))
    # the last epoch end's checkpoint resumes, and carries no test figures of other weights
    good = s.checkpoint(last_completed_epoch=True)
    assert (good.metadata["epochs_done"], good.metadata["global_step"], good.metadata["mid_epoch"]) == (1, 16, False)
    assert "test_acc" not in good.metadata
    resumed = TrainingSession(TrainConfig(**SMALL), data, resume=good)
    assert [e.epoch for e in resumed.run() if isinstance(e, ev.EpochEnded)] == [2, 3]


def test_a_run_stopped_at_an_epoch_end_is_not_mid_epoch(data):
    s = TrainingSession(TrainConfig(**SMALL), data)
    events = []
    for e in s.run():
        events.append(e)
        if isinstance(e, ev.EpochEnded):
            s.stop()
    assert events[-1].steps_into_epoch == 0 and events[-1].epochs_done == 1
    assert s.checkpoint().metadata["mid_epoch"] is False
    assert s.checkpoint().metadata["test_acc"] == events[-1].test_acc


def test_an_absurd_batch_size_is_blamed_on_the_batch_size_not_the_layers(data):
    # Issue 12: the estimate assumed a batch of batch_size rows even when the training set is
    # smaller, and blamed any excess on --layers.
    assert TrainingSession(TrainConfig(**{**SMALL, "batch_size": 1_000_000}), data).steps_per_epoch == 1
    big = make_dataset(n_train=30_000, n_test=10, side=28)
    with pytest.raises(ConfigError) as info:
        TrainingSession(TrainConfig(**{**SMALL, "hidden": (100_000,), "batch_size": 1_000_000}), big)
    assert info.value.field == "batch_size" and "smaller batch size" in info.value.reason
    with pytest.raises(ConfigError) as info:
        TrainingSession(TrainConfig(**{**SMALL, "hidden": (100_000, 100_000), "batch_size": 1_000_000}), big)
    assert info.value.field == "hidden"


def test_fit_val_size_is_the_one_rule():
    from engine.datasets import fit_val_size

    assert fit_val_size(10_000, 60_000) == 10_000
    assert fit_val_size(10_000, 10_000) == 2_000
    assert fit_val_size(0, 5) == 0
    assert fit_val_size(5, 5) == 1
