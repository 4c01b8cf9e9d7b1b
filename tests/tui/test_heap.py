"""tui.heap: the screens' modules imported after startup, the startup heap frozen (no full
garbage collection walks it) and given back when the app closes."""

from __future__ import annotations

import gc
import sys

from tests.tui.conftest import settle, wait_for
from tui import heap
from tui.screens import SCREENS, warm_modules


def test_warm_imports_and_names_what_failed(caplog):
    sys.modules.pop("json.tool", None)
    assert heap.warm(["json.tool", "tui.no_such_module"]) == ["tui.no_such_module"]
    assert "json.tool" in sys.modules
    assert "tui.no_such_module" in caplog.text


def test_every_screen_module_is_warmed_and_imports():
    mods = warm_modules()
    for spec in SCREENS:
        assert set(spec.modules) <= set(mods)
    assert "tui.screens.insight" in mods and "engine.insight.confusion" in mods
    assert heap.warm(mods) == []


def test_freeze_and_thaw():
    try:
        frozen = heap.freeze()
        assert frozen == gc.get_freeze_count() > 0
        later = [[] for _ in range(100)]            # made after the freeze: not frozen
        assert gc.get_freeze_count() == frozen and len(later) == 100
    finally:
        heap.thaw()
    assert gc.get_freeze_count() == 0


async def test_the_app_warms_up_and_freezes_after_start_and_thaws_on_close(make_app, synthetic):
    app = make_app(synthetic)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await wait_for(pilot, lambda: app.frozen > 0, timeout=10, what="the warm-up")
        assert gc.get_freeze_count() > 0
        assert all(m in sys.modules for m in warm_modules())
    assert gc.get_freeze_count() == 0
