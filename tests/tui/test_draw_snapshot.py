"""Snapshot of the Draw screen (F8) at 80x24: a "1" drawn with the keyboard alone, what the
network saw (28x28) and the ten probabilities, on a small seeded model (one BLAS thread) and the
bundled sample.

Regenerate after a deliberate visual change:
    .venv/bin/pytest tests/tui/test_draw_snapshot.py --snapshot-update
"""

from __future__ import annotations

from textual.app import App

from tests.tui.insight_host import train_small
from tui.screens.draw import DrawScreen


def test_draw_screen_80x24(snap_compare, sample):
    model, _ = train_small(sample, epochs=2)

    class DrawHost(App):
        def on_mount(self) -> None:
            self.push_screen(DrawScreen(model, tuple(sample.class_names)))

    async def before(pilot):
        await pilot.pause()
        await pilot.press(*["up"] * 6, "space", *["down"] * 12, "space")
        await pilot.pause(0.2)

    assert snap_compare(DrawHost(), terminal_size=(80, 24), run_before=before)
