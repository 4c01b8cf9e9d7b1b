"""Resuming a run cut short: read the recovery slot, offer it, load its data, continue it.

Functions of the app's (``ResumeHost``: the explicit list of what they use); ``prepare_resume``
runs in the app's resume worker thread, ``resume_ready`` on the UI thread.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Protocol

from tui.hosts import AppHost

from engine.errors import DatasetNotFoundError
from tui import messages as msg
from tui.screens.dialogs import ConfirmScreen

log = logging.getLogger(__name__)


class ResumeHost(AppHost, Protocol):
    """What resuming needs of the app: the common contract and the resume worker."""
    def _resume_worker(self, offer: bool, recovery: Any = None) -> Any: ...


def prepare_resume(host: ResumeHost, offer: bool, rec: Any = None) -> None:
    """Worker: ``offer`` -- ask whether to resume the slot's run (if there is one); else
    resume ``rec`` (or the slot's run) now: its data is loaded, then ResumeReady is posted."""
    def fail(text: str) -> None:
        host.post_message(msg.WorkFailed("resume", text))
        if not offer:
            host.call_from_thread(lambda: host.load_dataset(host.form_dataset()))

    if rec is None:
        try:
            rec, note = host.recovery.load()
        except Exception as exc:  # noqa: BLE001 - a damaged slot is reported, not fatal
            fail(f"cannot resume the interrupted run: {exc}")
            return
        if note:
            host.call_from_thread(host.epoch_log.write_event, note)
    if rec is None:
        if not offer:
            fail(f"nothing to resume: no interrupted run is saved in {host.recovery.where} (a run is "
                 "kept there when the connection drops or you quit while training)")
        return
    if offer:
        host.call_from_thread(_offer, host, rec)
        return
    name = rec.checkpoint.config.dataset
    try:
        _use_data_of(host, rec)
        host.datasets.get(name)
    except DatasetNotFoundError as exc:
        host.post_message(msg.DatasetMissing(name, str(exc), exc.searched))
        return
    except Exception as exc:  # noqa: BLE001
        host.post_message(msg.WorkFailed("resume", f"cannot resume the interrupted run: {exc}"))
        return
    host.post_message(msg.ResumeReady(str(host.recovery.where), rec))


def _use_data_of(host: ResumeHost, rec: Any) -> None:
    """Worker: train the resumed run on the data it was trained on (unless --data says
    otherwise: the command line wins): its recorded directory, or the bundled sample."""
    if host.data_given:
        return
    wanted = rec.data_dir
    if wanted is None and rec.checkpoint.metadata.get("is_sample"):
        from engine.datasets import SAMPLE_DIR

        wanted = str(SAMPLE_DIR)
    if wanted is not None and Path(wanted).exists():
        host.datasets.use_data_dir(wanted)


def _offer(host: ResumeHost, rec: Any) -> None:
    """UI thread: a run was cut short last time; ask whether to continue it. The question
    comes first: a data panel opened meanwhile would hide it (and take its keys)."""
    if host.training:
        return

    def answered(yes: bool | None) -> None:
        if yes:
            host._resume_worker(offer=False, recovery=rec)
        else:
            host.epoch_log.write_event("the interrupted run stays saved: `termnist --resume` continues it; "
                                       "starting another run replaces it")

    host.push_screen(ConfirmScreen(
        f"An interrupted run was saved:\n{rec.describe()}\n\nResume it where it left off?\n"
        "(No keeps it for `termnist --resume` until you start another run.)",
        yes="Resume", no="Not now"), answered)


def resume_ready(host: ResumeHost, message: msg.ResumeReady) -> None:
    """UI thread: the resumed run's data is loaded; show its settings and history, go on."""
    rec = message.recovery
    ckpt = rec.checkpoint
    if host.training:
        host.notify("A run is in progress; the interrupted run stays saved.", severity="warning")
        return
    done = int(ckpt.metadata.get("epochs_done", 0))
    host.form.set_config(ckpt.config)
    host.data_panel.refresh_states()      # the data it resumes on (a directory, not the sample)
    why = f" ({rec.reason})" if rec.reason else ""
    host.epoch_log.write_event(
        f"resuming the interrupted run from {message.path}{why}: {done} of {ckpt.config.epochs} epochs done")
    if done >= ckpt.config.epochs:
        host.epoch_log.write_event("that run had already finished; nothing left to train")
        host.recovery.clear()
        return
    host.view.start(ckpt.config, resume=ckpt)
