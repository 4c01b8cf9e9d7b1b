"""Hardening: bad paths, divergence, oversized networks, Ctrl+C, a dropped connection (the
recovery slot), a long session's memory, and races (stop during evaluation, save while
training) -- each driven through Pilot like a user would, on small data."""

from __future__ import annotations

import gc
import json
import signal
import threading
from pathlib import Path

import numpy as np
import pytest
from textual.widgets import Input, Static

from engine import events as ev
from engine.idx import write_idx
from engine.recovery import clear_recovery, load_recovery, save_recovery
from engine.training import TrainConfig, TrainingSession
from tests.factories import make_dataset
from tests.procs import process_exists
from tests.tui.conftest import press, settle, wait_for
from tests.tui.screen_text import screen_text
from tui.app import TermnistApp
from tui.screens.dialogs import ConfirmScreen, PathScreen

SMALL = {"hidden": "16", "epochs": "2", "batch_size": "64", "val_size": "100", "lr": "0.1"}
LONG = {**SMALL, "epochs": "100000", "batch_size": "32"}          # runs until stopped


@pytest.fixture
def state(tmp_path) -> Path:
    """The recovery slot's directory ($TERMNIST_STATE_DIR, set by the conftest)."""
    return tmp_path / "state"


def shown_to_user(app, needle: str) -> bool:
    """The text reached the user: a notification, a line of the epoch log, or on screen (a
    dialog or panel; its wrapping may split long lines, hence the other two)."""
    return (any(needle in n.message for n in app._notifications)
            or any(needle in line for line in app.epoch_log.lines) or needle in screen_text(app))


def error_text(app, field: str) -> str:
    label = app.form.query_one(f"#error-{field}", Static)
    return str(label.render()) if not label.has_class("-empty") else ""


def cut_run(dataset, config: TrainConfig, epochs_done: int) -> TrainingSession:
    """A session stopped right after epoch ``epochs_done`` (as a dropped connection leaves it)."""
    session = TrainingSession(config, dataset)
    for event in session.run():
        if isinstance(event, ev.EpochEnded) and event.epoch == epochs_done:
            break
    return session


# ----------------------------------------------------------------------------- paths
def write_idx_dir(d: Path, n_labels_train: int | None = None) -> Path:
    """A 28x28 dataset as the four canonical IDX files; optionally too few train labels."""
    ds = make_dataset(n_train=300, n_test=60, side=28)
    d.mkdir(parents=True, exist_ok=True)
    y_train = ds.y_train if n_labels_train is None else ds.y_train[:n_labels_train]
    write_idx(d / "train-images-idx3-ubyte.gz", ds.x_train)
    write_idx(d / "train-labels-idx1-ubyte.gz", y_train)
    write_idx(d / "t10k-images-idx3-ubyte.gz", ds.x_test)
    write_idx(d / "t10k-labels-idx1-ubyte.gz", ds.y_test)
    return d


def deny_reading(monkeypatch, name_prefix: str) -> None:
    """Tests run as root (which reads anything): make opening one IDX file fail with EACCES,
    at the very call engine.idx makes, so its real error path runs."""
    import builtins

    import engine.idx

    real_open = builtins.open

    def guarded_open(file, *args, **kwargs):
        if Path(file).name.startswith(name_prefix):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(engine.idx, "open", guarded_open, raising=False)


@pytest.mark.parametrize("case", ["missing-dir", "unreadable", "counts-disagree"])
async def test_bad_data_paths_are_reported_and_the_app_survives(tmp_path, monkeypatch, case):
    if case == "missing-dir":
        data, needle = tmp_path / "nowhere", "no such directory"
    elif case == "unreadable":
        data, needle = write_idx_dir(tmp_path / "idx"), "permission denied"
        deny_reading(monkeypatch, "train-images")
    else:
        data, needle = write_idx_dir(tmp_path / "idx", n_labels_train=299), "has 300 images but"
    app = TermnistApp(data_dir=str(data), config_dir=tmp_path / "config")   # the real loader
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await wait_for(pilot, lambda: shown_to_user(app, needle), what=f"{needle!r} shown")
        assert "Traceback" not in screen_text(app)
        while not isinstance(app.screen, type(app.screen_stack[0])):   # a dialog or panel: close it
            await press(pilot, "escape")
        app.form.set_values(SMALL)
        await press(pilot, "f5")                     # training says so too, and the app lives on
        await wait_for(pilot, lambda: not app.training and any(needle in e for e in app.errors_seen),
                       what="the training error")
        assert [n for n in app._notifications if n.severity == "error"]
        assert all("Traceback" not in e and "\n" not in e for e in app.errors_seen)
        assert app.is_running and app.check_action("train", ())


