"""Save and Load in the app: the path dialogs, the workers, what the screen shows after.

``ModelFiles`` is owned by the app and uses it only through ``tui.hosts.AppHost``; the file
work itself is tui.controllers.models (no Textual).
"""

from __future__ import annotations

from pathlib import Path
from tui.hosts import AppHost

from tui import messages as msg
from tui.controllers.models import ModelDataMissing, load_model, newest_npz, save_model, save_path_for
from tui.guard import guarded
from tui.screens.dialogs import ConfirmScreen, PathScreen


FilesHost = AppHost      # what it uses of the app: the common host contract (tui/hosts.py)


class ModelFiles:
    def __init__(self, host: FilesHost) -> None:
        self.host = host
        self.last_saved: str | None = None

    # ------------------------------------------------------------------ save
    def save(self) -> None:
        """Ctrl+S: ask where, confirm an overwrite, save in a worker."""
        host = self.host
        if host.current_model() is None:
            host.notify("Nothing to save yet: train or load a model first.", severity="warning")
            return
        v = host.view
        name = v.model_dataset or (host.dataset.name if host.dataset is not None else None)
        default = save_path_for(name, v.last_test_acc if v.last_test_acc is not None else v.last_val_acc)

        host.push_screen(PathScreen("Save the model to", default,
                                    "Enter = save (written atomically), Escape = cancel"), self._save_chosen)

    @guarded
    def _save_chosen(self, path: str | None) -> None:
        if not path:
            return
        target = Path(path).expanduser()
        if target.suffix == "":
            target = target.with_suffix(".npz")
        try:
            exists = target.exists()
        except OSError as exc:          # a name too long, a directory we may not search ...
            self.host.report_error(f"cannot save to {path}: {exc.strerror or exc}")
            return
        if exists:
            self.host.push_screen(ConfirmScreen(f"{target} exists. Overwrite it?", yes="Overwrite"),
                                  lambda ok: self.save_to(str(target)) if ok else None)
        else:
            self.save_to(str(target))

    def save_to(self, path: str) -> None:
        host = self.host
        model = host.current_model()
        host.busy.add("save")
        host.refresh_bindings()

        def work() -> None:
            try:
                host.post_message(msg.ModelSaved(save_model(path, model)))
            except Exception as exc:  # noqa: BLE001
                host.post_message(msg.WorkFailed("save", f"cannot save: {exc}"))

        host.run_worker(work, group="save", exclusive=True, exit_on_error=False, thread=True)

    def saved(self, message: msg.ModelSaved) -> None:
        host = self.host
        host.busy.discard("save")
        self.last_saved = message.path
        host.epoch_log.write_event(f"saved model to {message.path}")
        host.notify(f"Saved {message.path}", title="Model saved")
        host.state_changed()

    # ------------------------------------------------------------------ load
    def load(self) -> None:
        """Ctrl+O: ask which file, load it in a worker."""
        host = self.host
        if host.training:
            host.notify("Stop training before loading a model.", severity="warning")
            return
        default = self.last_saved or newest_npz(Path.cwd()) or "model.npz"
        host.push_screen(PathScreen("Load a model from", default,
                                    "Enter = load (.npz saved by termnist), Escape = cancel"), self._load_chosen)

    @guarded
    def _load_chosen(self, path: str | None) -> None:
        if path:
            self.load_from(path)

    def load_from(self, path: str) -> None:
        host = self.host
        host.busy.add("load")
        host.state_changed()

        def work() -> None:
            try:
                host.post_message(msg.ModelLoaded(load_model(path, host.datasets.get, host.preview_limit)))
            except ModelDataMissing as exc:
                host.post_message(msg.DatasetMissing(exc.name, str(exc.error), exc.error.searched))
                host.post_message(msg.WorkFailed("load", f"cannot evaluate {path}: its dataset is missing"))
            except Exception as exc:  # noqa: BLE001
                host.post_message(msg.WorkFailed("load", f"cannot load: {exc}"))

        host.run_worker(work, group="load", exclusive=True, exit_on_error=False, thread=True)

    def loaded(self, message: msg.ModelLoaded) -> None:
        host = self.host
        loaded = message.loaded
        host.busy.discard("load")
        host.model = loaded.checkpoint
        host.form.set_config(loaded.checkpoint.config)
        host.chart.clear()
        host.view.replay_history(loaded.checkpoint)
        host.data_panel.show(loaded.dataset)
        host.view.show_loaded(loaded)
        acc = f"{loaded.test_acc * 100:.2f}%" if loaded.test_acc is not None else "n/a"
        text = f"loaded {loaded.path}: test accuracy {acc}; its settings are in the form"
        host.epoch_log.write_event(text)
        host.notify(text, title="Model loaded")
        host.state_changed()
