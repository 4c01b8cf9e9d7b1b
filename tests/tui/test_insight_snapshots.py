"""Snapshots of the Insight screen (F9): the confusion and mistakes tabs at 80x24, the
confusion tab at 120x40, for a small model trained here deterministically (one BLAS thread).

Regenerate after a deliberate visual change:
    .venv/bin/pytest tests/tui/test_insight_snapshots.py --snapshot-update
"""

from __future__ import annotations

import dataclasses

import pytest

from engine.training import TrainConfig, TrainingSession
from tests.tui.conftest import settle, wait_for
from tui.app import TermnistApp
from tui.screens.insight import InsightScreen


@pytest.fixture(scope="module")
def model(sample):
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        session = TrainingSession(TrainConfig(hidden=(32,), epochs=1, val_size=1000, seed=0), sample)
        list(session.run())
    return session.checkpoint()


@pytest.fixture
def app(sample) -> TermnistApp:
    bundled = dataclasses.replace(sample, is_sample=True, source="bundled sample")
    return TermnistApp(load_dataset_fn=lambda name, data_dir: bundled, remember=False)


def opened(model, tab: str = "confusion", views: int = 1):
    async def before(pilot):
        app = pilot.app
        await settle(pilot)
        app.model = model
        await pilot.press("f9")
        await wait_for(pilot, lambda: isinstance(app.screen, InsightScreen), what="the insight screen")
        screen = app.screen
        await wait_for(pilot, lambda: screen.computed >= 1, what="the first view")
        if tab != "confusion":
            screen.query_one("TabbedContent").active = f"tab-{tab}"
            await wait_for(pilot, lambda: screen.shown.get(tab) is not None, what=f"the {tab} view")
        app.clear_notifications()
        await pilot.pause(0.1)

    return before


def test_confusion_80x24(snap_compare, app, model):
    assert snap_compare(app, terminal_size=(80, 24), run_before=opened(model))


def test_mistakes_80x24(snap_compare, app, model):
    assert snap_compare(app, terminal_size=(80, 24), run_before=opened(model, "mistakes"))


def test_confusion_120x40(snap_compare, app, model):
    assert snap_compare(app, terminal_size=(120, 40), run_before=opened(model))