# ------------------------------------------------------------------------ divergence
async def test_divergence_keeps_the_last_good_weights_which_save(make_app, synthetic, tmp_path):
    app = make_app(synthetic)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        app.form.set_values({**SMALL, "lr": "10000", "activation": "relu", "optimizer": "sgd", "seed": "2"})
        await press(pilot, "f5")
        await wait_for(pilot, lambda: app.trainer.run_count == 1 and not app.training, what="the diverged run to end")
        assert any("diverged" in n.message and "smaller learning rate" in n.message for n in app._notifications)
        session = app.model
        kept = session.checkpoint().model.get_weights()
        assert all(np.isfinite(w).all() for w in kept.values())
        # diverged in epoch 1: the kept weights are the last good ones, the initial weights
        initial = TrainingSession(session.config, synthetic).model.get_weights()
        assert all(np.array_equal(kept[k], initial[k]) for k in kept)
        await press(pilot, "ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, PathScreen), what="save dialog")
        app.screen.query_one("#path", Input).value = str(tmp_path / "kept.npz")
        await press(pilot, "enter")
        await wait_for(pilot, lambda: app.files.last_saved is not None, what="the save")
    from engine.checkpoint import load_checkpoint

    saved = load_checkpoint(tmp_path / "kept.npz").model.get_weights()   # validates: finite, shapes
    assert all(np.array_equal(saved[k], kept[k]) for k in kept)


# ---------------------------------------------------------------- a failing form handler
@pytest.mark.expect_internal_error
async def test_an_error_in_a_form_handler_is_reported_and_the_app_lives_on(make_app, synthetic, monkeypatch):
    from tui.widgets.hyperparameter_form import HyperparameterForm

    def broken(self, errors):
        raise RuntimeError("form exploded")

    app = make_app(synthetic)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        monkeypatch.setattr(HyperparameterForm, "show_errors", broken)
        app.form.query_one("#field-lr", Input).value = "0.2"
        await pilot.pause(0.1)
        assert app.is_running
        assert any("on_input_changed" in e and "form exploded" in e for e in app.errors_seen)


# ---------------------------------------------------------------- too large a network
async def test_a_network_too_large_is_refused_next_to_its_field(make_app, synthetic):
    app = make_app(synthetic)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.form.set_values({**SMALL, "hidden": "100000,100000"})
        await press(pilot, "f5")
        await wait_for(pilot, lambda: app.errors_seen and not app.training, what="the refusal")
        assert "GiB" in app.errors_seen[-1] and "smaller layers" in app.errors_seen[-1]
        assert any("GiB" in n.message and n.severity == "error" for n in app._notifications)
        assert "GiB" in error_text(app, "hidden")                    # next to the field
        assert app.focused is app.form.query_one("#field-hidden")
        assert app.trainer.runner is None and app.model is None              # nothing was trained
        app.form.set_values({"hidden": "16"})
        await press(pilot, "f5")
        await wait_for(pilot, lambda: app.trainer.run_count == 2 and not app.training, what="a good run")
        assert any("run 2 completed" in line for line in app.epoch_log.lines)


# --------------------------------------------------------------------------- ctrl+c
async def test_ctrl_c_quits_like_ctrl_q_and_asks_while_training(make_app, synthetic, state):
    app = make_app(synthetic)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.form.set_values(LONG)
        await press(pilot, "f5")
        await wait_for(pilot, lambda: (state / "interrupted.json").exists(), what="epoch 1")
        app.form.query_one("#field-lr", Input).focus()        # an Input would take ctrl+c as copy
        await pilot.pause()
        await press(pilot, "ctrl+c")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the confirmation")
        text = screen_text(app)
        assert "Stop it and quit?" in text and "The run is kept" in text
        await press(pilot, "n")
        await pilot.pause(0.05)
        assert app.is_running and app.training
        await press(pilot, "ctrl+c")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the confirmation again")
        session = app.trainer.runner.session
        await press(pilot, "y")
        await wait_for(pilot, lambda: app.return_code is not None, what="the exit")
    assert app.return_code == 0 and session.stop_requested
    rec = load_recovery(state)                   # quit mid-run: kept, as the dialog said
    assert rec is not None and rec.reason == "quit while training"
    assert rec.checkpoint.metadata["epochs_done"] >= 1


async def test_ctrl_c_when_idle_quits_at_once(make_app, synthetic):
    app = make_app(synthetic)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await press(pilot, "ctrl+c")
        await wait_for(pilot, lambda: app.return_code is not None, what="the exit")
    assert app.return_code == 0


# ---------------------------------------------------------------- a dropped connection
@pytest.mark.parametrize(("signum", "reason"), [(signal.SIGHUP, "connection lost (SIGHUP)"),
                                                (signal.SIGTERM, "terminated (SIGTERM)")])
async def test_hangup_keeps_the_last_epoch_and_the_log_then_exits(make_app, synthetic, state, signum, reason):
    app = make_app(synthetic)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        app.form.set_values(LONG)
        await press(pilot, "f5")
        await wait_for(pilot, lambda: (state / "interrupted.json").exists(), what="the first autosave")
        await wait_for(pilot, lambda: app.view.last_val_acc is not None, what="a logged epoch")
        runner, session = app.trainer.runner, app.trainer.runner.session
        # what the SIGHUP handler starts (minus the os._exit watchdog, which would end pytest)
        threading.Thread(target=app.hangup.shutdown, args=(signum, False)).start()
        await wait_for(pilot, lambda: app.return_code is not None, what="the exit")
    assert app.return_code == 128 + signum
    assert session.stop_requested and runner.abandoned               # the worker was stopped
    rec = load_recovery(state)
    assert rec.reason == reason
    done = rec.checkpoint.metadata["epochs_done"]
    assert done >= 1 and len(rec.checkpoint.metadata["history"]) == done
    # the slot keeps the structured history (the log is rendered from it), not screen text
    assert [h["epoch"] for h in rec.checkpoint.metadata["history"]] == list(range(1, done + 1))
    assert "log" not in json.loads((state / "interrupted.json").read_text())


async def test_a_second_app_keeps_its_cut_run_in_its_own_slot(make_app, synthetic, state):
    """Two termnist apps at once (two SSH sessions): each keeps its interrupted run in its own
    slot; neither overwrites the other's."""
    from engine.recovery import claim_slot

    _saved = cut_run(synthetic, TrainConfig(dataset="synthetic", hidden=(8,), epochs=4, batch_size=32,
                                            val_size=100), epochs_done=1)
    save_recovery(_saved.checkpoint(last_completed_epoch=True), reason="the first app's run", directory=state)
    first_app = claim_slot(state)                 # the first app is still running
    try:
        app = make_app(synthetic)
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(pilot)
            assert app.recovery.directory == state / "slot-1"
            assert any("another termnist is running" in line for line in app.epoch_log.lines)
            assert not isinstance(app.screen, ConfirmScreen)       # the other's run is not offered
            app.form.set_values(LONG)
            await press(pilot, "f5")
            await wait_for(pilot, lambda: (state / "slot-1" / "interrupted.json").exists(), what="autosave")
            threading.Thread(target=app.hangup.shutdown, args=(signal.SIGHUP, False)).start()
            await wait_for(pilot, lambda: app.return_code is not None, what="the exit")
        assert load_recovery(state).reason == "the first app's run"                   # untouched
        assert load_recovery(state / "slot-1").reason == "connection lost (SIGHUP)"  # its own
    finally:
        first_app.release()
    # both apps gone: the next start offers its own slot's run (the first app's) ...
    app = make_app(synthetic)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the offer")
        assert app.recovery.directory == state and "1/4 epochs" in screen_text(app)
        await press(pilot, "n")
        await pilot.pause(0.05)
    clear_recovery(state)                          # (resumed and finished, say)
    # ... and once that one is gone, the run the second app kept
    app = make_app(synthetic)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the second offer")
        assert "/100000 epochs" in screen_text(app)                  # the second app's LONG run
        assert any("picked up the interrupted run kept in" in line for line in app.epoch_log.lines)
        await press(pilot, "n")
        await pilot.pause(0.05)
    assert load_recovery(state).reason == "connection lost (SIGHUP)"
    assert load_recovery(state / "slot-1") is None                   # moved, not copied


async def test_a_hangup_after_the_run_completed_keeps_nothing(make_app, synthetic, state, monkeypatch):
    """The log says "completed" while the worker still finishes the last preview: a hangup
    then must not keep the completed run as an interrupted one (the next start would offer it)."""
    import time

    from engine import trainer_process

    real = trainer_process.ProcessSession.predictor

    def slow_predictor(self):
        predict = real(self)
        return lambda x: (time.sleep(1.0), predict(x))[1]

    monkeypatch.setattr(trainer_process.ProcessSession, "predictor", slow_predictor)
    app = make_app(synthetic)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        app.form.set_values(SMALL)
        await press(pilot, "f5")
        await wait_for(pilot, lambda: any("run 1 completed" in line for line in app.epoch_log.lines),
                       what="the completed line")
        assert app.training                          # the worker is still making the preview
        threading.Thread(target=app.hangup.shutdown, args=(signal.SIGTERM, False)).start()
        await wait_for(pilot, lambda: app.return_code is not None, what="the exit")
    assert load_recovery(state) is None


async def test_start_offers_the_cut_run_and_yes_continues_it_exactly(make_app, synthetic, state):
    from threadpoolctl import threadpool_limits

    config = TrainConfig(dataset="synthetic", hidden=(8,), epochs=4, batch_size=32, val_size=100, seed=1)
    with threadpool_limits(limits=1):                 # as the app's worker: identical arithmetic
        straight = TrainingSession(config, synthetic)
        list(straight.run())
        cut = cut_run(synthetic, config, epochs_done=2)
    save_recovery(cut.checkpoint(last_completed_epoch=True), reason="connection lost (SIGHUP)", directory=state)

    app = make_app(synthetic)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the offer")
        text = screen_text(app)
        assert "An interrupted run was saved" in text and "2/4 epochs" in text
        await press(pilot, "y")
        await wait_for(pilot, lambda: app.trainer.run_count == 1 and not app.training, what="the resumed run")
        lines = app.epoch_log.lines
        rows = [line.split()[0] for line in lines if line.lstrip()[:2] in ("1/", "2/", "3/", "4/")]
        assert rows == ["1/4", "2/4", "3/4", "4/4"]      # its history as rows, then the epochs continue
        assert not any("settings changed" in line for line in lines)     # nothing changed
        assert any("resuming after epoch 2" in line for line in lines)
        assert len(app.chart.data.val_loss) == 4                          # the curves continue
        xs, _ = app.chart.data.train_loss.points()
        assert min(xs) < 2 * app.chart.data.steps_per_epoch               # ... from epoch 1 on
        app.recovery.writer.flush()                                      # the slot's writer is done
        assert not (state / "interrupted.json").exists()                  # finished: slot cleared
    a, b = straight.model.get_weights(), app.model.checkpoint().model.get_weights()   # trained in the child
    assert all(np.array_equal(a[k], b[k]) for k in a)                     # optimizer state and RNG too


async def test_declining_the_offer_keeps_the_run_until_another_starts(make_app, synthetic, state):
    config = TrainConfig(dataset="synthetic", hidden=(8,), epochs=4, batch_size=32, val_size=100)
    save_recovery(cut_run(synthetic, config, 1).checkpoint(last_completed_epoch=True), directory=state)
    app = make_app(synthetic)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen), what="the offer")
        await press(pilot, "n")
        await pilot.pause(0.05)
        assert not app.training and load_recovery(state) is not None      # kept
        assert any("stays saved" in line for line in app.epoch_log.lines)
        app.form.set_values(LONG)                                          # hidden 16, not 8
        await press(pilot, "f5")
        # read once per look: the declined run's slot is cleared when the new run starts
        await wait_for(pilot, lambda: (r := load_recovery(state)) is not None
                       and r.checkpoint.config.hidden == (16,), what="the new run's slot")
        await press(pilot, "f7")                                           # stopped on purpose:
        await wait_for(pilot, lambda: not app.training, what="stop")
        assert load_recovery(state) is None                                # nothing to resume


