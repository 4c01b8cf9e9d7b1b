"""What the Runs panel asks of the app for a run: its settings into the form, its model loaded
(preview and eval then use it: the Load path, tui.model_files), training on from its checkpoint
(the resume path, tui.resume). A presenter: it uses the app only through ``RunActionsHost``.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol, cast

from tui import messages as msg
from tui.hosts import AppHost

log = logging.getLogger(__name__)


class RunActionsHost(AppHost, Protocol):
    @property
    def files(self) -> Any: ...        # tui.model_files.ModelFiles


class TrainOnReady(msg.Message):
    """A run's checkpoint and its data are loaded (worker): train on from it."""

    def __init__(self, run: Any, checkpoint: Any) -> None:
        super().__init__()
        self.run = run
        self.checkpoint = checkpoint


def config_of(run: Any) -> Any:
    """The run's settings as a TrainConfig (ConfigError when they no longer validate)."""
    from engine.config import TrainConfig

    return TrainConfig.from_dict(dict(run.settings))


class RunActions:
    def __init__(self, host: RunActionsHost) -> None:
        self.host = host

    def request(self, what: str, run: Any) -> None:
        {"settings": self.load_settings, "model": self.load_model, "train": self.train_on}[what](run)

    # -- settings into the form ------------------------------------------------------------
    def load_settings(self, run: Any) -> None:
        host = self.host
        try:
            config = config_of(run)
        except Exception as exc:  # noqa: BLE001 - ConfigError: settings of an older termnist
            host.report_error(f"run {run.id}: its settings cannot be used: {exc}")
            return
        host.form.set_config(config)         # the dataset too: the form asks for it to be loaded
        host.epoch_log.write_event(f"settings of run {run.id} are in the form (F5 trains with them)")
        host.notify(f"Settings of run {run.id} are in the form.", title="Run history")
        host.state_changed()

    # -- its model ------------------------------------------------------------------------
    def load_model(self, run: Any) -> None:
        host = self.host
        if host.training:
            host.notify("Stop training before loading a model.", severity="warning")
            return
        host.files.load_from(str(run.checkpoint))

    # -- training on from its checkpoint ---------------------------------------------------
    def train_on(self, run: Any) -> None:
        host = self.host
        if host.training or "load" in host.busy:
            host.notify("A run is in progress: stop it (F7) first.", severity="warning")
            return
        path = str(run.checkpoint)

        def work() -> None:
            from engine.checkpoint import load_checkpoint
            from engine.errors import DatasetNotFoundError
            from engine.recovery import Recovery
            from tui.resume import _use_data_of

            try:
                ckpt = load_checkpoint(path)
                if ckpt.metadata.get("mid_epoch"):
                    raise ValueError(f"its checkpoint {path} was saved mid-epoch and cannot be trained on exactly;"
                                     " load its settings (f) and train a new run")
                rec = Recovery(ckpt, data_dir=run.data_dir, reason=f"run {run.id}")
                if run.sample and not ckpt.metadata.get("is_sample"):
                    ckpt.metadata["is_sample"] = True
                _use_data_of(cast(Any, host), rec)      # its own data (a directory, or the bundled sample)
                host.datasets.get(ckpt.config.dataset)
            except DatasetNotFoundError as exc:
                host.post_message(msg.DatasetMissing(ckpt.config.dataset, str(exc), exc.searched))
                return
            except Exception as exc:  # noqa: BLE001
                host.post_message(msg.WorkFailed("train-on", f"cannot train on from run {run.id}: {exc}"))
                return
            host.post_message(TrainOnReady(run, ckpt))

        host.run_worker(work, group="train-on", exclusive=True, exit_on_error=False, thread=True)

    def ready(self, message: TrainOnReady) -> None:
        host = self.host
        if host.training:
            return
        run, ckpt = message.run, message.checkpoint
        done = int(ckpt.metadata.get("epochs_done", 0))
        config = ckpt.config
        if done >= config.epochs:            # a finished run: as many epochs again, on top
            config = config.replace(epochs=done + config.epochs)
            how = f"{done} epochs done; {config.epochs - done} more, to {config.epochs}"
        else:
            how = f"{done} of {config.epochs} epochs done; going on"
        host.form.set_config(config)
        host.data_panel.refresh_states()
        host.epoch_log.write_event(f"training on from run {run.id}'s checkpoint ({how}); recorded as a new run")
        host.view.start(config, resume=ckpt)
