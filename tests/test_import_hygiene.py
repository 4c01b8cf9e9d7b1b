"""The engine never imports the UI stack; `termnist train` and `--help` stay light."""

from __future__ import annotations

import subprocess
import sys

UI_MODULES = ("textual", "plotext", "rich", "textual_plotext")


def _loaded_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys\nprint(' '.join(sorted(m for m in sys.modules)))"],
        capture_output=True, text=True, check=True,
    ).stdout.split()
    return {m.split(".")[0] for m in out}


def test_engine_imports_no_ui_modules():
    loaded = _loaded_after(
        "import engine, engine.training, engine.checkpoint, engine.presets, engine.datasets,"
        " engine.idx, engine.mlp, engine.optim, engine.metrics, engine.gradcheck, engine.download,"
        " engine.recovery, engine.augment, engine.race, engine.lr_find"
    )
    assert not (loaded & set(UI_MODULES)), loaded & set(UI_MODULES)


def test_cli_parser_imports_no_ui_and_no_numpy():
    loaded = _loaded_after("import tui.cli; tui.cli.build_parser()")
    assert not (loaded & set(UI_MODULES + ("numpy",))), loaded & set(UI_MODULES + ("numpy",))


def test_the_app_controllers_import_no_ui_modules():
    """tui/controllers/ is the app's work without Textual: unit-testable with plain callables."""
    loaded = _loaded_after(
        "import tui.controllers.datasets, tui.controllers.run, tui.controllers.recovery,"
        " tui.controllers.downloads, tui.controllers.hangup, tui.controllers.settings,"
        " tui.controllers.models, tui.runner"
    )
    assert not (loaded & set(UI_MODULES)), loaded & set(UI_MODULES)


def test_the_sweep_panel_controller_imports_no_ui_modules_nor_optuna():
    """tui.controllers.sweep: the Sweep panel's model and work without Textual; Optuna only when
    a sweep or its importances run."""
    loaded = _loaded_after("import tui.controllers.sweep")
    assert not (loaded & set(UI_MODULES + ("optuna",))), loaded & set(UI_MODULES + ("optuna",))