async def test_a_damaged_slot_is_reported_not_fatal(make_app, synthetic, state):
    state.mkdir()
    (state / "interrupted.json").write_text("{broken")
    app = make_app(synthetic)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.errors_seen, what="the error")
        assert "cannot resume the interrupted run" in app.errors_seen[-1]
        assert "damaged recovery file" in app.errors_seen[-1]
        app.form.set_values(SMALL)
        await press(pilot, "f5")
        await wait_for(pilot, lambda: app.trainer.run_count == 1 and not app.training, what="a run")
        assert any("run 1 completed" in line for line in app.epoch_log.lines)


# -------------------------------------------------------------------------- races
async def test_stop_during_an_epochs_evaluation_ends_cleanly(make_app, synthetic, state, monkeypatch):
    from engine import training

    real = training.evaluate_model
    evaluating, release = threading.Event(), threading.Event()
    calls = []

    def held_evaluation(*args, **kwargs):      # the first call: epoch 1's validation
        calls.append(1)
        if len(calls) == 1:
            evaluating.set()
            release.wait(10)
        return real(*args, **kwargs)

    monkeypatch.setattr(training, "evaluate_model", held_evaluation)
    app = make_app(synthetic, trainer="thread")     # the patch holds this process's engine only
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        app.form.set_values({**SMALL, "epochs": "50"})
        await press(pilot, "f5")
        await wait_for(pilot, evaluating.is_set, what="the evaluation")
        await press(pilot, "f7")                 # the UI answers while the worker evaluates
        await pilot.pause(0.1)
        assert app.training and "stopping" in str(app.query_one("#status", Static).render())
        release.set()
        await wait_for(pilot, lambda: not app.training, what="the run to end")
        lines = app.epoch_log.lines
        assert any("stopped after 1 full epoch(s)" in line for line in lines)
        assert any("run 1 stopped after 1 epoch(s)" in line for line in lines)
        assert " idle" in str(app.query_one("#status", Static).render())
        assert app.check_action("train", ()) and not app.check_action("stop", ())
        assert not app.errors_seen and load_recovery(state) is None
        assert app.model.epochs_done == 1


