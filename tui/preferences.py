"""What the app remembers between starts, and how the command line overrides it.

``restore`` runs at mount: the remembered form and UI choices (tui.settings' file), then the
command line, which always wins. ``snapshot`` is what ``save_settings`` writes. Functions of the
app's, through ``PrefsHost`` (the explicit list of what they use).
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from tui.hosts import AppHost

log = logging.getLogger(__name__)


class PrefsHost(AppHost, Protocol):
    """What restoring settings needs of the app: the common contract and the command line."""
    startup: dict[str, Any]            # --dataset, --preset, --load, --resume as given


def restore(host: PrefsHost, saved: dict[str, Any]) -> None:
    """The remembered settings, then the command line (which wins)."""
    from engine.presets import get_preset
    from engine.training import TrainConfig

    form = host.form
    form.set_config(get_preset("default"))
    if saved.get("base"):
        try:
            form.base = TrainConfig.from_dict(saved["base"])
        except Exception:  # a stale settings file must not stop the app
            log.info("remembered base settings ignored", exc_info=True)
    if saved.get("form"):
        form.set_values(saved["form"])
    ui = saved.get("ui", {})
    if ui.get("chart") in ("loss", "accuracy"):
        host.chart.set_mode(ui["chart"])
    host.chart_title()                     # the mode and the series' legend
    if ui.get("shading") in ("ascii", "blocks"):
        host.preview.set_mode(ui["shading"])
    host.data_panel.apply_settings(ui, data_given=host.data_given)
    host.data_panel.refresh_states()
    _command_line(host)


def _command_line(host: PrefsHost) -> None:
    """--preset and --dataset fill the form; --data DIR says where the data is: a remembered
    choice that ignores it (the bundled sample) gives way, a --dataset that cannot use it says so."""
    from engine.datasets import ignores_data_dir

    form = host.form
    wanted = host.startup.get("dataset")
    if host.data_given:
        if wanted and ignores_data_dir(wanted):
            host.report_error(f"--data does not apply to --dataset {wanted} (it has its own data)")
        elif not wanted and ignores_data_dir(host.form_dataset()):
            host.epoch_log.write_event(f"--data given: training on mnist from {host.datasets.data_dir}, "
                                       f"not the remembered {host.form_dataset()}")
            form.set_values({"dataset": "mnist"})
    for what, choices in (("preset", form.presets), ("dataset", form.datasets)):
        given = host.startup.get(what)
        if given and given not in choices:
            host.report_error(f"unknown {what} {given!r}; choose one of {', '.join(choices)}")
        elif given and what == "preset":
            form.apply_preset(given)
        elif given:
            form.set_values({"dataset": given})


def snapshot(host: PrefsHost) -> dict[str, Any] | None:
    """What the settings file keeps (None when the form cannot say: nothing is written)."""
    try:
        return {"form": host.form.values(), "base": host.form.base.to_dict(),
                "ui": {"chart": host.chart.mode, "shading": host.preview.mode, **host.data_panel.settings()}}
    except Exception:  # settings are a convenience
        log.warning("cannot save settings", exc_info=True)
        return None
