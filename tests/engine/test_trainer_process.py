"""engine.trainer_process: a TrainingSession in a child process, behind the same interface.

The child must train exactly what a session in this process trains, answer pause, resume,
stop and checkpoint requests from any thread, report its errors as the engine's errors,
and never outlive its parent or take a crash silently.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from engine import events as ev
from engine.errors import ConfigError
from engine.mlp import MLP
from engine.trainer_process import TrainerProcess, TrainerProcessError
from engine.training import TrainConfig, TrainingSession
from tests.factories import make_dataset
from tests.procs import process_exists

REPO = Path(__file__).resolve().parents[2]
CONFIG = TrainConfig(dataset="synthetic", hidden=(16,), epochs=3, batch_size=32, val_size=100, seed=3,
                     optimizer="adam", lr=0.002)


@pytest.fixture(scope="module")
def data():
    return make_dataset(n_train=800, n_test=200, side=8)


@pytest.fixture
def proc():
    p = TrainerProcess()
    yield p
    p.close()


def in_process(config, data, **kwargs):
    with threadpool_limits(limits=1):       # the child's setting: identical arithmetic
        session = TrainingSession(config, data, **kwargs)
        events = list(session.run())
    return session, events


def weights_equal(a, b) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def wait_until(condition, timeout=10.0, what=""):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_a_model_pickles_as_architecture_and_weights():
    model = MLP(sizes=(6, 5, 3), activation="tanh", rng=np.random.default_rng(1))
    model.predict_proba(np.ones((4, 6), np.float32))      # fills a buffer cache (with its lock)
    twin = pickle.loads(pickle.dumps(model))
    assert twin.architecture() == model.architecture()
    assert weights_equal(twin.get_weights(), model.get_weights())
    x = np.random.default_rng(2).random((7, 6), dtype=np.float32)
    assert np.array_equal(twin.predict_proba(x), model.predict_proba(x))


def test_the_child_trains_exactly_what_this_process_trains(proc, data):
    straight, want = in_process(CONFIG, data, progress_every=5)
    session = proc.open_session(CONFIG, data, progress_every=5)
    got = list(session.run())
    assert [type(e) for e in got] == [type(e) for e in want]
    strip = lambda e: {k: v for k, v in vars(e).items() if k not in ("seconds", "samples_per_s")}  # noqa: E731
    assert [strip(e) for e in got] == [strip(e) for e in want]        # losses, accuracies, steps
    assert weights_equal(session.checkpoint().model.get_weights(), straight.model.get_weights())
    assert session.epochs_done == 3 and proc.pid != os.getpid()
    # predictions are computed here, on the final weights
    assert np.allclose(session.predict_proba(data.x_test), straight.predict_proba(data.x_test))


def test_each_epoch_end_brings_its_own_weights_and_checkpoint(proc, data):
    session = proc.open_session(CONFIG, data, progress_every=50)
    seen = []
    for event in session.run():
        if isinstance(event, ev.EpochEnded):
            time.sleep(0.05)              # the child runs ahead; what we see must not
            ckpt = session.checkpoint(last_completed_epoch=True)
            seen.append((event.epoch, ckpt.metadata["epochs_done"], len(ckpt.metadata["history"])))
    assert seen == [(1, 1, 1), (2, 2, 2), (3, 3, 3)]


def test_a_resumed_run_continues_as_in_this_process(proc, data):
    cut = TrainingSession(CONFIG, data)
    with threadpool_limits(limits=1):
        for event in cut.run():
            if isinstance(event, ev.EpochEnded) and event.epoch == 1:
                cut.stop()
    ckpt = cut.checkpoint(last_completed_epoch=True)
    straight, _ = in_process(CONFIG, data, resume=ckpt)
    session = proc.open_session(CONFIG, data, resume=ckpt)
    events = list(session.run())
    assert events[0].start_epoch == 1 and events[-1].reason == "completed"
    assert weights_equal(session.checkpoint().model.get_weights(), straight.model.get_weights())


def test_pause_resume_and_stop_from_another_thread(proc, data):
    config = CONFIG.replace(epochs=500, batch_size=8)
    session = proc.open_session(config, data, progress_every=1)
    got: list = []
    reader = threading.Thread(target=lambda: got.extend(session.run()))
    reader.start()
    wait_until(lambda: any(isinstance(e, ev.BatchProgress) for e in got), what="steps")
    session.pause()
    wait_until(lambda: any(isinstance(e, ev.Paused) for e in got), what="Paused")
    n = len(got)
    time.sleep(0.3)
    assert len(got) == n and session.paused                    # paused means no steps
    live = session.checkpoint()                                # answered while paused
    assert live.metadata["global_step"] == got[-2].global_step
    session.resume()
    wait_until(lambda: any(isinstance(e, ev.Resumed) for e in got), what="Resumed")
    session.stop()
    reader.join(30)
    assert not reader.is_alive() and session.stop_requested
    assert isinstance(got[-1], ev.Finished) and got[-1].reason == "stopped"


def test_a_live_checkpoint_is_one_moment_between_two_steps(proc, data):
    config = CONFIG.replace(epochs=200, batch_size=4)
    session = proc.open_session(config, data, progress_every=1)
    it = session.run()
    for event in it:
        if isinstance(event, ev.BatchProgress) and event.global_step > 30:
            break
    ckpt = session.checkpoint()
    session.stop()
    list(it)
    step = ckpt.metadata["global_step"]
    with threadpool_limits(limits=1):
        replay = TrainingSession(config, data, progress_every=1)
        for event in replay.run():
            if isinstance(event, ev.BatchProgress) and event.global_step == step:
                break
    assert weights_equal(ckpt.model.get_weights(), replay.model.get_weights())
    assert weights_equal(ckpt.optimizer_state, replay.optimizer.state_dict())


def test_setting_errors_come_back_as_the_engines_errors(proc, data):
    with pytest.raises(ConfigError) as err:
        proc.open_session(CONFIG.replace(val_size=800), data)
    assert err.value.field == "val_size" and "leaves no training data" in str(err.value)
    with pytest.raises(ConfigError) as err:
        proc.open_session(CONFIG.replace(hidden=(60000, 60000)), data)
    assert err.value.field == "hidden" and "GiB" in str(err.value)
    session = proc.open_session(CONFIG.replace(epochs=1), data)   # the child is still fine
    assert list(session.run())[-1].reason == "completed"


def test_divergence_is_reported_and_the_last_good_weights_kept(proc, data):
    config = CONFIG.replace(lr=1e4, optimizer="sgd", activation="relu", seed=2)
    session = proc.open_session(config, data)
    events = list(session.run())
    assert any(isinstance(e, ev.Diverged) for e in events) and events[-1].reason == "diverged"
    kept = session.checkpoint().model.get_weights()
    initial = TrainingSession(config, data).model.get_weights()
    assert weights_equal(kept, initial)


def test_a_killed_child_is_an_error_not_a_hang_and_the_next_run_starts_a_new_one(proc, data):
    session = proc.open_session(CONFIG.replace(epochs=10_000), data, progress_every=1)
    it = session.run()
    next(it)
    first = proc.pid
    os.kill(first, signal.SIGKILL)
    with pytest.raises(TrainerProcessError, match=r"ended unexpectedly.*SIGKILL"):
        for _ in it:
            pass
    assert not proc.alive
    again = proc.open_session(CONFIG.replace(epochs=1), data)
    assert list(again.run())[-1].reason == "completed" and proc.pid != first


def test_the_child_ignores_a_hangup_the_app_decides_what_it_means(proc, data):
    session = proc.open_session(CONFIG.replace(epochs=10_000, batch_size=8), data, progress_every=1)
    it = session.run()
    next(it)
    os.kill(proc.pid, signal.SIGHUP)
    time.sleep(0.2)
    assert proc.alive
    session.stop()
    assert list(it)[-1].reason == "stopped"


def test_close_ends_the_child_even_mid_run(data):
    p = TrainerProcess()
    session = p.open_session(CONFIG.replace(epochs=10_000), data)
    it = session.run()
    next(it)
    pid = p.pid
    p.close()
    p.close()                                      # idempotent
    assert not p.alive and not process_exists(pid)
    rest = list(it)                                # the consumer is released, not stuck
    assert not any(isinstance(e, ev.Failed) for e in rest)


def test_the_child_dies_with_its_parent(tmp_path):
    """A parent that ends without closing anything (os._exit, SIGKILL, a crash): the child
    reads EOF on its socket and exits, mid-run -- no orphan keeps a core busy."""
    script = textwrap.dedent("""
        import os, sys
        from engine.trainer_process import TrainerProcess
        from engine.training import TrainConfig
        from tests.factories import make_dataset
        p = TrainerProcess()
        s = p.open_session(TrainConfig(dataset="synthetic", hidden=(16,), epochs=10000, val_size=100),
                           make_dataset())
        next(s.run())
        print(p.pid, flush=True)
        os._exit(0)
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True,
                         timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    child = int(out.stdout.strip())
    wait_until(lambda: not process_exists(child), timeout=10, what=f"child {child} to exit")