async def test_save_while_training_writes_one_consistent_moment(make_app, synthetic, tmp_path):
    from threadpoolctl import threadpool_limits

    from engine.checkpoint import load_checkpoint

    app = make_app(synthetic)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        app.form.set_values({**LONG, "batch_size": "4", "optimizer": "adam", "lr": "0.001"})
        await press(pilot, "f5")
        await wait_for(pilot, lambda: len(app.chart.data.train_loss) > 50, what="some steps")
        await press(pilot, "ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, PathScreen), what="save dialog")
        app.screen.query_one("#path", Input).value = str(tmp_path / "live.npz")
        await press(pilot, "enter")
        await wait_for(pilot, lambda: app.files.last_saved is not None, what="the save")
        assert app.training                       # saved mid-run
        await press(pilot, "f7")
        await wait_for(pilot, lambda: not app.training, what="stop")
    ckpt = load_checkpoint(tmp_path / "live.npz")        # validates: finite, right shapes
    step = ckpt.metadata["global_step"]
    assert step > 0
    # A fresh session after exactly `step` steps has the same weights and Adam state: the
    # file holds one moment between two steps, never a half-applied update.
    with threadpool_limits(limits=1):
        replay = TrainingSession(ckpt.config, synthetic, progress_every=1)
        for event in replay.run():
            if isinstance(event, ev.BatchProgress) and event.global_step == step:
                break
    want, got = replay.model.get_weights(), ckpt.model.get_weights()
    assert all(np.array_equal(want[k], got[k]) for k in want)
    opt = replay.optimizer.state_dict()
    assert all(np.array_equal(opt[k], ckpt.optimizer_state[k]) for k in opt)


# ------------------------------------------------------------------ the training process
async def test_runs_train_in_a_child_process_that_ends_with_the_app(make_app, synthetic):
    import os

    app = make_app(synthetic)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await wait_for(pilot, lambda: app.trainer.trainer_process is not None
                       and app.trainer.trainer_process.holds(synthetic),
                       what="the training process, prepared ahead of F5")
        pid = app.trainer.trainer_process.pid
        assert pid != os.getpid()
        app.form.set_values(SMALL)
        for run in (1, 2):                           # one child serves run after run
            await press(pilot, "f5")
            await wait_for(pilot, lambda run=run: app.trainer.run_count == run and not app.training,
                           what=f"run {run}")
            assert app.trainer.trainer_process.pid == pid
        assert type(app.model).__name__ == "ProcessSession"
        assert app.view.last_test_acc is not None and app.view.predictions is not None
        assert not any("own process" in line for line in app.epoch_log.lines)
    assert app.trainer.trainer_process is None
    assert not process_exists(pid)


async def test_a_run_started_early_on_data_since_replaced_is_ended_first(make_app, synthetic, monkeypatch):
    """F5 starts the idle child at once on the data it holds; if the worker then finds other
    data (replaced meanwhile), that early run is ended and the real one trains, in the child."""
    app = make_app(synthetic)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await wait_for(pilot, lambda: app.trainer.trainer_process is not None
                       and app.trainer.trainer_process.holds(synthetic), what="the prepared training process")
        other = make_dataset(n_train=600, n_test=200, side=8, seed=5)
        monkeypatch.setattr(app.datasets, "get", lambda name: other)
        app.form.set_values(SMALL)
        await press(pilot, "f5")
        await wait_for(pilot, lambda: app.trainer.run_count == 1 and not app.training, what="the run")
        assert any("run 1 completed" in line for line in app.epoch_log.lines)
        assert not any("own process" in line for line in app.epoch_log.lines)
        assert type(app.model).__name__ == "ProcessSession" and app.model.dataset is other


async def test_a_child_that_cannot_start_falls_back_to_a_thread(make_app, synthetic, monkeypatch):
    from engine import trainer_process

    def refuse(self):
        raise trainer_process.TrainerProcessError("cannot start the training process: (test) no fork")

    monkeypatch.setattr(trainer_process.TrainerProcess, "start", refuse)
    app = make_app(synthetic)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        app.form.set_values(SMALL)
        await press(pilot, "f5")
        await wait_for(pilot, lambda: app.trainer.run_count == 1 and not app.training, what="the run")
        assert any("own process instead of a separate one" in line and "no fork" in line
                   for line in app.epoch_log.lines)
        assert any("run 1 completed" in line for line in app.epoch_log.lines)
        assert type(app.model).__name__ == "TrainingSession" and not app.errors_seen


async def test_a_child_killed_mid_run_is_reported_and_the_next_run_works(make_app, synthetic):
    app = make_app(synthetic)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        app.form.set_values(LONG)
        await press(pilot, "f5")
        await wait_for(pilot, lambda: app.view.progress_text.startswith("epoch"), what="steps")
        pid = app.trainer.trainer_process.pid
        import os

        os.kill(pid, signal.SIGKILL)
        await wait_for(pilot, lambda: not app.training, what="the run to end")
        assert shown_to_user(app, "training process ended unexpectedly (killed by SIGKILL)")
        app.form.set_values(SMALL)
        await press(pilot, "f5")
        await wait_for(pilot, lambda: app.trainer.run_count == 2 and not app.training, what="run 2")
        assert any("run 2 completed" in line for line in app.epoch_log.lines)
        assert app.trainer.trainer_process.pid != pid


# ------------------------------------------------------------------- a long session
def _rss_mib(pid: int | str = "self") -> tuple[float, float]:
    """(VmRSS, VmHWM) of this process (or ``pid``) in MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields["VmRSS"], fields["VmHWM"]


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc")
async def test_a_long_session_keeps_memory_flat(make_app, sample, monkeypatch, capsys):
    from tui.widgets.epoch_log import EpochLog

    monkeypatch.setattr(EpochLog, "MAX_LINES", 80)       # small bound, so the session passes it
    app = make_app(sample, preview_limit=500)
    figures = {}
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        figures["start"] = _rss_mib()
        app.form.set_values({"hidden": "16", "epochs": "50", "batch_size": "128", "val_size": "500",
                             "lr": "0.1"})
        await press(pilot, "f5")
        await wait_for(pilot, lambda: app.trainer.run_count == 1 and not app.training, timeout=60, what="run 1")
        series = app.chart.data.train_loss
        assert series.bucket > 1 and len(series.xs) <= series.capacity   # 50 x 75 steps, decimated
        figures["after 50 epochs"] = _rss_mib()
        app.form.set_values({"epochs": "10"})
        per_run, per_run_child = [], []
        for run in range(2, 7):
            await press(pilot, "f5")
            await wait_for(pilot, lambda run=run: app.trainer.run_count == run and not app.training, timeout=30,
                           what=f"run {run}")
            per_run.append(_rss_mib()[0])
            per_run_child.append(_rss_mib(app.trainer.trainer_process.pid)[0])
        assert any("run 6 completed" in line for line in app.epoch_log.lines)
        figures["after 5 more runs"] = _rss_mib()
        log = app.epoch_log
        assert len(log.lines) == 80 and len(log.log_widget.lines) <= 80     # full, not over
        assert not any("termnist ready" in line for line in log.lines)   # the oldest went
        for s in (app.chart.data.train_loss, app.chart.data.val_loss, app.chart.data.val_acc):
            assert len(s.xs) <= s.capacity
        assert not app.errors_seen
        # nothing of finished runs stays alive: their sessions (weights, optimizer state,
        # buffers) and the footer keys of every binding refresh (a Textual workaround)
        gc.collect()
        live = [type(o).__name__ for o in gc.get_objects()]
        shown_keys = len(app.query("FooterKey"))
        assert live.count("ProcessSession") == 1                   # the last run's, for Save
        assert live.count("TrainingSession") == 0                  # they live in the child
        figures["training process"] = _rss_mib(app.trainer.trainer_process.pid)
        # at most one earlier footer's keys besides the shown ones (a leak keeps every refresh's)
        from tui.keys import BINDINGS

        most = sum(1 for b in BINDINGS if getattr(b, "show", True))
        assert live.count("FooterKey") <= shown_keys + most, (live.count("FooterKey"), shown_keys, most)
    with capsys.disabled():
        print("\nlong session RSS (MiB, current/peak): "
              + "; ".join(f"{k} {rss:.0f}/{hwm:.0f}" for k, (rss, hwm) in figures.items())
              + "; after each later run " + " ".join(f"{r:.0f}" for r in per_run)
              + "; training process after each " + " ".join(f"{r:.0f}" for r in per_run_child))
    # RSS settles after the first runs (new pool threads, their malloc arenas): a loose bound
    assert per_run[-1] - per_run[1] < 16, (figures, per_run)
    assert per_run_child[-1] - per_run_child[1] < 16, (figures, per_run_child)


# ---------------------------------------------------------- the slot itself (engine)
def test_the_slot_survives_a_crash_in_the_middle_of_a_save(tmp_path, monkeypatch):
    """Each epoch's autosave replaces the slot; dying half-way (SIGKILL, power) must leave
    the previous epoch's slot readable, never an empty or half-written one."""
    from engine import recovery

    data = make_dataset()
    config = TrainConfig(dataset="synthetic", hidden=(8,), epochs=3, batch_size=64, val_size=100)
    save_recovery(cut_run(data, config, 1).checkpoint(last_completed_epoch=True), reason="one", directory=tmp_path)
    second = cut_run(data, config, 2).checkpoint(last_completed_epoch=True)
    real_replace = recovery.os.replace

    def crash_at_the_marker(src, dst):
        if Path(dst).name == recovery.INFO_NAME:
            raise KeyboardInterrupt("killed")     # the process dies before the marker moves
        return real_replace(src, dst)

    monkeypatch.setattr(recovery.os, "replace", crash_at_the_marker)
    with pytest.raises(KeyboardInterrupt):
        save_recovery(second, reason="two", directory=tmp_path)
    monkeypatch.undo()
    rec = load_recovery(tmp_path)                 # the previous slot, intact
    assert rec.reason == "one" and rec.checkpoint.metadata["epochs_done"] == 1
    save_recovery(second, reason="two", directory=tmp_path)
    rec = load_recovery(tmp_path)
    assert rec.reason == "two" and rec.checkpoint.metadata["epochs_done"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["interrupted-b.npz", "interrupted.json", "interrupted.npz"]
    from engine.recovery import clear_recovery

    clear_recovery(tmp_path)
    assert list(tmp_path.iterdir()) == [] and load_recovery(tmp_path) is None


def test_reading_the_slot_while_it_is_saved_never_fails(tmp_path, monkeypatch):
    """The app's start (or a second termnist) may read the slot while a run autosaves it."""
    import time

    from engine import recovery

    real_load = recovery.load_checkpoint

    def slow_disk(path):            # widen the window between reading the marker and its file
        time.sleep(0.004)
        return real_load(path)

    monkeypatch.setattr(recovery, "load_checkpoint", slow_disk)
    data = make_dataset()
    config = TrainConfig(dataset="synthetic", hidden=(8,), epochs=3, batch_size=64, val_size=100)
    ckpt = cut_run(data, config, 1).checkpoint(last_completed_epoch=True)
    save_recovery(ckpt, directory=tmp_path)
    done = threading.Event()

    def keep_saving():
        while not done.is_set():
            save_recovery(ckpt, reason="x", directory=tmp_path)

    writer = threading.Thread(target=keep_saving)
    writer.start()
    try:
        for _ in range(150):
            assert load_recovery(tmp_path).checkpoint.metadata["epochs_done"] == 1
    finally:
        done.set()
        writer.join()
