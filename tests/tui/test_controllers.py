"""The app's controllers (tui/controllers/), without Textual: plain callables stand in for it."""

from __future__ import annotations

import signal
import threading
import time

import numpy as np
import pytest

from engine import events as ev
from engine.errors import DatasetNotFoundError
from engine.recovery import load_recovery
from engine.training import TrainConfig, TrainingSession
from tests.factories import make_dataset
from tests.tui.fakes import FakeSession
from tui.controllers.datasets import DatasetCache
from tui.controllers.downloads import CANCELLED, DownloadController, DownloadFailed, DownloadFinished
from tui.controllers.hangup import HangupHandler
from tui.controllers.recovery import RecoveryController, SlotWriter
from tui.controllers.run import RunController
from tui.controllers.settings import SettingsController
from tui.runner import LogLine


# ------------------------------------------------------------------ datasets
def test_dataset_cache_loads_once_keeps_one_and_forgets_on_a_new_directory():
    calls: list[tuple[str, str | None]] = []
    sets = {"a": make_dataset(n_train=20, n_test=5), "b": make_dataset(n_train=30, n_test=5)}

    def loader(name, data_dir):
        calls.append((name, data_dir))
        time.sleep(0.05)
        return sets[name]

    cache = DatasetCache("/d", loader)
    got: list = []
    threads = [threading.Thread(target=lambda: got.append(cache.get("a"))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [("a", "/d")] and all(g is sets["a"] for g in got)   # one load, four answers
    assert cache.get("b") is sets["b"] and cache.cached("a") is None      # keeps one
    cache.use_data_dir("/e")
    assert cache.cached("b") is None and cache.data_dir == "/e"
    cache.get("a")
    assert calls[-1] == ("a", "/e")
    assert not cache.uses_engine_search and DatasetCache().uses_engine_search


def test_dataset_cache_passes_the_engines_errors_on():
    def loader(name, data_dir):
        raise DatasetNotFoundError("nothing here", searched=("/x",))

    with pytest.raises(DatasetNotFoundError):
        DatasetCache(None, loader).get("mnist")


# ------------------------------------------------------------------ the run
def _run_in_thread(ctl: RunController, config, ds, resume=None, early=None):
    posted: list = []
    runner, early2 = ctl.begin(posted.append, config, None)
    seen: list = []
    ctl.run(runner, config, resume, early or early2, lambda name: ds, seen.append, lambda: False)
    return posted, seen, ctl.ended()


def test_run_controller_runs_a_session_in_a_thread_and_ends_it():
    ds = make_dataset(n_train=300, n_test=50, side=8)
    config = TrainConfig(dataset="synthetic", hidden=(8,), epochs=2, val_size=50)
    ctl = RunController(mode="thread")
    posted, seen, session = _run_in_thread(ctl, config, ds)
    assert seen == [ds] and ctl.run_count == 1 and not ctl.training
    kinds = [type(u).__name__ for u in posted]
    assert kinds[0] == "RunStarted" and "Finished" in kinds and kinds.count("EpochEnded") == 2
    assert isinstance(session, TrainingSession) and session.epochs_done == 2


def test_a_validation_size_too_big_for_the_set_is_fitted_for_that_run_only():
    ds = make_dataset(n_train=300, n_test=50, side=8)
    config = TrainConfig(dataset="synthetic", hidden=(8,), epochs=1, val_size=10_000)
    ctl = RunController(mode="thread")
    posted, _, _ = _run_in_thread(ctl, config, ds)
    started = next(u for u in posted if isinstance(u, ev.RunStarted))
    assert started.n_val == 60 and started.n_train == 240
    assert any(isinstance(u, LogLine) and "validates on 60" in u.text for u in posted)
    assert ctl.config.val_size == 10_000        # what the user asked for is not overwritten


def test_pause_resume_stop_reach_the_session_and_report_state():
    ctl = RunController(mode="thread")
    assert not ctl.pause() and not ctl.resume() and not ctl.stop()     # no run: nothing to do
    runner, _ = ctl.begin(lambda u: None, TrainConfig(), None)
    session = FakeSession(epochs=1)
    runner.attach(session, np.zeros((1, 2, 2), np.uint8), None)
    assert ctl.pause() and ctl.paused and not session.unpaused.is_set()
    assert ctl.resume() and not ctl.paused and session.unpaused.is_set()
    assert ctl.stop() and session.stopped.is_set()
    assert ctl.in_progress
    ctl.finished = True
    assert not ctl.in_progress and ctl.ended() is session and ctl.session is None


# ------------------------------------------------------------------ the recovery slot
def test_slot_writer_keeps_the_order_and_collapses_saves():
    done: list[str] = []
    gate = threading.Event()
    writer = SlotWriter()
    writer.submit("save", lambda: (gate.wait(5), done.append("save 1")))
    time.sleep(0.05)                                   # save 1 is being written
    writer.submit("save", lambda: done.append("save 2"))
    writer.submit("save", lambda: done.append("save 3"))   # replaces save 2, still queued
    writer.submit("clear", lambda: done.append("clear"))
    gate.set()
    writer.flush()
    assert done == ["save 1", "save 3", "clear"]
    writer.submit("save", lambda: done.append("late save"))
    writer.run_now(lambda: done.append("on exit"))     # drains the queue first
    assert done[-2:] == ["late save", "on exit"]


def test_slot_writer_reports_a_failed_write_and_goes_on():
    errors: list[str] = []
    writer = SlotWriter(on_error=errors.append)
    writer.submit("save", lambda: (_ for _ in ()).throw(OSError("disk full")))
    writer.flush()
    assert errors and "disk full" in errors[0]


def test_recovery_autosave_then_clear_leaves_nothing_and_keep_on_exit_wins(tmp_path):
    ds = make_dataset(n_train=200, n_test=20, side=8)
    s = TrainingSession(TrainConfig(dataset="synthetic", hidden=(4,), epochs=1, val_size=20), ds)
    list(s.run())
    rec = RecoveryController(enabled=True, directory=tmp_path)
    assert rec.claim() is None
    try:
        rec.autosave(s.checkpoint(last_completed_epoch=True), "/data", "saved at the end of epoch 1")
        rec.clear()
        rec.writer.flush()
        assert load_recovery(tmp_path) is None                       # the clear came last
        rec.keep_on_exit("quit while training", lambda: s.checkpoint(last_completed_epoch=True), "/data")
        rec.clear()                                                  # ignored once closing
        rec.autosave(s.checkpoint(), None, "saved at the end of epoch 2")
        rec.writer.flush()
        kept = load_recovery(tmp_path)
        # a save after the exit keeps the exit's reason (the run was cut, not completed)
        assert kept is not None and kept.reason == "quit while training" and kept.data_dir is None
    finally:
        rec.release()


def test_disabled_recovery_writes_nothing(tmp_path):
    rec = RecoveryController(enabled=False, directory=tmp_path)
    rec.claim()
    rec.autosave(object(), None, "x")
    rec.keep_on_exit("quit", lambda: pytest.fail("no snapshot without a slot"), None)
    rec.writer.flush()
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ settings
def test_settings_newest_snapshot_wins_and_disabled_writes_nothing(tmp_path):
    ctl = SettingsController(enabled=True, directory=tmp_path)
    for i in range(20):
        ctl.save({"form": {"lr": str(i)}})
    ctl.save({"form": {"lr": "last"}}, now=True)
    time.sleep(0.2)                                   # any writer still running finds nothing newer
    assert ctl.load()["form"] == {"lr": "last"}
    off = SettingsController(enabled=False, directory=tmp_path / "off")
    off.save({"form": {"lr": "1"}}, now=True)
    assert off.load() == {} and not (tmp_path / "off").exists()


# ------------------------------------------------------------------ downloads
def test_download_reports_finished_or_failed_and_cancel_is_said_once(monkeypatch, tmp_path):
    import engine.download

    release = threading.Event()

    def fake_download(name, to=None, mirrors=(), progress=None, cancel=None, timeout=0.0, log=None):
        log("trying a mirror")
        release.wait(5)
        if cancel.is_set():
            raise engine.download.DownloadCancelled("cancelled")
        return tmp_path / name

    monkeypatch.setattr(engine.download, "download", fake_download)
    posted: list = []
    ctl = DownloadController(posted.append)
    ctl.start("mnist", None)
    assert ctl.downloading and ctl.name == "mnist"
    release.set()
    deadline = time.monotonic() + 5
    while not any(isinstance(u, DownloadFinished) for u in posted):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert posted[-1] == DownloadFinished("mnist", str(tmp_path / "mnist"))
    ctl.over()
    release.clear()
    posted.clear()
    ctl.start("mnist", None)
    ctl.cancel()
    ctl.cancel()
    release.set()
    time.sleep(0.2)
    assert [u for u in posted if isinstance(u, DownloadFailed)] == [DownloadFailed("mnist", CANCELLED, True)]


# ------------------------------------------------------------------ hang-ups
def test_hangup_keeps_the_run_then_abandons_it_then_exits_with_128_plus_signal():
    calls: list = []
    handler = HangupHandler(keep=lambda reason: calls.append(("keep", reason)),
                            abandon=lambda: calls.append(("abandon",)),
                            exit=lambda code: calls.append(("exit", code)))
    handler.shutdown(signal.SIGHUP, watchdog=False)
    assert calls == [("keep", "connection lost (SIGHUP)"), ("abandon",), ("exit", 128 + signal.SIGHUP)]