def test_a_child_that_cannot_start_says_so(data):
    p = TrainerProcess(python="/nonexistent/python3")
    with pytest.raises(TrainerProcessError, match="cannot start the training process"):
        p.open_session(CONFIG, data)
    p.close()


def test_the_child_runs_this_engine_not_one_in_the_current_directory(data, tmp_path, monkeypatch):
    impostor = tmp_path / "engine"
    impostor.mkdir()
    (impostor / "__init__.py").write_text("raise ImportError('the wrong engine')\n")
    monkeypatch.chdir(tmp_path)
    p = TrainerProcess()
    try:
        session = p.open_session(CONFIG.replace(epochs=1), data)
        assert list(session.run())[-1].reason == "completed"
    finally:
        p.close()


def test_the_child_never_runs_far_ahead_of_a_slow_consumer(proc, data):
    """Flow control: a tiny net's epochs take milliseconds; a consumer that takes 0.1 s per
    epoch end (previews, autosave) must not find thousands of epochs queued up."""
    from engine.trainer_process import EPOCHS_AHEAD

    session = proc.open_session(CONFIG.replace(epochs=100_000, val_size=0), data, progress_every=1000)
    leads = []
    for event in session.run():
        if isinstance(event, ev.EpochEnded) and not session.stop_requested:
            time.sleep(0.1)
            leads.append(session.checkpoint().metadata["epochs_done"] - event.epoch)
            if event.epoch == 6:
                session.stop()
    assert max(leads) <= EPOCHS_AHEAD + 1, leads
    assert min(leads) >= 1                     # it does run ahead, just not far
