"""The app as its presenters see it: one explicit, type-checked contract.

The presenters (run_view, data_panel, model_files, resume, preferences) get the app as a host
and use only what ``AppHost`` (and their own small extension of it) lists: the widgets, the
controllers, a little shared state, and the Textual calls they make. mypy checks that the App
provides it; nothing else of the app is theirs to touch.
"""

from __future__ import annotations

from typing import Any, Protocol

from tui.controllers.datasets import DatasetCache
from tui.controllers.downloads import DownloadController
from tui.controllers.recovery import RecoveryController
from tui.controllers.run import RunController


class AppHost(Protocol):
    # controllers (tui/controllers/)
    datasets: DatasetCache
    downloads: DownloadController
    recovery: RecoveryController
    trainer: RunController
    # shared state
    dataset: Any                       # the dataset shown (engine Dataset) or None
    model: Any                         # the last run's session or a loaded Checkpoint
    busy: set[str]                     # "save", "load" while their workers run
    data_given: bool                   # --data DIR was given (the command line wins)
    preview_limit: int

    # widgets
    @property
    def form(self) -> Any: ...         # HyperparameterForm
    @property
    def chart(self) -> Any: ...        # LossChart
    @property
    def epoch_log(self) -> Any: ...    # EpochLog
    @property
    def preview(self) -> Any: ...      # DigitPreview
    # presenters
    @property
    def view(self) -> Any: ...         # RunView
    @property
    def data_panel(self) -> Any: ...   # DataPanel
    @property
    def panels(self) -> Any: ...       # Panels
    @property
    def live(self) -> Any: ...         # LiveChanges (tui/live.py)

    # the app's own
    @property
    def training(self) -> bool: ...
    @property
    def panel(self) -> str: ...
    def form_dataset(self) -> str: ...
    def set_form_dataset(self, name: str) -> None: ...
    def set_panel(self, panel: str, focus: bool | None = None) -> None: ...
    def load_dataset(self, name: str | None, drop_cached: bool = False) -> None: ...
    def action_train(self) -> None: ...
    def current_model(self) -> Any: ...
    def data_dir_of_run(self) -> str | None: ...
    def report_error(self, message: str, details: str = "") -> None: ...
    def update_status(self) -> None: ...
    def state_changed(self) -> None: ...
    def save_settings(self, now: bool = False) -> None: ...
    def chart_title(self) -> None: ...

    # Textual's
    @property
    def screen_stack(self) -> Any: ...
    def post_message(self, message: Any) -> bool: ...
    def call_from_thread(self, callback: Any, *args: Any, **kwargs: Any) -> Any: ...
    def call_after_refresh(self, callback: Any, *args: Any, **kwargs: Any) -> bool: ...
    def push_screen(self, screen: Any, callback: Any = None) -> Any: ...
    def refresh_bindings(self) -> None: ...
    def run_worker(self, work: Any, name: str | None = "", group: str = "default", description: str = "",
                   exit_on_error: bool = True, start: bool = True, exclusive: bool = False,
                   thread: bool = False) -> Any: ...
    def notify(self, message: str, *, title: str = "", severity: Any = "information",
               timeout: float | None = None, markup: bool = True) -> None: ...
