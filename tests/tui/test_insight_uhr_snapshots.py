"""Snapshots of the Units, Health and Robustness insight views at 80x24, each alone in a minimal
host app, on a small seeded model (trained with one BLAS thread) and the bundled sample. No
timing text is shown by these views, so the pictures are deterministic on a machine.

Regenerate after a deliberate visual change:
    .venv/bin/pytest tests/tui/test_insight_uhr_snapshots.py --snapshot-update
"""

from __future__ import annotations

import pytest

from tests.tui.insight_host import ViewHost, train_small
from tui.insight import ModelInput
from tui.insight.health import HealthView
from tui.insight.robustness import RobustnessView
from tui.insight.units import UnitsView

OVERFIT = [{"epoch": i + 1, "train_loss": t, "val_loss": v, "train_acc": 0.9 + 0.02 * i, "val_acc": 0.85}
           for i, (t, v) in enumerate([(1.0, 0.9), (0.5, 0.6), (0.3, 0.7), (0.2, 0.8)])]


@pytest.fixture(scope="module")
def trained(sample):
    return train_small(sample, epochs=2)


def _host(view, inp, *keys):
    app = ViewHost(view, inp)

    async def before(pilot):
        await app.feed()
        await pilot.pause()
        if keys:
            await pilot.press(*keys)
        await pilot.pause()

    return app, before


def test_units_view_80x24(snap_compare, sample, trained):
    model, history = trained
    app, before = _host(UnitsView(), ModelInput(model, sample, history, "epoch 2"), "right", "o")
    assert snap_compare(app, terminal_size=(80, 24), run_before=before)


def test_health_view_80x24(snap_compare, sample, trained):
    model, _ = trained
    app, before = _host(HealthView(), ModelInput(model, sample, OVERFIT, "epoch 4"))
    assert snap_compare(app, terminal_size=(80, 24), run_before=before)


def test_robustness_view_80x24(snap_compare, sample, trained):
    model, history = trained
    app, before = _host(RobustnessView(), ModelInput(model, sample, history, "epoch 2"))
    assert snap_compare(app, terminal_size=(80, 24), run_before=before)
